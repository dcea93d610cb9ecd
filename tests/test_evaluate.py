"""`reviewscore evaluate`: inputs as `score` takes them, per-review predictions, the confusion matrix, and the
warning when the labelled reviews overlap the bundle's training data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from schemas.bundle import METRICS_FILE, TRAINING_HASHES_FILE
from schemas.output_names import (
    CONFUSION_PLOT_FILE,
    CORRECT,
    EVALUATED_ID,
    EVALUATION_PAGE_FILE,
    LABEL_PROBS,
    PREDICTED_LABEL,
    PREDICTIONS_FILE,
    RELIABILITY_PLOT_FILE,
    ROC_PLOT_FILE,
    SCORE,
    SCORE_HISTOGRAM_FILE,
    TRUE_LABEL,
)
from tests.conftest import make_reviews
from training.overlap import PARTS, text_hashes

runner = CliRunner()


def write_labelled(path, reviews, ids=None):
    columns = {"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}
    if ids is not None:
        columns["review_id"] = ids
    pq.write_table(pa.table(columns), path)


def evaluate(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def test_inputs_as_score_takes_them_and_one_prediction_row_per_review(tiny_bundle, tmp_path):
    reviews = make_reviews(30, seed=31)
    data = tmp_path / "data"
    (data / "more").mkdir(parents=True)
    write_labelled(data / "a.parquet", reviews[:10], ids=[f"r{i}" if i != 3 else None for i in range(10)])
    write_labelled(data / "more" / "b.parquet", reviews[10:20])  # no id column: FILE:ROW
    folder = tmp_path / "reviews"
    for i, (text, label) in enumerate(reviews[20:]):
        (folder / ("pos" if label else "neg")).mkdir(parents=True, exist_ok=True)
        (folder / ("pos" if label else "neg") / f"{i}_5.txt").write_text(text, encoding="utf-8")

    out = tmp_path / "out"
    result = evaluate(data / "*.parquet", data / "more", folder, "--model", tiny_bundle.path, "--output", out)
    assert result.exit_code == 0, result.output
    predictions = pd.read_parquet(out / PREDICTIONS_FILE)
    assert list(predictions.columns) == [EVALUATED_ID, TRUE_LABEL, PREDICTED_LABEL, SCORE, LABEL_PROBS, CORRECT]
    ids = predictions[EVALUATED_ID].tolist()
    assert ids[:12] == ["r0", "r1", "r2", "a.parquet:3", *[f"r{i}" for i in range(4, 10)], "b.parquet:0", "b.parquet:1"]
    folder_names = {f"{'pos' if label else 'neg'}/{i}_5.txt": label for i, (_, label) in enumerate(reviews[20:])}
    assert sorted(ids[20:]) == sorted(folder_names)
    labels = predictions[TRUE_LABEL].tolist()
    assert labels[20:] == [("positive" if folder_names[name] else "negative") for name in ids[20:]]
    assert predictions[TRUE_LABEL].tolist()[:20] == [("positive" if label else "negative") for _, label in reviews[:20]]
    assert (predictions[CORRECT] == (predictions[TRUE_LABEL] == predictions[PREDICTED_LABEL])).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["examples"] == 30 and metrics["accuracy"] == pytest.approx(predictions[CORRECT].mean())

    # The same reviews in one file give the same metrics: inputs only add up.
    write_labelled(tmp_path / "all.parquet", reviews[:20] + sorted(reviews[20:], key=lambda r: r[1]))
    single = evaluate(tmp_path / "all.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "single")
    assert single.exit_code == 0, single.output
    alone = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert alone["confusion_matrix"] == metrics["confusion_matrix"]
    assert alone["brier"] == pytest.approx(metrics["brier"])


def test_the_confusion_matrix_is_a_table_of_true_rows_and_predicted_columns(tiny_bundle, tmp_path):
    write_labelled(tmp_path / "d.parquet", make_reviews(40, seed=32))
    result = evaluate(tmp_path / "d.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "o")
    assert result.exit_code == 0, result.output
    matrix = json.loads((tmp_path / "o" / "metrics.json").read_text())["confusion_matrix"]["values"]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "true \\ predicted" in line)
    assert lines[header].index("negative") < lines[header].index("positive")
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines[header + 2 : header + 4]]
    assert rows == [["negative", *map(str, matrix[0])], ["positive", *map(str, matrix[1])]]


def test_reviews_of_one_class_have_no_roc_auc_and_valid_json(tiny_bundle, tmp_path):
    positives = [review for review in make_reviews(40, seed=33) if review[1] == 1]
    write_labelled(tmp_path / "p.parquet", positives)
    result = evaluate(tmp_path / "p.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "o")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "o" / "metrics.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"))["roc_auc"] is None
    assert "ROC AUC n/a (one class only)" in result.stdout


def test_overlap_with_the_training_data_is_one_warning_counted_by_part(tiny_bundle, labelled_parquet, tmp_path):
    assert TRAINING_HASHES_FILE in tiny_bundle.manifest.files
    recorded = pq.read_table(tiny_bundle.path / TRAINING_HASHES_FILE)
    assert set(recorded.column("part").to_pylist()) <= set(PARTS) and recorded.num_rows == 240

    trained = pq.read_table(labelled_parquet).slice(0, 50)
    fresh = make_reviews(50, seed=33)
    mixed = pa.table({"text": trained.column("text").to_pylist() + [t for t, _ in fresh],
                      "label": trained.column("label").to_pylist() + [label for _, label in fresh]})  # fmt: skip
    pq.write_table(mixed, tmp_path / "mixed.parquet")
    result = evaluate(tmp_path / "mixed.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "o")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "50 of 100 reviews (50.0%) were in the bundle's training data" in warning[0]
    overlap = json.loads((tmp_path / "o" / "metrics.json").read_text())["training_overlap"]
    assert overlap["seen"] == 50 and sum(overlap["by_part"].values()) >= 50 and overlap["hashes"] == 240
    assert all(f"{count} {part}" in warning[0] for part, count in overlap["by_part"].items() if count)

    write_labelled(tmp_path / "fresh.parquet", fresh)
    clean = evaluate(tmp_path / "fresh.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "c")
    assert clean.exit_code == 0 and "warning" not in clean.stderr
    assert "overlap with the training data: none of 50 reviews" in clean.stderr


def test_a_bundle_without_review_hashes_knows_only_an_exact_match(tiny_bundle, labelled_parquet, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(tiny_bundle.path, older)
    (older / TRAINING_HASHES_FILE).unlink()
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["files"][TRAINING_HASHES_FILE]
    (older / "manifest.json").write_text(json.dumps(manifest))

    exact = evaluate(labelled_parquet, "--model", older, "--output", tmp_path / "e")
    assert exact.exit_code == 0, exact.output
    assert "240 of 240 reviews (100.0%) are the bundle's training data" in exact.stderr.replace("\n", " ")
    part = pq.read_table(labelled_parquet).slice(0, 100)
    pq.write_table(part, tmp_path / "part.parquet")
    unknown = evaluate(tmp_path / "part.parquet", "--model", older, "--output", tmp_path / "u")
    assert unknown.exit_code == 0 and "warning" not in unknown.stderr
    assert "overlap unknown: the bundle records no per-review hashes" in unknown.stderr.replace("\n", " ")


def test_text_hashes_are_equal_for_equal_texts_only():
    hashes = text_hashes(pa.array(["a fine film", "a fine film", "a fine film.", ""]))
    assert hashes.dtype == np.uint64 and hashes[0] == hashes[1] and len(set(hashes.tolist())) == 3


def test_evaluate_refuses_an_input_that_matches_nothing(tiny_bundle, tmp_path):
    result = evaluate(tmp_path / "nothing-*.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "o")
    assert result.exit_code == 2 and "matches no file" in result.output and "Traceback" not in result.output
    (tmp_path / "empty").mkdir()
    result = evaluate(tmp_path / "empty", "--model", tiny_bundle.path, "--output", tmp_path / "o")
    assert result.exit_code == 2 and "holds no *.parquet files" in result.output


ROOT = Path(__file__).resolve().parent.parent
FIVE_CLASS_BUNDLE = ROOT / "models" / "rt-sentiment5"
"""Committed, read only here: the labels are checked against its classes before its model is loaded."""
WITHOUT_TRAINING_LIBRARIES = """
import sys
for name in ("matplotlib", "sklearn", "scipy", "tensorflow", "keras", *sys.argv[1].split(",")):
    sys.modules[name] = None  # `import name` fails, as in the scoring install
