"""Five classes end to end: the manifest's class_names drive training, every engine, the scored
rows' label_probs, and evaluation; a binary bundle is the two-class case of the same path."""

from __future__ import annotations

import glob
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.labels import Labels
from tests.conftest import FIVE_CLASSES, make_five_class_reviews
from training.evaluation import classification_metrics

runner = CliRunner()


def test_classification_metrics_on_a_known_case():
    names = Labels(("low", "mid", "high"))
    probabilities = np.array(
        [
            [0.8, 0.1, 0.1],  # true low, predicted low
            [0.6, 0.3, 0.1],  # true mid, predicted low
            [0.1, 0.7, 0.2],  # true mid, predicted mid
            [0.1, 0.2, 0.7],  # true high, predicted high
            [0.5, 0.2, 0.3],  # true high, predicted low (two classes off)
            [0.2, 0.4, 0.4],  # true high, a tie between mid and high: the later class wins
        ]
    )
    labels = np.array([0, 1, 1, 2, 2, 2])
    metrics = classification_metrics(labels, probabilities, names, ordinal=True)
    assert metrics["confusion_matrix"]["values"] == [[1, 0, 0], [1, 1, 0], [1, 0, 2]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class"]["low"] == pytest.approx({"precision": 1 / 3, "recall": 1.0, "f1": 0.5, "support": 1})
    assert metrics["per_class"]["mid"]["precision"] == 1.0 and metrics["per_class"]["mid"]["recall"] == 0.5
    assert metrics["per_class"]["high"]["precision"] == 1.0 and metrics["per_class"]["high"]["recall"] == 2 / 3
    f1 = [0.5, 2 * 0.5 / 1.5, 2 * (2 / 3) / (5 / 3)]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))
    assert metrics["mean_absolute_class_error"] == pytest.approx((0 + 1 + 0 + 0 + 2 + 0) / 6)
    assert "roc_auc" not in metrics  # the score of a multi-class bundle is no single class's probability
    assert metrics["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.3, 0.7, 0.7, 0.3, 0.4])))


def test_a_five_class_manifest(five_class_bundle):
    manifest = five_class_bundle.manifest
    assert manifest.class_names == list(FIVE_CLASSES) and manifest.score_label is None and manifest.ordinal
    assert five_class_bundle.calibration.method == "temperature"
    head = five_class_bundle.load_model().layers[-1]
    assert head.units == 5 and head.activation.__name__ == "softmax"
    assert manifest.metrics["validation_accuracy"] > 0.6  # the class words are easy to learn


@pytest.mark.parametrize("engine", ["onnx", "xla", "keras"])
@pytest.mark.slow
def test_five_class_scores_through_the_pipeline_equal_keras(five_class_bundle, tmp_path, engine):
    """label_probs holds five classes in manifest order, summing to 1; predicted_label is the most
    probable; score is its probability; and the probabilities are the Keras model's, calibrated."""
    from pipeline.model.calibration import class_probabilities

    reviews = make_five_class_reviews(60, seed=9)
    texts = [t for t, _ in reviews]
    pq.write_table(pa.table({"review_id": [f"r{i}" for i in range(60)], "text": texts}), tmp_path / "in.parquet")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["score", str(tmp_path / "in.parquet"), "--output", str(out), "--model", str(five_class_bundle.path),
         "--engine", engine],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{engine} (60 reviews)" in result.output
    scored = pd.concat(pd.read_parquet(f) for f in sorted(glob.glob(f"{out}/scored-*.parquet")))
    scored = scored.set_index("review_id").loc[[f"r{i}" for i in range(60)]]
    probabilities = np.array([[entry["prob"] for entry in row] for row in scored.label_probs])
    assert all([entry["label"] for entry in row] == list(FIVE_CLASSES) for row in scored.label_probs)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (scored.predicted_label == [FIVE_CLASSES[i] for i in probabilities.argmax(axis=1)]).all()
    np.testing.assert_array_equal(scored.score.to_numpy(), probabilities.max(axis=1).astype(np.float32))

    model = five_class_bundle.load_model()
    encoded = five_class_bundle.encoder.encode(texts)
    keras_probabilities = class_probabilities(model.predict(encoded.padded(), verbose=0))
    calibrated = five_class_bundle.calibration.probabilities(np.log(keras_probabilities))
    np.testing.assert_allclose(probabilities, calibrated, atol=1e-5, rtol=0)
    summary = json.loads((out / "_SUMMARY.json").read_text())
    assert summary["records_scored"] == 60 and set(summary["label_counts"]) <= set(FIVE_CLASSES)


def test_evaluate_five_classes(five_class_bundle, tmp_path):
    reviews = make_five_class_reviews(100, seed=4)
    pq.write_table(
        pa.table({"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}),  # indices this time
        tmp_path / "labelled.parquet",
    )
    report = tmp_path / "report"
    result = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "labelled.parquet"), "--model", str(five_class_bundle.path),
         "--output", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((report / "metrics.json").read_text())
    matrix = np.array(metrics["confusion_matrix"]["values"])
    assert matrix.shape == (5, 5) and matrix.sum() == 100 and matrix.sum(axis=1).tolist() == [20] * 5
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / 100)
    assert set(metrics["per_class"]) == set(FIVE_CLASSES) and "mean_absolute_class_error" in metrics
    assert "macro-F1" in result.output and "somewhat positive" in result.output
    for plot in ("confusion_matrix.svg", "reliability_diagram.svg"):
        assert (report / plot).read_text().startswith("<?xml")
    assert not (report / "roc_curve.svg").exists()


def test_labels_outside_the_bundles_classes_are_named(five_class_bundle, tmp_path):
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": [1, 7, 9]}), tmp_path / "bad.parquet")
    result = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "bad.parquet"), "--model", str(five_class_bundle.path),
         "--output", str(tmp_path / "r")],
    )  # fmt: skip
    assert result.exit_code == 2 and "outside the classes" in result.output and "7, 9" in result.output
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["neutral", "meh"]}), tmp_path / "names.parquet")
    result = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "names.parquet"), "--model", str(five_class_bundle.path),
         "--output", str(tmp_path / "r")],
    )  # fmt: skip
    assert result.exit_code == 2 and "'meh'" in result.output and "Traceback" not in result.output


