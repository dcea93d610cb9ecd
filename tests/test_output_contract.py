"""The output folder's names, defined once in schemas/, as the code that writes and reads them uses them."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa

from pipeline.job.options import OPTIONS
from pipeline.job.sources import Failure
from schemas.output import (
    ERROR_FILES,
    ERROR_SCHEMA,
    LINEAGE_METADATA_KEY,
    MANIFEST_METADATA_KEY,
    REPORT_FILE,
    REVIEW_ID,
    SCORED_FILES,
    STAGES,
    STAGING_FOLDER,
    SUMMARY_FILE,
    TEXT,
    error_schema,
    lineage_from_metadata,
    manifest_metadata,
    scored_schema,
)
from tests.test_summary import a_lineage


def test_a_failure_is_a_row_of_the_error_files():
    row = Failure("a.txt", "/in/a.txt", STAGES[1], "not valid UTF-8").row()
    assert list(row) == ERROR_SCHEMA.names
    table = pa.Table.from_pylist([row], schema=error_schema({"name": "m"}))
    assert table.to_pylist() == [row]


def test_every_stage_is_named_once():
    assert len(set(STAGES)) == len(STAGES) == 4


def test_manifest_rides_in_the_metadata_of_every_output_file():
    manifest = {"name": "café", "version": "1"}
    metadata = manifest_metadata(manifest)
    assert json.loads(metadata[MANIFEST_METADATA_KEY]) == manifest
    assert error_schema(manifest).metadata == metadata


def test_the_launchs_lineage_rides_in_the_metadata_beside_the_manifest():
    lineage = a_lineage(finished=None)
    metadata = manifest_metadata({"name": "m"}, lineage)
    assert (
        list(metadata)
        == [MANIFEST_METADATA_KEY, LINEAGE_METADATA_KEY]
        == [b"reviewscore.manifest", b"reviewscore.lineage"]
    )
    assert json.loads(metadata[LINEAGE_METADATA_KEY]) == lineage.model_dump(mode="json")
    assert lineage_from_metadata(metadata) == lineage
    assert lineage_from_metadata(manifest_metadata({"name": "m"})) is None and lineage_from_metadata(None) is None
    scored = scored_schema(pa.schema([pa.field(TEXT, pa.string())]), {"name": "m"}, lineage=lineage)
    assert (
        lineage_from_metadata(scored.metadata) == lineage == lineage_from_metadata(error_schema({}, lineage).metadata)
    )


def test_only_the_scored_files_are_named_as_dataset_readers_read_them():
    """pyarrow, pandas, Spark and Hive skip names starting with an underscore: every name but the scored files'."""
    assert not SCORED_FILES.startswith("_") and "/" not in SCORED_FILES and SCORED_FILES.endswith(".parquet")
    assert all(name.startswith("_") for name in (ERROR_FILES, REPORT_FILE, SUMMARY_FILE, STAGING_FOLDER))
    assert ERROR_FILES.count("/") == 1


def test_parquet_inputs_default_to_the_columns_text_files_are_read_into():
    assert OPTIONS["text_column"].default == TEXT and OPTIONS["id_column"].default == REVIEW_ID
    assert SUMMARY_FILE in OPTIONS["output"].help


def test_the_option_table_names_output_files_without_importing_pyarrow():
    probe = "import sys, pipeline.job.options; print('pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