from pipeline.cli import main
sys.argv = ["reviewscore", *sys.argv[2:]]
main()
"""


def evaluate_without(blocked: str, *args) -> subprocess.CompletedProcess:
    """`reviewscore evaluate ARGS` in a process where the train extra's libraries (and `blocked`) cannot be
    imported."""
    command = [sys.executable, "-c", WITHOUT_TRAINING_LIBRARIES, blocked, "evaluate", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_evaluate_writes_metrics_and_svg_plots_without_any_plotting_or_training_library(tiny_bundle, tmp_path):
    write_labelled(tmp_path / "d.parquet", make_reviews(40, seed=34))
    out = tmp_path / "out"
    done = evaluate_without("", tmp_path / "d.parquet", "--model", tiny_bundle.path, "--output", out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((out / METRICS_FILE).read_text())["examples"] == 40
    plots = [CONFUSION_PLOT_FILE, RELIABILITY_PLOT_FILE, ROC_PLOT_FILE, SCORE_HISTOGRAM_FILE]
    assert sorted(path.name for path in out.iterdir()) == sorted([METRICS_FILE, PREDICTIONS_FILE,
                                                                   EVALUATION_PAGE_FILE, *plots])  # fmt: skip
    for plot in plots:
        root = ElementTree.parse(out / plot).getroot()
        assert (
            root.tag == "{http://www.w3.org/2000/svg}svg" and root.find("{http://www.w3.org/2000/svg}style") is not None
        )
    page = (out / EVALUATION_PAGE_FILE).read_text()
    assert page.count('<svg class="chart"') == len(plots) and "<script" not in page and "http" not in page.lower()
    assert f"{json.loads((out / METRICS_FILE).read_text())['accuracy']:.4f}" in page


def test_integer_labels_that_do_not_fit_the_classes_exit_2_before_the_model_loads_and_write_nothing(tmp_path):
    imdb_like = make_reviews(30, seed=35)  # labelled 0 and 1, as IMDB labels its reviews
    write_labelled(tmp_path / "binary.parquet", imdb_like)
    out = tmp_path / "out"
    # onnxruntime blocked too: had the model been loaded, it would fail otherwise than on the labels.
    refused = evaluate_without("onnxruntime", tmp_path / "binary.parquet", "--model", FIVE_CLASS_BUNDLE,
                               "--output", out)  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr  # one line, no traceback
    message = refused.stderr
    assert "take 2 distinct values (0, 1)" in message and "5 classes (0 negative" in message
    assert "4 positive" in message and "class name" in message
    assert not out.exists()

    # Review folders are labelled 0 and 1 by neg/ and pos/: refused against five classes too.
    for i, (text, label) in enumerate(imdb_like):
        (tmp_path / "reviews" / ("pos" if label else "neg")).mkdir(parents=True, exist_ok=True)
        (tmp_path / "reviews" / ("pos" if label else "neg") / f"{i}_5.txt").write_text(text, encoding="utf-8")
    folders = evaluate(tmp_path / "reviews", "--model", FIVE_CLASS_BUNDLE, "--output", out)
    assert folders.exit_code == 2 and "neg/ and pos/" in folders.output and not out.exists()


@pytest.mark.slow
def test_five_class_labels_are_indices_when_every_class_occurs_or_names_when_some_are_missing(tmp_path):
    texts = [text for text, _ in make_reviews(12, seed=36)]
    every = [i % 5 for i in range(12)]
    write_labelled(tmp_path / "every.parquet", list(zip(texts, every, strict=True)))
    # Split over two files, one of which lacks classes: the labels are judged together.
    write_labelled(tmp_path / "a.parquet", list(zip(texts[:3], every[:3], strict=True)))
    write_labelled(tmp_path / "b.parquet", list(zip(texts[3:], every[3:], strict=True)))
    for args in [(tmp_path / "every.parquet",), (tmp_path / "a.parquet", tmp_path / "b.parquet")]:
        out = tmp_path / f"out{len(args)}"
        result = evaluate(*args, "--model", FIVE_CLASS_BUNDLE, "--output", out)
        assert result.exit_code == 0, result.output
        assert json.loads((out / METRICS_FILE).read_text())["examples"] == 12
        assert not (out / ROC_PLOT_FILE).exists() and (out / CONFUSION_PLOT_FILE).exists()

    missing = [0, 1, 3, 4] * 3  # no neutral review: as indices, ambiguous
    write_labelled(tmp_path / "missing.parquet", list(zip(texts, missing, strict=True)))
    refused = evaluate(tmp_path / "missing.parquet", "--model", FIVE_CLASS_BUNDLE, "--output", tmp_path / "m")
    assert refused.exit_code == 2 and "(0, 1, 3, 4)" in refused.output
    names = ["negative", "somewhat negative", "neutral", "somewhat positive", "positive"]
    write_labelled(
        tmp_path / "named.parquet", [(text, names[label]) for text, label in zip(texts, missing, strict=True)]
    )
    named = evaluate(tmp_path / "named.parquet", "--model", FIVE_CLASS_BUNDLE, "--output", tmp_path / "n")
    assert named.exit_code == 0, named.output


def test_binary_labels_of_one_class_fit_a_binary_bundle(tiny_bundle, tmp_path):
    negatives = [review for review in make_reviews(20, seed=37) if review[1] == 0]
    write_labelled(tmp_path / "n.parquet", negatives)
    result = evaluate(tmp_path / "n.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "o")
    assert result.exit_code == 0, result.output


def test_a_non_empty_output_is_refused_without_overwrite_and_its_other_files_stay_with_it(tiny_bundle, tmp_path):
    write_labelled(tmp_path / "d.parquet", make_reviews(20, seed=38))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "old").mkdir()
    (out / "old" / "figure.svg").write_text("<svg/>")
    refused = evaluate(tmp_path / "d.parquet", "--model", tiny_bundle.path, "--output", out)
    assert refused.exit_code == 2
    assert "is not empty: 2 files" in refused.output and "--overwrite" in refused.output
    assert sorted(p.name for p in out.rglob("*")) == ["figure.svg", "notes.txt", "old"]

    first = evaluate(tmp_path / "d.parquet", "--model", tiny_bundle.path, "--output", out, "--overwrite")
    assert first.exit_code == 0, first.output
    assert (out / "notes.txt").read_text() == "mine" and (out / ROC_PLOT_FILE).exists()
    # Another bundle's evaluation over it replaces every file of the first, the binary-only plots included.
    five = [(text, i % 5) for i, (text, _) in enumerate(make_reviews(10, seed=39))]
    write_labelled(tmp_path / "five.parquet", five)
    second = evaluate(tmp_path / "five.parquet", "--model", FIVE_CLASS_BUNDLE, "--output", out, "--overwrite")
    assert second.exit_code == 0, second.output
    assert not (out / ROC_PLOT_FILE).exists() and not (out / SCORE_HISTOGRAM_FILE).exists()
    assert json.loads((out / METRICS_FILE).read_text())["examples"] == 10
    assert (out / "notes.txt").read_text() == "mine" and (out / "old" / "figure.svg").exists()


def test_an_output_that_is_a_file_is_refused(tiny_bundle, tmp_path):
    write_labelled(tmp_path / "d.parquet", make_reviews(10, seed=40))
    (tmp_path / "taken").write_text("x")
    result = evaluate(tmp_path / "d.parquet", "--model", tiny_bundle.path, "--output", tmp_path / "taken")
    assert result.exit_code == 2 and "is not a folder" in result.output
    assert (tmp_path / "taken").read_text() == "x"


def test_scoring_in_chunks_reports_progress_to_the_end_and_changes_no_figure(tiny_bundle, tmp_path, monkeypatch):
    from training import evaluation

    write_labelled(tmp_path / "d.parquet", make_reviews(30, seed=41))
    whole = evaluation.evaluate_bundle(str(tiny_bundle.path), [str(tmp_path / "d.parquet")], tmp_path / "whole",
                                       "text", "label", "review_id")  # fmt: skip
    monkeypatch.setattr(evaluation, "DEFAULT_MAX_BATCH_SIZE", 7)
    calls = []
    chunked = evaluation.evaluate_bundle(
        str(tiny_bundle.path), [str(tmp_path / "d.parquet")], tmp_path / "chunked", "text", "label", "review_id",
        progress=lambda *call: calls.append(call),
    )  # fmt: skip
    assert calls == [(7, 30), (14, 30), (21, 30), (28, 30), (30, 30)]
    assert chunked.metrics["confusion_matrix"] == whole.metrics["confusion_matrix"]
    assert chunked.metrics["brier"] == pytest.approx(whole.metrics["brier"], abs=1e-6)