def test_training_refuses_a_class_without_rows(tmp_path):
    reviews = [r for r in make_five_class_reviews(100) if r[1] != 2]  # no neutral review at all
    pq.write_table(
        pa.table({"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}), tmp_path / "d.parquet"
    )
    result = runner.invoke(
        app,
        ["train", "--data", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "b"), "--group-column", "none",
         "--class-names", ",".join(FIVE_CLASSES), "--epochs", "1"],
    )  # fmt: skip
    assert result.exit_code == 2 and "no training rows of class 'neutral'" in result.output
    assert not (tmp_path / "b").exists()


def test_binary_bundles_are_the_two_class_case(tiny_bundle):
    """The binary manifest scores P(positive); predicted labels follow the same argmax, ties to positive."""
    names = Labels.of(tiny_bundle.manifest)
    assert names.score_label == "positive"
    columns = names.columns(np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1]], dtype=np.float32))
    assert columns["predicted_label"].to_pylist() == ["positive", "positive", "negative"]
    np.testing.assert_array_equal(columns["score"], np.array([0.7, 0.5, 0.1], dtype=np.float32))


@pytest.mark.slow
def test_training_on_two_sources_with_a_separate_validation_set(tmp_path):
    """Phrases and sentences together, validated on a dev set, as the five-class recipe trains."""
    for name, seed, n in (("phrases", 1, 150), ("sentences", 2, 100), ("dev", 3, 50)):
        reviews = make_five_class_reviews(n, seed)
        if name == "phrases":
            reviews[:2] = [(",", 2), ("-LRB- -RRB-", 2)]  # phrases with no word at all: left out
        pq.write_table(
            pa.table({"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}),
            tmp_path / f"{name}.parquet",
        )
    result = runner.invoke(
        app,
        ["train", "--data", str(tmp_path / "phrases.parquet"), "--data", str(tmp_path / "sentences.parquet"),
         "--validation-data", str(tmp_path / "dev.parquet"), "--class-names", ",".join(FIVE_CLASSES), "--ordinal",
         "--treebank", "--arch", "lstm", "--epochs", "2", "--vocab-size", "100", "--max-length", "20",
         "--out", str(tmp_path / "bundle"), "--name", "two-sources"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from pipeline.model.bundle import Bundle

    bundle = Bundle.open(tmp_path / "bundle")
    assert bundle.manifest.training_data["rows"] == 250 and bundle.manifest.training_data["validation_rows"] == 50
    assert bundle.manifest.training_data["empty_texts_left_out"] == 2 and "left out 2 texts" in result.output
    split = bundle.manifest.metrics["validation_split"]
    assert split["kind"] == "separate validation data" and split["held_out_by"].startswith("file")
    training_texts = {
        t for name in ("phrases", "sentences") for t in pq.read_table(tmp_path / f"{name}.parquet")["text"].to_pylist()
    }
    dev_texts = pq.read_table(tmp_path / "dev.parquet")["text"].to_pylist()
    assert split["validation_texts_also_in_training"] == sum(text in training_texts for text in dev_texts)
    assert bundle.preprocessing.treebank and bundle.manifest.ordinal
    assert bundle.load_model().layers[-1].units == 5
