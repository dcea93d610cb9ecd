"""The output folder is a Parquet dataset: dataset readers pointed at it read exactly the scored rows.

Real runs of `reviewscore score` on DirectRunner with the tiny bundle; the folder is then read the ways
downstream jobs read it (pandas, pyarrow.dataset, DuckDB), and its lineage is checked in
_SUMMARY.json and in the scored files' Parquet metadata. The names are schemas/output_names.py's.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline.job.options import OPTIONS, parse_template_args
from pipeline.job.scoring import ScoringJob
from pipeline.job.sinks import PublishShards, ScoredSink
from schemas.bundle import MANIFEST_FILE
from schemas.output import (
    ERROR_FILES,
    ERROR_SCHEMA,
    ERRORS_FOLDER,
    REPORT_FILE,
    SCORED_FILES,
    STAGING_FOLDER,
    SUMMARY_FILE,
    lineage_from_metadata,
)
from schemas.summary import summary_from_json
from tests.conftest import make_reviews
from tests.test_scoring import score, scored_frame


def reviews(path, texts):
    pq.write_table(pa.table({"review_id": [f"r{i}" for i in range(len(texts))], "text": texts}), path)
    return path


def run(tmp_path, tiny_bundle, texts, *extra):
    out = tmp_path / "out"
    result = score(reviews(tmp_path / "in.parquet", texts), "--output", out, "--model", tiny_bundle.path, *extra)
    assert result.exit_code == 0, result.output
    return out, result, summary_from_json((out / SUMMARY_FILE).read_text())


def scored_ids(out) -> list[str]:
    return sorted(scored_frame(out).review_id)


def duckdb_rows(query: str) -> pd.DataFrame:
    return duckdb.sql(query).df()


@pytest.fixture(scope="module")
def clean(tiny_bundle, tmp_path_factory):
    """A run where every record is scored, over two shards."""
    texts = [text for text, _ in make_reviews(40, seed=3)]
    return run(tmp_path_factory.mktemp("clean"), tiny_bundle, texts, "--num-shards", "2")


@pytest.fixture(scope="module")
def failing(tiny_bundle, tmp_path_factory):
    """A run where two records fail (a null text, a review of punctuation only) and the rest are scored."""
    texts = [text for text, _ in make_reviews(30, seed=4)]
    texts[3], texts[17] = None, "!!! ..."
    return run(tmp_path_factory.mktemp("failing"), tiny_bundle, texts)


def test_a_run_without_failures_is_the_scored_files_and_underscored_names_only(clean):
    out, result, summary = clean
    names = sorted(path.name for path in out.iterdir())
    scored = sorted(path.name for path in out.glob(SCORED_FILES))
    assert len(scored) == 2 and names == sorted([*scored, SUMMARY_FILE, REPORT_FILE])  # no _errors/, no _staging/
    assert summary.error_files == () and summary.records_failed == 0
    assert summary.report == str(out / REPORT_FILE)
    assert f"output: {out}/{SCORED_FILES}\n" in result.output  # no error files to point at


def test_dataset_readers_read_exactly_the_scored_rows(clean):
    out, _, summary = clean
    expected = scored_frame(out).sort_values("review_id").reset_index(drop=True)
    assert len(expected) == summary.records_scored == 40

    frame = pd.read_parquet(out).sort_values("review_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected)
    table = ds.dataset(out, format="parquet").to_table()
    assert table.num_rows == 40 and table.schema.names == list(expected.columns)

    for query in (
        f"select * from read_parquet('{out}/*.parquet')",
        f"select * from read_parquet('{out}')",  # DuckDB's folder read: every *.parquet below, recursively
        f"select * from read_parquet('{out}/**/*.parquet', hive_partitioning = true)",
    ):
        rows = duckdb_rows(query)
        assert sorted(rows.review_id) == list(expected.review_id), query
        assert list(rows.columns) == list(expected.columns), query


def test_a_run_with_failures_puts_them_in_their_own_folder(failing):
    out, result, summary = failing
    assert summary.records_failed == 2 and summary.records_scored == 28
    error_files = sorted(out.glob(ERROR_FILES))
    assert error_files and summary.error_files == tuple(str(path) for path in error_files)
    assert all(pq.read_metadata(path).num_rows > 0 for path in error_files)  # no empty shard published
    assert f"output: {out}/{SCORED_FILES}, {out}/{ERROR_FILES}" in result.output

    errors = pd.read_parquet(out / ERRORS_FOLDER)  # a dataset of its own, of the error schema
    assert list(errors.columns) == ERROR_SCHEMA.names
    assert dict(zip(errors.review_id, errors.stage, strict=True)) == {"r3": "read", "r17": "preprocess"}

    scored = sorted(pd.read_parquet(out).review_id)
    assert scored == scored_ids(out) and len(scored) == 28 and not {"r3", "r17"} & set(scored)
    assert ds.dataset(out, format="parquet").to_table().num_rows == 28
    assert sorted(duckdb_rows(f"select * from read_parquet('{out}/*.parquet')").review_id) == scored


def test_lineage_is_in_the_summary_and_every_scored_files_metadata(clean, tiny_bundle):
    out, _, summary = clean
    lineage = summary.lineage
    given = str(out.parent / "in.parquet")
    assert lineage.inputs.given == (given,) and lineage.inputs.patterns == (given,)
    assert (lineage.inputs.text_files, lineage.inputs.parquet_files, lineage.inputs.records) == (0, (given,), 40)
    manifest = (tiny_bundle.path / MANIFEST_FILE).read_bytes()
    assert lineage.model.manifest_sha256 == hashlib.sha256(manifest).hexdigest()
    assert (lineage.model.location, lineage.model.version) == (str(tiny_bundle.path), tiny_bundle.model_version)
    assert list(lineage.options) == list(OPTIONS) and lineage.options["num_shards"] == 2
    assert lineage.options["input"] == [given] and lineage.options["output"] == str(out)
    assert {"reviewscore", "apache-beam", "python", "pyarrow", "onnxruntime"} <= set(lineage.versions)
    assert lineage.runner == "DirectRunner" and lineage.job_id is None
    started, finished = (datetime.fromisoformat(t) for t in (lineage.started, lineage.finished))
    assert started < finished and started.utcoffset().total_seconds() == 0

    for path in out.glob(SCORED_FILES):  # the launch's part: everything but the finishing time
        assert lineage_from_metadata(pq.read_schema(path).metadata) == lineage.model_copy(update={"finished": None})
    page = (out / REPORT_FILE).read_text()
    assert lineage.model.manifest_sha256[:12] in page and "DirectRunner" in page and lineage.finished in page


def test_the_options_in_the_lineage_are_the_job_read_back():
    """Every option's value, by name, as the job holds it: what `from_options` maps, mapped back."""
    argv = [
        "--input=a/,b.parquet", "--output=gs://b/out", "--model=gs://b/m", "--text_column=body", "--id_column=key",
        "--batch_size=100", "--inference_batch_size=7", "--engine=keras", "--threads=3", "--max_error_rate=0.25",
        "--on_drift=fail", "--overwrite=true", "--num_shards=4", "--explain=5", "--explain_method=integrated-gradients",
        "--explain_steps=9",
    ]  # fmt: skip
    values, _ = parse_template_args(argv)
    assert ScoringJob.from_options(values, []).option_values() == values
    assert list(values) == list(OPTIONS)


