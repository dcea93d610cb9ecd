"""End-to-end scoring: the real Beam pipeline on DirectRunner with a real (tiny) trained bundle."""

from __future__ import annotations

import glob
import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.calibration import logit
from schemas.output import ERROR_FILES, ERROR_SCHEMA, MANIFEST_METADATA_KEY, SUMMARY_FILE

runner = CliRunner()


def score(*args, beam_args=()):
    return runner.invoke(app, ["score", *map(str, args)], obj={"beam_args": list(beam_args)})


def scored_frame(output) -> pd.DataFrame:
    files = sorted(glob.glob(f"{output}/scored-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def error_frame(output) -> pd.DataFrame:
    """The error rows; none (and no _errors/ folder) when every record was scored."""
    files = sorted(glob.glob(f"{output}/{ERROR_FILES}"))
    if not files:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in ERROR_SCHEMA.names})
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def summary(output) -> dict:
    return json.loads((output / SUMMARY_FILE).read_text())


@pytest.fixture
def mixed_inputs(tmp_path):
    reviews = tmp_path / "reviews"
    (reviews / "a" / "deeper").mkdir(parents=True)
    (reviews / "a" / "1.txt").write_text("A wonderful, moving film. Loved it!", encoding="utf-8")
    (reviews / "a" / "deeper" / "2.txt").write_text("Dreadful and boring.<br />Hated it.", encoding="utf-8")
    (reviews / "3.txt").write_bytes(b"\xef\xbb\xbfBrilliant acting\r\nsuperb music\r\n")  # BOM and CRLF
    (reviews / "empty.txt").write_text("   \n", encoding="utf-8")
    (reviews / "latin1.txt").write_bytes("Tr\xe8s bon film".encode("latin-1"))
    (reviews / "notes.md").write_text("not a review", encoding="utf-8")
    table = pa.table(
        {
            "text": ["superb and charming", None, "tedious plot, awful ending"],
            "stars": pa.array([9, 5, 1], pa.int16()),
            "shop": ["x", "y", "z"],
        }
    )
    pq.write_table(table, tmp_path / "shop.parquet")
    return reviews, tmp_path / "shop.parquet"


def test_score_folder_and_parquet_end_to_end(tiny_bundle, mixed_inputs, tmp_path):
    folder, parquet = mixed_inputs
    out = tmp_path / "out"
    result = score(folder, parquet, "--output", out, "--model", tiny_bundle.path)
    assert result.exit_code == 0, result.output

    report = summary(out)
    assert report["records_read"] == 8  # 5 text files (notes.md ignored) + 3 Parquet rows
    assert report["records_read"] == report["records_scored"] + report["records_failed"]
    assert report["records_scored"] == 5 and report["records_failed"] == 3
    assert report["model_version"] == tiny_bundle.model_version
    assert sum(report["label_counts"].values()) == 5
    assert "records read" in result.output and "5" in result.output

    scored = scored_frame(out)
    assert sorted(scored.review_id) == ["3.txt", "a/1.txt", "a/deeper/2.txt", "shop.parquet:0", "shop.parquet:2"]
    assert set(scored.columns) == {
        "review_id", "source", "text", "stars", "shop", "predicted_label", "score", "label_probs", "model_version",
    }  # fmt: skip
    from_parquet = scored[scored.review_id == "shop.parquet:2"].iloc[0]
    assert from_parquet.stars == 1 and from_parquet.shop == "z" and from_parquet.text == "tedious plot, awful ending"
    from_file = scored[scored.review_id == "a/1.txt"].iloc[0]
    assert from_file.source.endswith("reviews/a/1.txt") and from_file.text.startswith("A wonderful")
    assert scored[scored.review_id == "3.txt"].text.iloc[0].startswith("Brilliant")  # BOM dropped
    assert set(scored.predicted_label) <= {"negative", "positive"}
    assert (scored.predicted_label == np.where(scored.score >= 0.5, "positive", "negative")).all()
    assert (scored.model_version == tiny_bundle.model_version).all()
    # label_probs: both classes in manifest order; the binary score is P(positive), exactly its entry.
    for probs, score_value in zip(scored.label_probs, scored.score, strict=True):
        assert [entry["label"] for entry in probs] == ["negative", "positive"]
        assert probs[1]["prob"] == score_value and abs(probs[0]["prob"] + probs[1]["prob"] - 1) < 1e-6

    schema = pq.read_schema(glob.glob(f"{out}/scored-*.parquet")[0])
    assert schema.field("score").type == pa.float32()
    assert schema.field("label_probs").type == pa.list_(
        pa.field(
            "item", pa.struct([pa.field("label", pa.string(), False), pa.field("prob", pa.float32(), False)]), False
        )
    )
    assert schema.field("stars").type == pa.int16()
    assert json.loads(schema.metadata[MANIFEST_METADATA_KEY])["version"] == tiny_bundle.model_version

    errors = error_frame(out).set_index("review_id")
    assert errors.loc["shop.parquet:1", "stage"] == "read" and "null" in errors.loc["shop.parquet:1", "error"]
    assert errors.loc["empty.txt", "stage"] == "preprocess"
    assert errors.loc["latin1.txt", "stage"] == "decode" and "UTF-8" in errors.loc["latin1.txt", "error"]

    counted = duckdb.sql(f"select count(*) from '{out}/scored-*.parquet'").fetchall()[0][0]
    assert counted == 5


