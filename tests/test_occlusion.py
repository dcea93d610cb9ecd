"""Exact occlusion: leaving each word out, every occurrence at once, and reusing the full pass's states.

Reusing states is only an optimisation, so it must give brute force's numbers: the tests compare it
with re-scoring every occluded review, on both compiled engines, on each readout the engines
reproduce (the last state of a forward LSTM, the pooled BiLSTM) and on the committed default; and
they check the definition itself against texts re-scored with the word removed.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from pipeline.model.bundle import open_bundle
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.calibrated import bundle_scorer
from pipeline.model.explain.explainer import word_weights
from pipeline.model.explain.integrated_gradients import class_logit
from pipeline.model.explain.occlusion import Occlusion, full_pass_logits
from pipeline.model.labels import Labels
from schemas.bundle import OCCLUSION_FILE

TEXTS = [
    "the plot was wonderful and the music superb , the best film",
    "dreadful boring film and awful acting ; awful awful",
    "zyzzyva quokka film",  # two unknown words: one id, two words
    "film",
    "superb superb superb",  # one distinct word: its weight is F(x)
    "a long long review " * 9 + "that ends well",
]
TOLERANCE = 1e-5


def explain_both_ways(bundle, engine: str, texts=TEXTS):
    encoded, words = bundle.encoder.encode_words(texts)
    rows = encoded.rows()
    scorer = bundle_scorer(bundle, ScorerSettings(engine=engine))
    logits = scorer.logits(rows)
    predicted = Labels.of(bundle.manifest).predicted(scorer.calibration.probabilities(logits))
    reusing = Occlusion(scorer.logits, scorer.recurrence, reuse_from_tokens=0)
    assert reusing.recurrence_for(rows) is not None, f"{engine} offers no recurrence"
    reused = reusing(rows, predicted, logits, words=words)
    brute = Occlusion(scorer.logits)(rows, predicted, logits, words=words)
    return rows, words, predicted, scorer, reused, brute


def assert_weights_are_logit_drops(bundle, rows, words, predicted, scorer, weights) -> None:
    """Each word's weight (its tokens' summed) is F(x) minus F of the text re-encoded without any of
    its occurrences; a review's only word gets F(x)."""
    vocabulary = bundle.encoder.vocabulary
    for row, review_words, review_weights, label in zip(rows, words, weights, predicted, strict=True):
        full = class_logit(scorer.logits([row]), [label])[0]
        totals = dict(word_weights(review_words, review_weights))
        assert set(totals) == set(review_words)
        for word, weight in totals.items():
            kept = [w for w in review_words if w != word]
            if not kept:  # nothing left to score: the word gets F(x)
                assert weight == pytest.approx(full, abs=TOLERANCE)
                continue
            without = vocabulary.ids(pa.array(kept))
            assert weight == pytest.approx(full - class_logit(scorer.logits([without]), [label])[0], abs=TOLERANCE)


