"""Integrated gradients on the embeddings (pipeline/explain/integrated_gradients.py), on a real tiny bundle.

Groundwork for issue 14: the attributions follow their definition (completeness converges as the
quadrature gets finer; the logit F(x) is the engines' own), and a word that carries sentiment gets
the sign of its class.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.engines.plan import plan_model
from pipeline.explain.integrated_gradients import IntegratedGradients, gauss_legendre
from pipeline.labels import Labels
from pipeline.scorer import ScorerSettings, bundle_scorer


@pytest.fixture(scope="module")
def explained(tiny_bundle):
    model = tiny_bundle.load_model()
    rows = tiny_bundle.encoder.encode(
        ["the plot was wonderful and the music superb", "dreadful boring film and awful acting", "the film"]
    ).rows()
    scorer = bundle_scorer(tiny_bundle, ScorerSettings(engine="xla"))
    predicted = Labels.of(tiny_bundle.manifest).predicted(scorer(rows))
    return plan_model(model), rows, predicted, scorer


def test_gauss_legendre_integrates_polynomials_exactly():
    nodes, weights = gauss_legendre(4)
    assert float(np.sum(weights * nodes**7)) == pytest.approx(1 / 8, rel=1e-6)  # exact up to degree 2n - 1


def test_the_target_logit_is_the_engines_logit(explained, tiny_bundle):
    plan, rows, predicted, scorer = explained
    attributions = IntegratedGradients(plan, tiny_bundle.preprocessing.max_length, steps=8, batch_size=4)(
        rows, predicted
    )
    z = scorer.logits(rows)[:, 0]
    assert np.allclose(attributions.target_logit, np.where(predicted == 1, z, -z), atol=1e-5)
    assert [len(w) for w in attributions.weights] == [len(r) for r in rows]


def test_completeness_error_shrinks_as_the_quadrature_gets_finer(explained, tiny_bundle):
    plan, rows, predicted, _ = explained
    width = tiny_bundle.preprocessing.max_length
    coarse = IntegratedGradients(plan, width, steps=2, batch_size=4)(rows, predicted).completeness_error
    fine = IntegratedGradients(plan, width, steps=64, batch_size=4)(rows, predicted).completeness_error
    assert fine.max() < 0.05 and fine.mean() < coarse.mean()


def test_sentiment_words_push_towards_their_class(explained, tiny_bundle):
    plan, rows, predicted, _ = explained
    assert predicted[:2].tolist() == [1, 0]
    weights = IntegratedGradients(plan, tiny_bundle.preprocessing.max_length, steps=32, batch_size=4)(
        rows, predicted
    ).weights
    vocabulary = tiny_bundle.vocabulary.tokens
    for row, w, words in zip(rows[:2], weights[:2], (("wonderful", "superb"), ("dreadful", "awful")), strict=True):
        tokens = [vocabulary[i - 2] if i >= 2 else "?" for i in row]
        for word in words:
            assert w[tokens.index(word)] > 0, (word, dict(zip(tokens, w.round(3), strict=True)))