@pytest.mark.parametrize("engine", ["onnx", "xla", "keras"])
@pytest.mark.slow
def test_pipeline_scores_equal_direct_keras_scores(tiny_bundle, tmp_path, engine):
    """Parity, with either engine: the pipeline's scores are the Keras model's on training's encoding,
    padded to max length."""
    texts = [
        "wonderful brilliant film",
        "dreadful boring awful plot and the camera was bad " * 3,
        "the ending",
        "Superb! <br /> loved the music, charming actor",
        "tedious",
    ]
    pq.write_table(
        pa.table({"review_id": [f"r{i}" for i in range(len(texts))], "text": texts}), tmp_path / "in.parquet"
    )
    out = tmp_path / "out"
    result = score(
        tmp_path / "in.parquet", "--output", out, "--model", tiny_bundle.path,
        "--inference-batch-size", "2", "--engine", engine,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{engine} (5 reviews)" in result.output  # the engine that scored them, counted by the pipeline
    scored = scored_frame(out).set_index("review_id")

    encoded = tiny_bundle.encoder.encode(texts)  # the encoder training used, from the bundle's settings
    padded = encoded.padded(width=tiny_bundle.preprocessing.max_length)
    direct = tiny_bundle.load_model().predict(padded, verbose=0)[:, 0]
    direct = tiny_bundle.calibration.probabilities(logit(direct))[
        :, 1
    ]  # the bundle's calibration, as scoring applies it
    pipeline_scores = scored.loc[[f"r{i}" for i in range(len(texts))], "score"].to_numpy()
    np.testing.assert_allclose(pipeline_scores, direct, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_two_worker_processes_load_the_model_once_each(tiny_bundle, mixed_inputs, tmp_path):
    folder, parquet = mixed_inputs
    out = tmp_path / "out"
    result = score(
        folder, parquet, "--output", out, "--model", tiny_bundle.path,
        beam_args=["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = summary(out)
    assert report["records_read"] == 8 and report["records_scored"] == 5
    loads = int(result.output.split("model loads")[1].split()[1])
    assert 1 <= loads <= 2


def test_non_empty_output_needs_overwrite_which_deletes_only_our_files(tiny_bundle, mixed_inputs, tmp_path):
    folder, _ = mixed_inputs
    out = tmp_path / "out"
    (out / "_staging" / "beam-temp-x").mkdir(parents=True)
    (out / "_staging" / "beam-temp-x" / "shard").write_bytes(b"half-written")
    (out / "scored-00001-of-00002.parquet").write_bytes(b"stale")  # an earlier run's shard this run won't rewrite
    (out / SUMMARY_FILE).write_text("{}")
    (out / "notes.txt").write_text("the user's own file")
    (out / "old-result.parquet").write_bytes(b"someone else's")
    refused = score(folder, "--output", out, "--model", tiny_bundle.path)
    assert refused.exit_code == 2 and "not empty" in refused.output and "--overwrite" in refused.output
    assert (out / "scored-00001-of-00002.parquet").exists()
    replaced = score(folder, "--output", out, "--model", tiny_bundle.path, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "scored-00001-of-00002.parquet").exists() and not (out / "_staging").exists()
    assert json.loads((out / SUMMARY_FILE).read_text())["records_read"] > 0
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert (out / "old-result.parquet").read_bytes() == b"someone else's"


def test_configuration_errors_exit_2_with_one_message(tiny_bundle, tmp_path):
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "no_text.parquet")
    result = score(tmp_path / "no_text.parquet", "--output", tmp_path / "o1", "--model", tiny_bundle.path)
    assert result.exit_code == 2
    assert "no_text.parquet has no text column 'text'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o1").exists()

    missing = score(tmp_path / "nowhere", "--output", tmp_path / "o2", "--model", tiny_bundle.path)
    assert missing.exit_code == 2 and "does not exist" in missing.output

    pq.write_table(pa.table({"text": ["a fine film"]}), tmp_path / "ok.parquet")
    no_bundle = score(tmp_path / "ok.parquet", "--output", tmp_path / "o3", "--model", tmp_path)
    assert no_bundle.exit_code == 2 and "manifest.json" in no_bundle.output


def test_max_error_rate_exits_1(tiny_bundle, mixed_inputs, tmp_path):
    folder, parquet = mixed_inputs
    result = score(folder, parquet, "--output", tmp_path / "o", "--model", tiny_bundle.path, "--max-error-rate", "0.2")
    assert result.exit_code == 1
    assert "above --max-error-rate" in result.output
    written = summary(tmp_path / "o")
    assert written["records_failed"] == 3  # the output is still complete
    # The verdict is in the summary itself, for a scheduled run that nobody waits on (the Airflow DAG's gate).
    verdict = written["verdict"]
    assert not verdict["passed"] and verdict["max_error_rate"] == 0.2 and verdict["error_rate"] > 0.2
    assert any("above --max-error-rate 20.00%" in problem for problem in verdict["problems"])

    lenient = score(folder, parquet, "--output", tmp_path / "p", "--model", tiny_bundle.path, "--max-error-rate", "0.5")
    assert lenient.exit_code == 0, lenient.output
    assert summary(tmp_path / "p")["verdict"] == {**verdict, "passed": True, "problems": [], "max_error_rate": 0.5}
