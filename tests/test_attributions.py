"""Why this label: integrated gradients on the embeddings, the top_words column and `reviewscore explain`.

The attributions follow their definition (completeness converges as the quadrature gets finer; the
logit F(x) is the engines' own), a word that carries sentiment gets the sign of its class (on a
tiny bundle the tests train, and on the committed default), and explaining never changes a score.
"""

from __future__ import annotations

import glob
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.bundle import open_bundle
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.calibrated import bundle_scorer
from pipeline.model.engines.plan import plan_model
from pipeline.model.explain import COMPLETENESS_TOLERANCE, SAMPLE
from pipeline.model.explain.explainer import Explainer, ExplainSettings, explain_review, word_weights
from pipeline.model.explain.integrated_gradients import IntegratedGradients, gauss_legendre
from pipeline.model.labels import Labels


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


@pytest.mark.slow
def test_the_target_logit_is_the_engines_logit(explained, tiny_bundle):
    plan, rows, predicted, scorer = explained
    attributions = IntegratedGradients(plan, tiny_bundle.preprocessing.max_length, steps=8, batch_size=4)(
        rows, predicted
    )
    z = scorer.logits(rows)[:, 0]
    assert np.allclose(attributions.target_logit, np.where(predicted == 1, z, -z), atol=1e-5)
    assert [len(w) for w in attributions.weights] == [len(r) for r in rows]


@pytest.mark.slow
def test_completeness_error_shrinks_as_the_quadrature_gets_finer(explained, tiny_bundle):
    plan, rows, predicted, _ = explained
    width = tiny_bundle.preprocessing.max_length
    coarse = IntegratedGradients(plan, width, steps=2, batch_size=4)(rows, predicted).completeness_error
    fine = IntegratedGradients(plan, width, steps=64, batch_size=4)(rows, predicted).completeness_error
    # Both can sit at float32 noise (~1e-7) on a tiny model; finer steps must then not be worse beyond it.
    assert fine.max() < 0.05 and fine.mean() <= coarse.mean() + 1e-6


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_positive_word_inserted_into_a_neutral_review_is_among_its_top_words():
    """On the committed default: the attributions of a neutral sentence with "masterpiece" inserted."""
    bundle = open_bundle("models/imdb-bilstm")
    encoded, words = bundle.encoder.encode_words(
        ["The film was released in the spring and it runs for about two hours. A masterpiece."]
    )
    rows = encoded.rows()
    scorer = bundle_scorer(bundle, ScorerSettings(engine="onnx"))
    predicted = Labels.of(bundle.manifest).predicted(scorer(rows))
    assert predicted[0] == 1
    settings = ExplainSettings(top_k=3, steps=64, method="integrated-gradients")
    attributions = Explainer(bundle, settings, scorer.logits, batch_size=1)(rows, predicted)
    top = dict(word_weights(words[0], attributions.weights[0])[:3])
    assert top.get("masterpiece", 0) > 0, top
    assert attributions.completeness_error[0] < 0.05


@pytest.mark.slow
def test_explain_review_doubles_the_steps_until_the_attributions_are_complete():
    """On the committed default: 4 steps miss completeness on this review, 8 meet it."""
    bundle = open_bundle("models/imdb-bilstm")
    rows = bundle.encoder.encode(
        ["A masterpiece, though the ending dragged and the acting was wooden at times."]
    ).rows()
    scorer = bundle_scorer(bundle, ScorerSettings(engine="onnx"))
    probabilities, logits = scorer.with_logits(rows)
    predicted = Labels.of(bundle.manifest).predicted(probabilities)
    explainer = Explainer(bundle, ExplainSettings(3, 4, "integrated-gradients"), scorer.logits, batch_size=1)
    assert explainer(rows, predicted).completeness_error[0] > COMPLETENESS_TOLERANCE
    attributions, steps = explain_review(explainer, rows, predicted, logits)
    assert steps == 8 and attributions.completeness_error[0] <= COMPLETENESS_TOLERANCE
    occluded = Explainer(bundle, ExplainSettings(3, 4, "occlusion"), scorer.logits, batch_size=1)
    attributions, steps = explain_review(occluded, rows, predicted, logits)
    assert steps == 4 and np.isnan(attributions.completeness_error[0])  # occlusion promises no sum: no doubling