def test_lineage_names_a_folders_patterns_and_counts_its_files(tiny_bundle, tmp_path):
    folder = tmp_path / "reviews"
    (folder / "deeper").mkdir(parents=True)
    for i, (text, _) in enumerate(make_reviews(5, seed=6)):
        (folder / ("deeper" if i % 2 else "") / f"{i}.txt").write_text(text)
    reviews(folder / "more.parquet", [text for text, _ in make_reviews(3, seed=7)])
    out = tmp_path / "out"
    result = score(folder, "--output", out, "--model", tiny_bundle.path)
    assert result.exit_code == 0, result.output
    inputs = summary_from_json((out / SUMMARY_FILE).read_text()).lineage.inputs
    assert inputs.given == (str(folder),)
    assert inputs.patterns == (f"{folder}/**.txt", f"{folder}/**.parquet")
    assert (inputs.text_files, inputs.parquet_files, inputs.records) == (5, (str(folder / "more.parquet"),), 8)


def test_overwrite_replaces_a_folder_written_in_either_layout(tiny_bundle, tmp_path):
    out = tmp_path / "out"
    (out / ERRORS_FOLDER).mkdir(parents=True)
    (out / STAGING_FOLDER).mkdir()
    ours = [
        "scored-00001-of-00002.parquet", "errors-00000-of-00001.parquet", "report.html",  # the flat layout's
        f"{ERRORS_FOLDER}/errors-00003-of-00004.parquet", REPORT_FILE, SUMMARY_FILE, f"{STAGING_FOLDER}/shard",
    ]  # fmt: skip
    for name in ours:
        (out / name).write_bytes(b"an earlier run's")
    (out / "notes.txt").write_text("the user's own file")
    texts = [text for text, _ in make_reviews(12, seed=5)]
    result = score(reviews(tmp_path / "in.parquet", texts), "--output", out, "--model", tiny_bundle.path, "--overwrite")
    assert result.exit_code == 0, result.output
    left = sorted(path.relative_to(out).as_posix() for path in out.rglob("*"))
    assert left == sorted([*(p.name for p in out.glob(SCORED_FILES)), REPORT_FILE, SUMMARY_FILE, "notes.txt"])
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert len(scored_frame(out)) == 12  # (pandas would read notes.txt too: the user's file, left alone)


