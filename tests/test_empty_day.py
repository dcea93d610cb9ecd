"""A day with no reviews is a successful run with nothing to score.

An upstream export that found nothing still finishes with its completion marker (`_SUCCESS`), so an
input folder holding only markers (names starting with `_` or `.`) is scored as an empty day: exit
0, a zero-row scored shard with the output schema (downstream readers keep working), a summary with
0 read and a passing verdict, and the report. A folder with nothing at all in it, or with files
that are not reviews, is still refused (exit 2, one line). Real runs of `reviewscore score` on
DirectRunner with the tiny bundle; gs:// on the Cloud Storage emulator; the Flex Template entry
point as its launcher runs it.
"""

from __future__ import annotations

import io
import json

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from schemas.output import ERRORS_FOLDER, REPORT_FILE, STAGING_FOLDER, SUMMARY_FILE
from schemas.summary import summary_from_json
from tests.test_scoring import score

COLUMNS = ["review_id", "text", "predicted_label", "score", "label_probs", "model_version"]
SHARD = "scored-00000-of-00001.parquet"


def empty_day(folder, *markers: str):
    """An export's folder for a day with no reviews: its completion marker, and any other markers."""
    folder.mkdir(parents=True)
    for name in ("_SUCCESS", *markers):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    return folder


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture(scope="module")
def scored_empty_day(tiny_bundle, tmp_path_factory):
    """`reviewscore score` on a folder of markers only, under the strictest policy."""
    folder = empty_day(tmp_path_factory.mktemp("day") / "2026-11-25", ".part-0.crc", "_temporary/0/_marker")
    out = tmp_path_factory.mktemp("scored") / "out"
    policy = ["--max-error-rate", "0", "--on-drift", "fail"]
    result = score(folder, "--output", out, "--model", tiny_bundle.path, *policy)
    return out, result


def test_an_empty_day_exits_0_with_one_empty_shard_a_summary_and_the_report(scored_empty_day):
    out, result = scored_empty_day
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == sorted([REPORT_FILE, SUMMARY_FILE, SHARD])
    assert not (out / ERRORS_FOLDER).exists() and not (out / STAGING_FOLDER).exists()
    assert b"<svg" in (out / REPORT_FILE).read_bytes()


def test_the_summary_reads_0_and_the_verdict_passes_even_with_the_strictest_policy(scored_empty_day):
    out, _ = scored_empty_day
    summary = summary_from_json((out / SUMMARY_FILE).read_text())
    assert (summary.records_read, summary.records_scored, summary.records_failed) == (0, 0, 0)
    assert summary.accounting_ok and summary.scored_files == (str(out / SHARD),) and summary.error_files == ()
    # 0 failed of 0 read is no breach of --max-error-rate 0; drift is not judged on 0 reviews
    assert summary.verdict.passed and summary.verdict.problems == ()
    assert (summary.verdict.max_error_rate, summary.verdict.on_drift, summary.verdict.error_rate) == (0.0, "fail", 0.0)
    assert not summary.drift.detected and summary.drift.status == "insufficient_data" and summary.drift.reviews == 0
    assert summary.lineage.inputs.records == 0 and summary.lineage.inputs.parquet_files == ()


def test_downstream_readers_read_zero_rows_with_the_output_columns(scored_empty_day):
    out, _ = scored_empty_day
    shard = pq.read_table(out / SHARD)
    assert shard.num_rows == 0 and shard.schema.names == COLUMNS
    assert str(shard.schema.field("score").type) == "float"
    frame = pd.read_parquet(out)
    assert len(frame) == 0 and list(frame.columns) == COLUMNS
    table = ds.dataset(out, format="parquet").to_table()
    assert table.num_rows == 0 and table.schema.names == COLUMNS
    rows = duckdb.sql(f"select * from read_parquet('{out}/scored-*.parquet')")
    assert len(rows.fetchall()) == 0 and rows.columns == COLUMNS


def test_the_id_and_text_columns_are_the_ones_the_job_names(tiny_bundle, tmp_path):
    folder = empty_day(tmp_path / "day")
    out = tmp_path / "out"
    result = score(folder, "--output", out, "--model", tiny_bundle.path, "--id-column", "key", "--text-column", "body")
    assert result.exit_code == 0, result.output
    assert pq.read_schema(out / SHARD).names[:2] == ["key", "body"]


def test_an_empty_folder_is_refused_as_a_likely_wrong_path(tiny_bundle, tmp_path):
    folder = tmp_path / "2026-11-25"
    folder.mkdir()
    out = tmp_path / "out"
    line = one_line_error(score(folder, "--output", out, "--model", tiny_bundle.path))
    assert str(folder) in line and "it is empty" in line and "_SUCCESS" in line and "check the path" in line
    assert not out.exists() or not any(out.iterdir())


def test_a_folder_of_files_that_are_not_reviews_is_refused(tiny_bundle, tmp_path):
    folder = empty_day(tmp_path / "day", "reviews.csv", "notes.json")
    line = one_line_error(score(folder, "--output", tmp_path / "out", "--model", tiny_bundle.path))
    assert str(folder) in line and "notes.json" in line and "1 more" in line  # the first in order, and a count


@pytest.mark.slow
def test_an_empty_day_on_cloud_storage(remote, cloud_storage, tmp_path):
    """The same through Beam's GCS filesystem: the marker is listed, the empty shard published on gs://."""
    pytest.importorskip("apache_beam.io.gcp.gcsio", reason="needs apache-beam[gcp]")
    day = cloud_storage.upload(empty_day(tmp_path / "day"), cloud_storage.path("reviews", "empty-day"))
    out = cloud_storage.path("scored", "empty-day")
    result = score(day, "--output", out, "--model", remote["model"], beam_args=["--no_auth"])
    assert result.exit_code == 0, result.output
    names = [path.removeprefix(out + "/") for path in cloud_storage.files(out)]
    assert sorted(names) == sorted([REPORT_FILE, SUMMARY_FILE, SHARD])
    shard = pq.read_table(io.BytesIO(cloud_storage.read(f"{out}/{SHARD}")))
    assert shard.num_rows == 0 and shard.schema.names == COLUMNS
    summary = json.loads(cloud_storage.read(f"{out}/{SUMMARY_FILE}"))
    assert summary["records_read"] == 0 and summary["verdict"]["passed"]


@pytest.mark.slow
def test_an_empty_gs_prefix_is_refused(remote, cloud_storage):
    pytest.importorskip("apache_beam.io.gcp.gcsio", reason="needs apache-beam[gcp]")
    missing = cloud_storage.path("reviews", "no-such-day") + "/"
    result = score(missing, "--output", cloud_storage.path("scored", "none"), "--model", remote["model"],
                   beam_args=["--no_auth"])  # fmt: skip
    assert missing in one_line_error(result)
