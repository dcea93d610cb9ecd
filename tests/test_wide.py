"""The wide part of a wide-and-deep model: hashed n-grams counted once per review, the same rows in
NumPy (the reference), Keras, XLA and ONNX Runtime, fitted before the network, and explained exactly.

Engine agreement for random wide-and-deep weights is in test_scorer.py (every compiled architecture);
here: the n-gram arithmetic itself, a trained bundle end to end, and occlusion through the wide part.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.model.bundle import open_bundle
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.calibrated import bundle_scorer
from pipeline.model.engines.plan import plan_model
from pipeline.model.explain.explainer import Explainer, ExplainSettings, ExplainUnavailable
from pipeline.model.preprocessing import pad_rows
from pipeline.model.wide import TRIGRAM_OFFSET, HashedNgrams, WidePart

VOCABULARY = 50
BUCKETS = 101


def wide_part(seed: int = 0, outputs: int = 1, buckets: int = BUCKETS) -> WidePart:
    ngrams = HashedNgrams(VOCABULARY, buckets)
    rng = np.random.default_rng(seed)
    table = rng.normal(0, 1, (ngrams.rows, outputs)).astype(np.float32)
    return WidePart(ngrams, table, np.eye(outputs, dtype=np.float32))


def test_rows_of_each_ngram_order():
    ngrams = HashedNgrams(VOCABULARY, BUCKETS)
    rows, present = ngrams.hashed_rows(np.array([[3, 4, 5, 0]]))
    bigram = VOCABULARY + (3 * VOCABULARY + 4) % BUCKETS
    trigram = VOCABULARY + (3 * VOCABULARY**2 + 4 * VOCABULARY + 5 + TRIGRAM_OFFSET) % BUCKETS
    assert rows.shape == (1, 4 + 3 + 2)
    assert rows[0, :3].tolist() == [3, 4, 5] and rows[0, 4] == bigram and rows[0, 7] == trigram
    # n-grams that reach into the padding are not real
    assert present[0].tolist() == [True, True, True, False, True, True, False, True, False]


def test_an_ngram_counts_once_however_often_it_occurs():
    wide = wide_part(buckets=1009)
    once = wide.logits([np.array([7, 8, 9])])
    table = wide.table[:, 0]
    _, counted = wide.ngrams.distinct_rows(pad_rows([np.array([7, 8, 9])]))
    assert counted.sum() == 6  # three words, two bigrams, one trigram
    repeated = wide.logits([np.array([7, 8, 9, 7, 8, 9])])
    # the repeat adds only the n-grams across the seam: (9, 7), (8, 9, 7), (9, 7, 8)
    v = VOCABULARY
    seam = [v + (9 * v + 7) % 1009]
    seam += [v + (a * v * v + b * v + c + TRIGRAM_OFFSET) % 1009 for a, b, c in ((8, 9, 7), (9, 7, 8))]
    first, _ = wide.ngrams.hashed_rows(np.array([[7, 8, 9]]))
    assert len(set(seam)) == 3 and not set(seam) & set(first[0].tolist())
    np.testing.assert_allclose(repeated - once, table[seam].sum(), rtol=1e-5)


def test_padding_changes_nothing():
    wide = wide_part(outputs=3)
    rows = [np.array([1, 2, 3, 4]), np.array([5]), np.array([6, 6])]
    tight = wide.logits(pad_rows(rows))
    np.testing.assert_allclose(wide.logits(pad_rows(rows, 30)), tight, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([wide.logits([r]) for r in rows]), tight, rtol=0, atol=1e-6)


def test_hashing_refuses_sizes_it_cannot_compute_exactly():
    with pytest.raises(ValueError, match="trigrams"):
        HashedNgrams(VOCABULARY, BUCKETS, max_n=4)
    with pytest.raises(ValueError, match="vocabulary"):
        HashedNgrams(1 << 21)
    with pytest.raises(ValueError, match="fewer buckets"):
        HashedNgrams(VOCABULARY, 1 << 24)


def test_the_keras_layer_computes_the_reference_rows():
    from pipeline.model.layers import HashedNgramLogits

    wide = wide_part(seed=4, outputs=2, buckets=1009)
    layer = HashedNgramLogits(VOCABULARY, 1009, 3, 2)
    layer.build((None, None))
    layer.set_weights([wide.table])
    rng = np.random.default_rng(1)
    rows = [rng.integers(1, VOCABULARY, size=n).astype(np.int32) for n in (1, 2, 3, 9, 80)]
    ids = pad_rows(rows)
    np.testing.assert_allclose(np.asarray(layer(ids)), wide.logits(ids), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def wide_bundle(tmp_path_factory, labelled_parquet):
    """A real wide-and-deep bundle: its wide part fitted first, its BiLSTM on the synthetic reviews."""
    from pathlib import Path

    from training.config import TrainingConfig
    from training.train import train

    folder = tmp_path_factory.mktemp("wide")
    return train(
        TrainingConfig(
            data=Path(labelled_parquet),
            out=folder / "bundle",
            architecture="wide-bilstm-pool",
            epochs=2,
            batch_size=16,
            vocab_size=200,
            max_length=40,
            embedding_dim=16,
            validation_fraction=0.25,
            verbose=0,
        )
    )


TEXTS = [
    "the plot was wonderful and the music superb , the best film",
    "dreadful boring film and awful acting ; awful awful",
    "zyzzyva quokka film",
    "film",
    "superb superb superb",
    "a long long review " * 9 + "that ends well",
]


@pytest.mark.slow
def test_a_trained_wide_bundle_scores_alike_on_every_engine(wide_bundle):
    manifest = wide_bundle.manifest
    assert manifest.architecture["name"] == "wide-bilstm-pool"
    assert manifest.architecture["wide"]["buckets"] == HashedNgrams(3).buckets
    assert manifest.onnx["checked_against_keras"]["max_abs_probability_difference"] <= 1e-5
    plan = plan_model(wide_bundle.load_model())
    assert plan.wide is not None and np.abs(plan.wide.table).max() > 0, "the fitted table was not kept"
    rows = wide_bundle.encoder.encode_words(TEXTS)[0].rows()
    logits = {e: bundle_scorer(wide_bundle, ScorerSettings(engine=e)).logits(rows) for e in ("keras", "onnx", "xla")}
    np.testing.assert_allclose(logits["onnx"], logits["keras"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(logits["xla"], logits["keras"], rtol=0, atol=1e-5)
    # the wide part matters: without it the logits differ
    deep_only = logits["keras"][:, 0] - plan.wide.logits(rows)[:, 0]
    assert np.abs(deep_only - logits["keras"][:, 0]).max() > 1e-3


@pytest.mark.parametrize("engine", ["onnx", "xla"])
@pytest.mark.slow
def test_occlusion_through_the_wide_part_is_rescoring(wide_bundle, engine):
    """Reusing the full pass's states gives re-scoring's weights, and a word's weight is the logit
    drop of the text re-encoded without it: its n-grams gone, the ones across the gap new."""
    from tests.test_occlusion import TOLERANCE, assert_weights_are_logit_drops, explain_both_ways

    rows, words, predicted, scorer, reused, brute = explain_both_ways(wide_bundle, engine, TEXTS)
    for fast, slow in zip(reused.weights, brute.weights, strict=True):
        np.testing.assert_allclose(fast, slow, atol=TOLERANCE, rtol=0)
    assert_weights_are_logit_drops(wide_bundle, rows, words, predicted, scorer, reused.weights)


def test_integrated_gradients_refuse_a_wide_model(wide_bundle):
    scorer = bundle_scorer(wide_bundle, ScorerSettings(engine="onnx"))
    with pytest.raises(ExplainUnavailable, match="wide part"):
        Explainer(wide_bundle, ExplainSettings(method="integrated-gradients"), scorer.logits)


def test_a_model_without_a_wide_part_plans_none(tiny_bundle):
    assert plan_model(tiny_bundle.load_model()).wide is None
    assert open_bundle(tiny_bundle.path).manifest.architecture.get("wide") is None
