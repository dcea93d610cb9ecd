"""Reading a job's output folder back and checking it: counts, agreement with a local run, completeness.

An output folder is read through two small callables (list the names under it, read one), so the
bucket on the emulator and the local reference folder are read by the same code. Only the
published names count, as a reader would see them (`schemas/output_names.py`): `scored-*.parquet`
at the top level, `_errors/errors-*.parquet`, `_SUMMARY.json`, `_report.html`; `_staging/` is the
job's own business.
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deploy.rehearsal.data import Inputs
from schemas.output_names import (
    ERROR_FILES,
    ERRORS_FOLDER,
    PREDICTED_LABEL,
    REPORT_FILE,
    REVIEW_ID,
    SCORE,
    SCORED_FILES,
    STAGE,
    SUMMARY_FILE,
)
from schemas.summary import RunSummary, summary_from_json

SCORE_TOLERANCE = 1e-5


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Output:
    names: list[str]
    summary: RunSummary | None
    scored: pa.Table
    """review_id, predicted_label, score of every published scored row."""
    errors: pa.Table
    """review_id, stage of every published error row."""


def published(names: list[str], pattern: str) -> list[str]:
    """The names matching `pattern` (SCORED_FILES, ERROR_FILES) at its own depth of the folder."""
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern) and n.count("/") == pattern.count("/"))


def looks_complete(names: list[str]) -> list[str]:
    """The names a reader would take for a finished run's results."""
    return (
        [n for n in names if n in (SUMMARY_FILE, REPORT_FILE)]
        + published(names, SCORED_FILES)
        + published(names, ERROR_FILES)
    )


def read_output(names: list[str], read: Callable[[str], bytes]) -> Output:
    summary = summary_from_json(read(SUMMARY_FILE)) if SUMMARY_FILE in names else None
    scored = _concat([_parquet(read(n), [REVIEW_ID, PREDICTED_LABEL, SCORE]) for n in published(names, SCORED_FILES)])
    errors = _concat([_parquet(read(n), [REVIEW_ID, STAGE]) for n in published(names, ERROR_FILES)])
    return Output(names, summary, scored, errors)


def local_output(folder: Path) -> Output:
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return read_output(names, lambda name: (folder / name).read_bytes())


def _parquet(data: bytes, columns: list[str]) -> pa.Table:
    return pq.read_table(io.BytesIO(data), columns=columns)


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if tables else pa.table({REVIEW_ID: pa.array([], pa.string())})


def check_counts(name: str, out: Output, inputs: Inputs) -> list[Check]:
    """_SUMMARY.json and _report.html present, error files only where records failed; read = scored +
    failed, by the summary and by the rows."""
    summary = out.summary
    read, scored, failed = (
        (summary.records_read, summary.records_scored, summary.records_failed) if summary else (None, None, None)
    )
    rows, error_rows = out.scored.num_rows, out.errors.num_rows
    stages = summary.failed_by_stage if summary else None
    error_files = published(out.names, ERROR_FILES)
    listed = sorted(f"{ERRORS_FOLDER}/{path.rsplit('/', 1)[-1]}" for path in summary.error_files) if summary else []
    ids = out.scored.column(REVIEW_ID)
    leftovers = sorted(set(out.names) - set(looks_complete(out.names)))
    return [
        Check(
            f"{name}: {SUMMARY_FILE} and {REPORT_FILE}",
            out.summary is not None and REPORT_FILE in out.names,
            f"{len(leftovers)} other objects left, e.g. {leftovers[:2]}" if leftovers else "",
        ),
        Check(
            f"{name}: {ERROR_FILES} only where records failed, as the summary lists them",
            bool(error_files) == bool(failed) and listed == error_files,
            f"{len(error_files)} error files for {failed} failed records; the summary lists {len(listed)}",
        ),
        Check(
            f"{name}: summary read = scored + failed = input records",
            read == inputs.records and scored is not None and failed is not None and read == scored + failed,
            f"read {read}, scored {scored}, failed {failed}, input records {inputs.records}",
        ),
        Check(
            f"{name}: Parquet rows scored + errors = input records",
            rows == scored and error_rows == failed and rows + error_rows == inputs.records,
            f"{rows:,} scored rows + {error_rows:,} error rows; input records {inputs.records:,}",
        ),
        Check(f"{name}: failures by stage", stages == inputs.failures, f"{stages} (expected {inputs.failures})"),
        Check(f"{name}: no review scored twice", pc.count_distinct(ids).as_py() == len(ids)),
    ]


def compare(name: str, out: Output, reference: Output) -> tuple[list[Check], float, int]:
    """Labels and scores against the local run, joined on review_id; (checks, max |score diff|, label mismatches)."""
    ours = out.scored.select([REVIEW_ID, PREDICTED_LABEL, SCORE])
    theirs = reference.scored.select([REVIEW_ID, PREDICTED_LABEL, SCORE]).rename_columns([REVIEW_ID, "l", "s"])
    joined = ours.join(theirs, REVIEW_ID, join_type="inner")
    diff = np.abs(joined.column(SCORE).to_numpy() - joined.column("s").to_numpy()) if joined.num_rows else np.zeros(0)
    max_diff = float(diff.max()) if diff.size else float("nan")
    mismatches = int(pc.sum(pc.not_equal(joined.column(PREDICTED_LABEL), joined.column("l"))).as_py() or 0)
    same_ids = joined.num_rows == ours.num_rows == theirs.num_rows
    error_keys = _keys(out.errors)
    return (
        [
            Check(
                f"{name}: same reviews scored as the local run",
                same_ids,
                f"{joined.num_rows:,} joined of {ours.num_rows:,} / {theirs.num_rows:,}",
            ),
            Check(f"{name}: labels equal the local run's", mismatches == 0, f"{mismatches} mismatches"),
            Check(
                f"{name}: scores within {SCORE_TOLERANCE:g} of the local run's",
                bool(diff.size) and max_diff <= SCORE_TOLERANCE,
                f"max |diff| {max_diff:.2e}",
            ),
            Check(
                f"{name}: same error rows as the local run",
                error_keys == _keys(reference.errors),
                f"{len(error_keys)} error rows",
            ),
        ],
        max_diff,
        mismatches,
    )


def _keys(errors: pa.Table) -> set[tuple[str, str]]:
    if STAGE not in errors.column_names:
        return set()
    return set(zip(errors.column(REVIEW_ID).to_pylist(), errors.column(STAGE).to_pylist(), strict=True))