def test_empty_error_shards_are_deleted_not_published_and_a_retry_publishes_the_same(tmp_path):
    out = tmp_path / "out"
    staging = out / STAGING_FOLDER
    staging.mkdir(parents=True)
    pq.write_table(ERROR_SCHEMA.empty_table(), staging / "errors-00000-of-00002.parquet")
    row = {"review_id": "r1", "source": "in.parquet", "stage": "read", "error": "text is null"}
    pq.write_table(pa.Table.from_pylist([row], schema=ERROR_SCHEMA), staging / "errors-00001-of-00002.parquet")
    pq.write_table(pa.table({"x": [1]}), staging / "scored-00000-of-00001.parquet")
    staged_errors = sorted(str(path) for path in staging.glob("errors-*"))
    sink = ScoredSink(str(out), schema=None, error_schema=None)

    first = next(PublishShards(sink).process(None, [str(staging / "scored-00000-of-00001.parquet")], staged_errors))
    again = next(PublishShards(sink).process(None, [str(staging / "scored-00000-of-00001.parquet")], staged_errors))
    published_error = str(out / ERRORS_FOLDER / "errors-00001-of-00002.parquet")
    assert first == again == ([str(out / "scored-00000-of-00001.parquet")], [published_error])
    assert sorted(path.name for path in (out / ERRORS_FOLDER).iterdir()) == ["errors-00001-of-00002.parquet"]
    assert not list(staging.iterdir())

    nothing_failed = tmp_path / "clean"
    (nothing_failed / STAGING_FOLDER).mkdir(parents=True)
    pq.write_table(ERROR_SCHEMA.empty_table(), nothing_failed / STAGING_FOLDER / "errors-00000-of-00001.parquet")
    sink = ScoredSink(str(nothing_failed), schema=None, error_schema=None)
    staged = [str(nothing_failed / STAGING_FOLDER / "errors-00000-of-00001.parquet")]
    assert next(PublishShards(sink).process(None, [], staged)) == ([], [])
    assert not (nothing_failed / ERRORS_FOLDER).exists()
