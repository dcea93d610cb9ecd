"""A shadow model (--shadow-model) scoring beside the run's: the real Beam pipeline on DirectRunner, two
real tiny bundles, through the CLI."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from schemas.output_names import (
    LABEL_PROBS,
    MODEL_VERSION,
    PREDICTED_LABEL,
    REVIEW_ID,
    SCORE,
    SHADOW_COLUMNS,
    SHADOW_LABEL_PROBS,
    SHADOW_MODEL_VERSION,
    SHADOW_PREDICTED_LABEL,
    SHADOW_SCORE,
    SUMMARY_FILE,
)
from tests.conftest import make_reviews

runner = CliRunner()
ONLY_STOPWORDS = "only-stopwords"
"""A review of stop words alone: the challenger, which drops them, is left no word of it."""


def score(*args):
    return runner.invoke(app, ["score", *map(str, args)], obj={"beam_args": []})


def scored(output: Path) -> pd.DataFrame:
    files = sorted(glob.glob(f"{output}/scored-*.parquet"))
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return frame.set_index(REVIEW_ID).sort_index()


def summary(output: Path) -> dict:
    return json.loads((output / SUMMARY_FILE).read_text())


@pytest.fixture(scope="module")
def challenger(tmp_path_factory, labelled_parquet):
    """A second binary bundle, trained on the opposite labels (so the two disagree on most reviews) and
    with its own preprocessing (stop words dropped) and vocabulary."""
    from training.config import TrainingConfig
    from training.train import train

    folder = tmp_path_factory.mktemp("challenger")
    table = pq.read_table(labelled_parquet)
    flipped = table.set_column(table.schema.get_field_index("label"), "label", pa.compute.subtract(1, table["label"]))
    pq.write_table(flipped, folder / "flipped.parquet")
    return train(
        TrainingConfig(
            data=folder / "flipped.parquet",
            out=folder / "bundle",
            architecture="lstm",
            epochs=3,
            batch_size=16,
            vocab_size=150,
            max_length=30,
            validation_fraction=0.25,
            remove_stopwords=True,
            version="9.9.9",
            verbose=0,
        )
    )


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> Path:
    texts = [text for text, _ in make_reviews(60, seed=7)] + ["The and it was."]
    ids = [f"r{i:03d}" for i in range(len(texts) - 1)] + [ONLY_STOPWORDS]
    path = tmp_path_factory.mktemp("shadow-input") / "reviews.parquet"
    pq.write_table(pa.table({REVIEW_ID: ids, "text": texts}), path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bundle, challenger, reviews) -> dict[str, Path]:
    """A plain run of each bundle, and the shadowed run, over the same reviews."""
    root = tmp_path_factory.mktemp("shadow-runs")
    commands = {
        "champion": ["--model", tiny_bundle.path],
        "challenger": ["--model", challenger.path],
        "shadowed": ["--model", tiny_bundle.path, "--shadow-model", challenger.path, "--explain-sample", 1000],
    }
    for name, options in commands.items():
        result = score(reviews, "--output", root / name, *options)
        assert result.exit_code == 0, result.output
    return {name: root / name for name in commands}


def test_champion_columns_equal_a_plain_run(runs):
    plain, shadowed = scored(runs["champion"]), scored(runs["shadowed"])
    pd.testing.assert_frame_equal(shadowed.drop(columns=list(SHADOW_COLUMNS)), plain)


def test_shadow_columns_equal_a_plain_run_of_the_challenger(runs):
    plain, shadowed = scored(runs["challenger"]), scored(runs["shadowed"])
    both = shadowed.loc[plain.index]
    assert (both[SHADOW_PREDICTED_LABEL] == plain[PREDICTED_LABEL]).all()
    np.testing.assert_allclose(both[SHADOW_SCORE], plain[SCORE], atol=1e-5)
    assert (both[SHADOW_MODEL_VERSION] == plain[MODEL_VERSION]).all()
    assert [[p["label"] for p in probs] for probs in both[SHADOW_LABEL_PROBS]] == [
        [p["label"] for p in probs] for probs in plain[LABEL_PROBS]
    ]


def test_agreement_is_the_share_of_equal_labels(runs):
    rows = scored(runs["shadowed"]).dropna(subset=[SHADOW_PREDICTED_LABEL])
    shadow = summary(runs["shadowed"])["shadow"]
    assert shadow["reviews_compared"] == len(rows)
    same = (rows[PREDICTED_LABEL] == rows[SHADOW_PREDICTED_LABEL]).mean()
    assert shadow["agreement"] == pytest.approx(same, abs=1e-6)
    assert shadow["agreement"] < 0.5  # trained on the opposite labels
    assert sum(sum(row.values()) for row in shadow["labels"].values()) == len(rows)
    assert sum(shadow["score_differences"]) == len(rows)
    gaps = (rows[SCORE] - rows[SHADOW_SCORE]).abs()
    assert shadow["max_abs_score_difference"] == pytest.approx(gaps.max(), abs=1e-5)
    assert shadow["model"]["version"] == "9.9.9"
    assert summary(runs["shadowed"])["lineage"]["options"]["shadow_model"] == shadow["model"]["location"]
    disagreements = shadow["disagreements"]
    assert disagreements and disagreements[0]["champion_label"] != disagreements[0]["shadow_label"]
    differences = [abs(d["champion_score"] - d["shadow_score"]) for d in disagreements]
    assert differences == sorted(differences, reverse=True)
    assert disagreements[0]["champion_words"]  # the run explained every review of its sample


def test_a_review_the_shadow_cannot_score_keeps_its_row_and_is_counted(runs):
    rows, plain = scored(runs["shadowed"]), scored(runs["champion"])
    row = rows.loc[ONLY_STOPWORDS]
    assert row[list(SHADOW_COLUMNS)].isna().all()
    assert row[PREDICTED_LABEL] == plain.loc[ONLY_STOPWORDS, PREDICTED_LABEL]
    run = summary(runs["shadowed"])
    assert run["shadow"]["records_failed"] == 1
    assert run["records_failed"] == 0 and run["records_scored"] == len(rows)
    assert run["shadow"]["reviews_compared"] == len(rows) - 1


def test_too_much_disagreement_fails_the_run_with_its_output_complete(tmp_path, tiny_bundle, challenger, reviews):
    output = tmp_path / "out"
    result = score(
        reviews, "--output", output, "--model", tiny_bundle.path, "--shadow-model", challenger.path,
        "--max-disagreement", "0.0001",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    problems = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(problems) == 1 and "--max-disagreement" in problems[0]
    verdict = summary(output)["verdict"]
    assert verdict["passed"] is False and verdict["max_disagreement"] == 0.0001
    assert len(scored(output)) == 61


def test_a_shadow_with_other_classes_is_refused_before_anything_loads(tmp_path, tiny_bundle, reviews):
    five_classes = Path(__file__).parents[1] / "models" / "rt-sentiment5"
    output = tmp_path / "out"
    result = score(reviews, "--output", output, "--model", tiny_bundle.path, "--shadow-model", five_classes)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert str(five_classes) in result.output and str(tiny_bundle.path) in result.output
    assert not output.exists()


def test_a_shadow_that_is_not_there_is_refused(tmp_path, tiny_bundle, reviews):
    result = score(reviews, "--output", tmp_path / "out", "--model", tiny_bundle.path, "--shadow-model", tmp_path / "x")
    assert result.exit_code == 2
    assert "does not exist" in result.output and str(tmp_path / "x") in result.output
    assert not (tmp_path / "out").exists()


def test_max_disagreement_needs_a_shadow(tmp_path, tiny_bundle, reviews):
    result = score(reviews, "--output", tmp_path / "out", "--model", tiny_bundle.path, "--max-disagreement", "0.1")
    assert result.exit_code == 2
    assert "--shadow-model" in result.output
    assert not (tmp_path / "out").exists()
