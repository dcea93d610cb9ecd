"""End-to-end training on data the tests write: aclImdb layout and Parquet, through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.bundle import Bundle
from tests.conftest import make_reviews
from training.datasets import DatasetError, load_labelled

runner = CliRunner()


def write_aclimdb(root, reviews, with_urls=True):
    """aclImdb's layout: ID_RATING.txt per review; line ID of urls_pos.txt/urls_neg.txt names its movie."""
    urls = {"pos": [], "neg": []}
    for i, (text, label) in enumerate(reviews):
        kind = "pos" if label else "neg"
        folder = root / "train" / kind
        folder.mkdir(parents=True, exist_ok=True)
        number = len(urls[kind])
        (folder / f"{number}_{8 if label else 2}.txt").write_text(text, encoding="utf-8")
        urls[kind].append(f"http://www.imdb.com/title/tt{i // 5:07d}/usercomments")
    if with_urls:
        for kind, lines in urls.items():
            (root / "train" / f"urls_{kind}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The test split must never be read for training.
    (root / "test" / "pos").mkdir(parents=True)
    (root / "test" / "pos" / "0_10.txt").write_text("test split text", encoding="utf-8")


@pytest.mark.slow
def test_train_cli_on_aclimdb_layout_then_info(tmp_path):
    write_aclimdb(tmp_path / "aclImdb", make_reviews(160, seed=3))
    out = tmp_path / "bundle"
    result = runner.invoke(
        app,
        ["train", "--data", str(tmp_path / "aclImdb"), "--out", str(out), "--arch", "cnn-lstm", "--epochs", "2",
         "--vocab-size", "100", "--max-length", "30", "--batch-size", "16", "--version", "9.9.9"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bundle = Bundle.open(out)
    assert bundle.manifest.version == "9.9.9"
    assert bundle.manifest.name == "aclimdb-cnn-lstm"  # named after its data: no --name given
    assert bundle.manifest.training_data["rows"] == 160
    split = bundle.manifest.metrics["validation_split"]
    assert split["kind"] == "grouped" and split["group_column"] == "movie_id"
    assert split["groups"]["train"] + split["groups"]["validation"] + split["groups"]["calibration"] == 32
    assert "test split text" not in (out / "vocab.json").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and len(metrics["history"]["val_loss"]) == 2
    assert (out / "training_history.png").read_bytes().startswith(b"\x89PNG")

    described = runner.invoke(app, ["info", str(out)])
    assert described.exit_code == 0, described.output
    for expected in ("cnn-lstm", "9.9.9", "vocabulary", "max_length: 30", "validation_accuracy", "sha256:",
                     "calibration", "ECE of score"):  # fmt: skip
        assert expected in described.output


def test_trained_model_learns_the_synthetic_signal(tiny_bundle):
    model = tiny_bundle.load_model()
    reviews = ["wonderful brilliant superb film", "dreadful awful boring film"]
    positive, negative = model.predict(tiny_bundle.encoder.encode(reviews).padded(), verbose=0)[:, 0]
    assert positive > 0.5 > negative


@pytest.mark.slow
def test_training_is_reproducible_with_a_seed(tmp_path, labelled_parquet):
    def run(out):
        result = runner.invoke(
            app,
            ["train", "--data", labelled_parquet, "--out", str(out), "--arch", "lstm", "--epochs", "1",
             "--vocab-size", "50", "--max-length", "20", "--seed", "5"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return Bundle.open(out)

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert first.vocabulary == second.vocabulary
    assert first.manifest.training_data == second.manifest.training_data
    texts = ["wonderful film", "boring plot"]
    a = first.load_model().predict(first.encoder.encode(texts).padded(), verbose=0)
    b = second.load_model().predict(second.encoder.encode(texts).padded(), verbose=0)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_training_data_is_one_clear_error(tmp_path):
    pq.write_table(pa.table({"body": ["x"], "label": [1]}), tmp_path / "no_text.parquet")
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "no_text.parquet"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no column 'text'" in result.output
    pq.write_table(pa.table({"text": ["x", "y"], "label": [1, 3]}), tmp_path / "bad_label.parquet")
    with pytest.raises(DatasetError, match=r"outside the classes \(0 negative, 1 positive\): 3"):
        load_labelled(tmp_path / "bad_label.parquet")
    with pytest.raises(DatasetError, match="does not exist"):
        load_labelled(tmp_path / "missing")


def test_string_labels_are_accepted(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["positive", "negative"]}), tmp_path / "s.parquet")
    assert load_labelled(tmp_path / "s.parquet").labels.tolist() == [1, 0]


def test_evaluate_reports_metrics_and_plots(tiny_bundle, tmp_path):
    reviews = make_reviews(80, seed=21)
    root = tmp_path / "aclImdb"
    for i, (text, label) in enumerate(reviews):  # the evaluation reads test/, never train/
        folder = root / "test" / ("pos" if label else "neg")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}_5.txt").write_text(text, encoding="utf-8")
    (root / "train" / "pos").mkdir(parents=True)
    report = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", str(root), "--model", str(tiny_bundle.path), "--output", str(report)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["examples"] == 80 and metrics["model_version"] == tiny_bundle.model_version
    matrix = np.array(metrics["confusion_matrix"]["values"])
    assert matrix.sum() == 80 and matrix.sum(axis=1).tolist() == [40, 40]
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / 80)
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and f"accuracy {metrics['accuracy']:.4f}" in result.output
    assert 0.0 <= metrics["ece"] <= 1.0 and metrics["ece_bins"] == 15 and 0.0 <= metrics["brier"] <= 1.0
    assert metrics["calibration"] == tiny_bundle.calibration.method and "ECE" in result.output
    for plot in ("roc_curve.svg", "score_histogram.svg", "reliability_diagram.svg"):
        assert (report / plot).read_text().startswith("<?xml")


def test_roc_auc_matches_pairwise_definition():
    from training.evaluation import roc_auc

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # ties on purpose
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert roc_auc(labels, scores) == pytest.approx(expected)


def test_split_and_calibration_are_recorded_in_the_manifest(tiny_bundle):
    metrics = tiny_bundle.manifest.metrics
    split = metrics["validation_split"]
    assert split["kind"] == "grouped" and split["group_column"] == "movie_id" and split["seed"] == 1337
    assert sum(split["rows"].values()) == 240
    assert metrics["heldout"]["split"].startswith("calibration fold: grouped")
    assert tiny_bundle.calibration.method in ("temperature", "platt")
    assert "calibration.json" in tiny_bundle.manifest.files
    details = tiny_bundle.calibration.details
    assert details["rows"] == split["rows"]["calibration"] and "ece" in details["before"] and "ece" in details["after"]


def test_missing_or_empty_group_column_is_one_clear_error(tmp_path):
    reviews = make_reviews(40)
    table = {"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}
    pq.write_table(pa.table(table), tmp_path / "ungrouped.parquet")
    pq.write_table(pa.table({**table, "movie_id": pa.nulls(40, pa.string())}), tmp_path / "null.parquet")
    for data, message in (("ungrouped.parquet", "no column 'movie_id'"), ("null.parquet", "null in every row")):
        result = runner.invoke(app, ["train", "--data", str(tmp_path / data), "--out", str(tmp_path / "o")])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert not (tmp_path / "o").exists()
    write_aclimdb(tmp_path / "aclImdb", reviews, with_urls=False)
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "aclImdb"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "urls_neg.txt is missing" in result.output


@pytest.mark.slow
def test_group_column_none_splits_review_by_review(tmp_path):
    reviews = make_reviews(60)
    table = {"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}
    pq.write_table(pa.table(table), tmp_path / "ungrouped.parquet")
    out = tmp_path / "bundle"
    result = runner.invoke(
        app,
        ["train", "--data", str(tmp_path / "ungrouped.parquet"), "--out", str(out), "--group-column", "none",
         "--arch", "lstm", "--epochs", "1", "--vocab-size", "50", "--max-length", "20", "--calibration-fraction", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bundle = Bundle.open(out)
    assert bundle.manifest.metrics["validation_split"]["kind"] == "random"
    assert bundle.calibration.method == "none" and "calibration.json" not in bundle.manifest.files


def test_aclimdb_movie_ids_come_from_the_urls_files(tmp_path):
    write_aclimdb(tmp_path / "aclImdb", make_reviews(20))
    data = load_labelled(tmp_path / "aclImdb", group_column="movie_id")
    # neg files first (reviews 0, 2, ... of make_reviews), each review's movie is i // 5
    assert data.groups.tolist() == [f"tt{i // 5:07d}" for i in range(0, 20, 2)] + [
        f"tt{i // 5:07d}" for i in range(1, 20, 2)
    ]
