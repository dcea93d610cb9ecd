"""The output folder's names, defined once in schemas/, as the code that writes and reads them uses them."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa

from pipeline.options import OPTIONS
from pipeline.sources import Failure
from schemas.output import (
    ERROR_SCHEMA,
    MANIFEST_METADATA_KEY,
    REVIEW_ID,
    STAGES,
    SUMMARY_FILE,
    TEXT,
    error_schema,
    manifest_metadata,
)


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


def test_parquet_inputs_default_to_the_columns_text_files_are_read_into():
    assert OPTIONS["text_column"].default == TEXT and OPTIONS["id_column"].default == REVIEW_ID
    assert SUMMARY_FILE in OPTIONS["output"].help


def test_the_option_table_names_output_files_without_importing_pyarrow():
    probe = "import sys, pipeline.options; print('pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