@pytest.mark.parametrize("engine", ["onnx", "xla"])
@pytest.mark.parametrize("which", ["tiny_bundle", "five_class_bundle"])
@pytest.mark.slow
def test_reusing_states_gives_brute_forces_weights(which, engine, request):
    """Forward LSTM with its last state (tiny) and pooled BiLSTM with five classes, on both engines."""
    bundle = request.getfixturevalue(which)
    rows, _, _, _, reused, brute = explain_both_ways(bundle, engine)
    for row, fast, slow in zip(rows, reused.weights, brute.weights, strict=True):
        assert len(fast) == len(row)
        np.testing.assert_allclose(fast, slow, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("engine", ["onnx", "xla"])
@pytest.mark.slow
def test_reusing_states_on_the_committed_default(engine):
    from pipeline.job.options import DEFAULT_MODEL

    bundle = open_bundle(DEFAULT_MODEL)
    texts = [*TEXTS, "An odd film. " * 20 + "The cast is superb but the script is a mess, and it drags."]
    rows, _, _, _, reused, brute = explain_both_ways(bundle, engine, texts)
    assert max(len(r) for r in rows) > 60
    for fast, slow in zip(reused.weights, brute.weights, strict=True):
        np.testing.assert_allclose(fast, slow, atol=TOLERANCE, rtol=0)


def test_a_words_weight_is_the_logit_drop_without_all_its_occurrences(five_class_bundle):
    """The definition, against the text re-encoded with the word's every occurrence removed."""
    rows, words, predicted, scorer, reused, _ = explain_both_ways(five_class_bundle, "onnx")
    assert_weights_are_logit_drops(five_class_bundle, rows, words, predicted, scorer, reused.weights)
    unknown = words[2]
    assert "zyzzyva" in unknown and "quokka" in unknown  # two words that share the unknown id, weighed apart


def test_each_occurrence_carries_an_equal_share_of_its_words_weight(tiny_bundle):
    _, words, _, _, reused, _ = explain_both_ways(tiny_bundle, "onnx")
    review, weights = words[1], reused.weights[1]  # "awful" three times
    shares = [w for word, w in zip(review, weights.tolist(), strict=True) if word == "awful"]
    assert len(shares) == 3 and max(shares) - min(shares) < 1e-7


def test_the_export_writes_and_checks_the_occlusion_graph(five_class_bundle):
    manifest = five_class_bundle.manifest
    assert OCCLUSION_FILE in manifest.files
    assert manifest.onnx["occlusion"]["max_abs_logit_difference"] <= TOLERANCE
    scorer = bundle_scorer(five_class_bundle, ScorerSettings(engine="onnx"))
    rows = five_class_bundle.encoder.encode(TEXTS).rows()
    np.testing.assert_allclose(full_pass_logits(scorer.recurrence(), rows), scorer.logits(rows), atol=TOLERANCE)


def test_without_an_occlusion_graph_onnx_re_scores_and_keras_always_does(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"][OCCLUSION_FILE]
    (copy / OCCLUSION_FILE).unlink()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert bundle_scorer(open_bundle(copy), ScorerSettings(engine="onnx")).recurrence() is None
    assert bundle_scorer(tiny_bundle, ScorerSettings(engine="keras")).recurrence() is None


def test_short_reviews_are_re_scored_without_opening_the_recurrence(tiny_bundle):
    encoded, words = tiny_bundle.encoder.encode_words(TEXTS)
    rows = encoded.rows()
    scorer = bundle_scorer(tiny_bundle, ScorerSettings(engine="onnx"))
    logits = scorer.logits(rows)
    predicted = Labels.of(tiny_bundle.manifest).predicted(scorer.calibration.probabilities(logits))
    opened = []

    def opening():
        opened.append(True)
        return scorer.recurrence()

    short = Occlusion(scorer.logits, opening, reuse_from_tokens=1_000)(rows, predicted, logits, words=words)
    assert not opened  # a job of short texts never loads occlusion.onnx
    long = Occlusion(scorer.logits, opening, reuse_from_tokens=1)(rows, predicted, logits, words=words)
    assert opened == [True]
    for a, b in zip(short.weights, long.weights, strict=True):
        np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0)


def test_a_single_reviews_jobs_are_shared_among_the_threads(five_class_bundle):
    """A sampled review often sits alone in its batch: its jobs (fewer than a batch) are cut into
    one slice per thread, and give the weights they give in one slice on one thread."""
    encoded, words = five_class_bundle.encoder.encode_words([TEXTS[0]])
    rows = encoded.rows()
    weights, calls = [], []
    for threads in (1, 2):
        scorer = bundle_scorer(five_class_bundle, ScorerSettings(engine="onnx", threads=threads))
        recurrence = scorer.recurrence()
        run = recurrence.run

        def recording(feeds, states, run=run, threads=threads):
            calls.append((threads, states, [len(feed["ids0"]) for feed in feeds]))
            return run(feeds, states)

        recurrence.run = recording
        logits = scorer.logits(rows)
        predicted = Labels.of(five_class_bundle.manifest).predicted(scorer.calibration.probabilities(logits))
        occlusion = Occlusion(scorer.logits, lambda r=recurrence: r, reuse_from_tokens=0)
        weights.append(occlusion(rows, predicted, logits, words=words).weights[0])
    jobs = len(set(words[0]))
    one, two = (sizes for _, states, sizes in calls if not states)
    assert one == [jobs] and len(two) == 2 and sum(two) == jobs
    np.testing.assert_allclose(weights[0], weights[1], atol=TOLERANCE, rtol=0)


def test_a_small_jobs_slices_cost_about_the_same():
    """Rows in length order, fewer than the threads take at once: the slices are contiguous, cover
    every row once, and none costs (rows x longest) much more than the others."""
    from pipeline.model.explain.occlusion import _slices

    widths = np.sort(np.random.default_rng(0).integers(0, 230, 120))
    assert [len(s) for s in _slices(widths, 256, 1)] == [120]
    assert [len(s) for s in _slices(np.arange(600), 256, 2)] == [256, 256, 88]
    for threads in (2, 3):
        slices = _slices(widths, 256, threads)
        assert len(slices) == threads
        np.testing.assert_array_equal(np.concatenate(slices), np.arange(120))
        costs = [len(s) * widths[s].max() for s in slices]
        assert max(costs) < 1.1 * min(costs)