def scored(out) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in sorted(glob.glob(f"{out}/scored-*.parquet"))]).sort_values(
        "review_id", ignore_index=True
    )


@pytest.mark.slow
def test_explain_adds_top_words_and_leaves_every_score_bit_identical(tiny_bundle, tmp_path):
    texts = ["the plot was wonderful and the music superb", "dreadful boring film", "the film", "superb superb"]
    pq.write_table(pa.table({"review_id": [f"r{i}" for i in range(4)], "text": texts}), tmp_path / "in.parquet")
    runner = CliRunner()
    for name, extra in (
        ("plain", []),
        ("none", ["--explain-sample", "0"]),
        ("explained", ["--explain", "2"]),
        ("gradients", ["--explain", "2", "--explain-method", "integrated-gradients", "--explain-steps", "16"]),
    ):
        result = runner.invoke(
            app,
            ["score", str(tmp_path / "in.parquet"), "--output", str(tmp_path / name), "--model", str(tiny_bundle.path),
             *extra],
            obj={"beam_args": []},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    plain = scored(tmp_path / "plain")
    assert "top_words" not in plain.columns  # the default sample explains for the report only
    for name in ("none", "explained", "gradients"):
        explained = scored(tmp_path / name)
        assert plain.predicted_label.tolist() == explained.predicted_label.tolist()
        assert plain.score.to_numpy().tobytes() == explained.score.to_numpy().tobytes()  # bit for bit
        if name == "none":
            continue
        for text, top in zip(texts, explained.top_words, strict=True):
            assert 1 <= len(top) <= 2 and all(item["word"] in text.split() for item in top)
        assert [item["word"] for item in explained.top_words[3]] == ["superb"]  # one entry per distinct word
    summary = json.loads((tmp_path / "explained" / "_SUMMARY.json").read_text())["explanations"]
    assert summary["method"] == "occlusion (leave one word out)" and summary["reviews"] == 4
    assert summary["completeness_error"]["mean"] is None  # occlusion promises no sum
    assert summary["engine"] == "onnx"  # occlusion runs on the scoring engine
    by_class = summary["words_by_class"]
    occluded = scored(tmp_path / "explained")
    assert {name: ranked["reviews"] for name, ranked in by_class.items()} == {
        name: int((occluded.predicted_label == name).sum()) for name in ("negative", "positive")
    }  # every explained review counts for its label
    for ranked in by_class.values():  # only words pushing towards the class, in enough of its reviews
        assert all(w["mean_weight"] > 0 and w["reviews"] >= ranked["min_reviews"] for w in ranked["words"])
    gradients = json.loads((tmp_path / "gradients" / "_SUMMARY.json").read_text())["explanations"]
    assert gradients["method"] == "integrated gradients" and gradients["steps"] == 16
    assert gradients["completeness_error"]["mean"] is not None
    assert gradients["engine"] == "TensorFlow (XLA-compiled): the onnx engine computes no gradients"
    report = (tmp_path / "explained" / "_report.html").read_text()
    assert 'id="top-words"' in report and "Why these labels" in report
    sampled = json.loads((tmp_path / "plain" / "_SUMMARY.json").read_text())["explanations"]
    assert sampled["reviews"] == 4 and sampled["reviews_explained"] == f"a sample of about {SAMPLE}, by review id"
    assert sampled["top_k"] == 5  # SAMPLE_WORDS per sampled review
    assert 'id="top-words"' in (tmp_path / "plain" / "_report.html").read_text()  # every report says why
    assert 'id="top-words"' not in (tmp_path / "none" / "_report.html").read_text()
    assert "explanations" not in json.loads((tmp_path / "none" / "_SUMMARY.json").read_text())


def test_the_sample_is_chosen_by_review_id_whatever_the_batching():
    from pipeline.model.explain.explainer import sampled_rows

    ids = pa.array([f"review-{i}" for i in range(20_000)])
    chosen = sampled_rows(ids, 0.01)
    assert 150 <= len(chosen) <= 250  # about 200
    part = sampled_rows(ids.slice(5_000, 3_000), 0.01) + 5_000  # the same reviews in another batch
    assert set(part.tolist()) == {int(c) for c in chosen if 5_000 <= c < 8_000}
    assert len(sampled_rows(ids, 1.0)) == 20_000 and len(sampled_rows(ids, 0.0)) == 0


@pytest.mark.slow
def test_a_run_explains_its_sample_for_the_summary_only(tiny_bundle, tmp_path):
    from pipeline.model.explain.explainer import sampled_rows

    words = ["wonderful", "superb", "dreadful", "boring", "the", "film", "plot", "music"]
    texts = [" ".join(words[(i + k) % len(words)] for k in range(3 + i % 4)) for i in range(300)]
    ids = [f"r{i}" for i in range(300)]
    pq.write_table(pa.table({"review_id": ids, "text": texts}), tmp_path / "in.parquet")
    result = CliRunner().invoke(
        app,
        ["score", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out"), "--model", str(tiny_bundle.path),
         "--explain-sample", "40", "--batch-size", "64"],
        obj={"beam_args": []},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "top_words" not in scored(tmp_path / "out").columns
    summary = json.loads((tmp_path / "out" / "_SUMMARY.json").read_text())
    explained = summary["explanations"]
    assert explained["reviews"] == len(sampled_rows(pa.array(ids), 40 / 300))  # however the batches fell
    assert explained["reviews_explained"] == "a sample of about 40, by review id"
    assert summary["records_scored"] == 300


def test_explain_command_highlights_the_words(tiny_bundle):
    result = CliRunner().invoke(
        app, ["explain", "the plot was wonderful and the music superb", "--model", str(tiny_bundle.path)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("positive") and "wonderful" in result.output
    assert "when that word is left out" in result.output  # occlusion, the default


@pytest.mark.parametrize("bundle", ["tiny_bundle", "five_class_bundle"])
@pytest.mark.slow
def test_explain_prints_the_predicted_labels_probability_and_what_the_score_means(bundle, request):
    """A negative review reads "negative, probability 0.9..", not the positive class's probability beside it;
    the score a job would write is named with its meaning (binary: the probability of positive)."""
    bundle = request.getfixturevalue(bundle)
    text = "dreadful boring film and awful acting"
    labels = Labels.of(bundle.manifest)
    probabilities = bundle_scorer(bundle, ScorerSettings(), reviews=1)(bundle.encoder.encode([text]).rows())[0]
    predicted = int(labels.predicted(probabilities[None, :])[0])
    result = CliRunner().invoke(app, ["explain", text, "--model", str(bundle.path)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    shown = re.fullmatch(r"(.+), probability ([0-9.]+) \(score ([0-9.]+): (.+)\)", first)
    assert shown, first
    assert shown[1] == labels.class_names[predicted]
    assert float(shown[2]) == pytest.approx(float(probabilities[predicted]), abs=5e-4)
    if labels.score_label is not None:  # binary: the score is the positive class's probability, whatever the label
        assert labels.class_names[predicted] == "negative" and float(shown[2]) > 0.5 > float(shown[3])
        assert shown[4] == "the probability of positive"
        assert float(shown[3]) == pytest.approx(float(probabilities[1]), abs=5e-4)
    else:
        assert shown[3] == shown[2] and shown[4] == "the predicted class's probability"


def test_occlusion_weights_are_the_logit_drop_without_each_word(explained, tiny_bundle):
    """By definition: weight(w) = F(x) - F(x without every occurrence of w), on the scoring engine's own
    logits, shared equally among w's occurrences (tests/test_occlusion.py checks the reuse of states)."""
    from pipeline.model.explain.occlusion import Occlusion

    _, rows, predicted, scorer = explained
    weights = Occlusion(scorer.logits)(rows[:2], predicted[:2]).weights
    for row, w, label in zip(rows[:2], weights, predicted[:2], strict=True):
        sign = 1 if label == 1 else -1
        full = sign * scorer.logits([row])[0, 0]
        for t in range(len(row)):
            occurrences = row == row[t]
            without = sign * scorer.logits([row[~occurrences]])[0, 0]
            assert w[t] == pytest.approx((full - without) / occurrences.sum(), abs=1e-5)


@pytest.mark.slow
def test_explain_command_by_integrated_gradients_reports_completeness(tiny_bundle):
    result = CliRunner().invoke(
        app,
        ["explain", "the plot was wonderful and the music superb", "--model", str(tiny_bundle.path),
         "--method", "integrated-gradients"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "completeness error" in result.output


@pytest.mark.slow
def test_five_class_bundles_are_explained_towards_their_predicted_class(five_class_bundle, tmp_path):
    texts = ["superb brilliant film", "awful dreadful film", "okay average film"]
    pq.write_table(pa.table({"review_id": ["a", "b", "c"], "text": texts}), tmp_path / "in.parquet")
    result = CliRunner().invoke(
        app,
        ["score", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out"), "--model",
         str(five_class_bundle.path), "--explain", "1"],
        obj={"beam_args": []},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = scored(tmp_path / "out")
    for text, label, top in zip(texts, frame.predicted_label, frame.top_words, strict=True):
        assert len(top) == 1 and top[0]["word"] in text.split(), (label, top)
    summary = json.loads((tmp_path / "out" / "_SUMMARY.json").read_text())["explanations"]
    assert len(summary["words_by_class"]) == 5


@pytest.fixture
def scored_sample(tiny_bundle):
    """A batch of three reviews scored by the job's handler, rows 0 and 2 sampled to explain, and the
    explanation step ready on the same handler."""
    from pipeline.job.graph import ExplainReviews
    from pipeline.job.model_handler import EncodedReviews, ReviewModelHandler
    from pipeline.job.sources import Review, batch_of_reviews

    handler = ReviewModelHandler(
        str(tiny_bundle.path), settings=ScorerSettings(engine="onnx"), explain=ExplainSettings(sample=50)
    )
    model = handler.load_model()
    step = ExplainReviews(handler)
    step.setup()
    texts = ["the plot was wonderful and the music superb", "dreadful boring film", "awful film and awful acting"]
    reviews = batch_of_reviews([Review(f"r{i}", "in.txt", text) for i, text in enumerate(texts)])
    ids, words = tiny_bundle.encoder.encode_words(reviews.table.column("text"))
    chosen = np.array([0, 2])
    item = EncodedReviews(reviews, ids, [words[i] for i in chosen], chosen)
    [result] = handler.run_inference([item], model)
    return model, step, item, result


def test_the_explanation_step_explains_the_sample_with_the_model_that_scored_it(scored_sample):
    """It acquires the handler's copy of the model (never a second load) and explains the sampled rows
    with the logits RunInference handed it: what the explainer says of those rows on its own."""
    model, step, item, result = scored_sample
    assert step.model is model
    assert result.inference.explained is None and len(result.inference.logits) == 2  # scoring only scores
    [out] = step.process(result)
    explained = out.inference.explained
    assert out.inference.logits is None and explained.rows.tolist() == [0, 2]
    assert out.inference.probabilities is result.inference.probabilities  # explaining changes no score
    rows = [item.ids.row(i) for i in item.explain_rows]
    predicted = model.labels.predicted(result.inference.probabilities)[item.explain_rows]
    alone = model.explain(rows, predicted, words=item.words)  # occlusion scores the rows itself
    ranked = [dict(word_weights(w, a)) for w, a in zip(item.words, alone.weights, strict=True)]
    for mine, theirs in zip(explained.word_weights, ranked, strict=True):
        assert mine.keys() == theirs.keys()
        assert list(mine.values()) == pytest.approx(list(theirs.values()), abs=1e-5)


def test_a_batch_that_cannot_be_explained_fails_whole_at_the_inference_stage(scored_sample):
    from dataclasses import replace

    from apache_beam.pvalue import TaggedOutput

    from pipeline.job.sources import FAILED
    from schemas.output import INFERENCE_STAGE

    model, step, _, result = scored_sample

    def out_of_memory(*args, **kwargs):
        raise MemoryError("no room for the occluded variants")

    step.model = replace(model, explain=out_of_memory)
    out = list(step.process(result))
    assert all(isinstance(o, TaggedOutput) and o.tag == FAILED for o in out)
    assert [(o.value.review_id, o.value.stage) for o in out] == [(f"r{i}", INFERENCE_STAGE) for i in range(3)]
    assert "no room" in out[0].value.error
