"""Where scored rows, error rows, the report and the run summary go: files under the output folder.

This module writes and nothing else; what the summary and the report say is computed by the
pipeline's summary step (`pipeline/job/summarize.py`).

The output folder is a Parquet dataset (`schemas/output_names.py`): `scored-*.parquet` at the top
level are its only data files, so `pandas.read_parquet(OUTPUT)` reads the scored rows and nothing
else. Every other name starts with an underscore, which pyarrow, pandas, Spark and Hive skip: the
error files go to `_errors/`, and only when a record failed (Beam's sink writes an empty shard for
no rows; PublishShards deletes the error sink's instead of publishing it), the report is
`_report.html`. The scored sink's empty shard is published: a run with nothing to score (a day
with no reviews) still leaves one valid Parquet file of the output schema, so readers of
`scored-*.parquet` find zero rows and the columns rather than no file.

Nothing a reader could take for a result appears in the output folder before the job is done:
Beam's sinks write their shards into `_staging/`, and only once both sinks have finished does
PublishShards move the shards into place; the summary step runs after that, and WriteSummary then
writes _report.html and, last, _SUMMARY.json. A folder with _SUMMARY.json in it is complete; a job
killed earlier leaves at most `_staging/` behind, which the next `--overwrite` run clears.
Everything goes through Beam's FileSystems, so gs:// works the same way (a rename there is a copy
and a delete; _SUMMARY.json is still written last).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.job.locations import OutputError, check_output, files_under, written_by_us
from schemas.output import (
    ERRORS_FOLDER,
    ERRORS_PREFIX,
    REPORT_FILE,
    SCORED_PREFIX,
    STAGING_FOLDER,
    SUMMARY_FILE,
)
from schemas.summary import RunSummary, summary_from_json, summary_to_json


@dataclass(frozen=True)
class ScoredSink:
    output: str
    schema: pa.Schema
    error_schema: pa.Schema
    num_shards: int = 0
    """0 lets the runner choose (one shard per worker bundle); set it for a fixed file count."""

    def path(self, name: str) -> str:
        return FileSystems.join(self.output, name)

    def staging_path(self, name: str) -> str:
        return FileSystems.join(self.output, STAGING_FOLDER, name)

    def errors_path(self, name: str) -> str:
        return FileSystems.join(self.output, ERRORS_FOLDER, name)


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse a non-empty output folder unless overwrite (`check_output`); then delete what an earlier
    run of ours wrote, its _SUMMARY.json first: stopped halfway, the folder is never marked finished
    over files already gone.

    Only our own names are deleted (OUR_FILES and _staging/, the flat layout's report.html and
    errors-*.parquet included): --overwrite on a folder that also holds someone else's files leaves
    those alone. The same FileSystems calls serve a local folder and gs://.
    """
    check_output(output, overwrite)
    if "://" not in output:
        try:
            os.makedirs(output, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create output folder {output}: {e.strerror}") from None
        if not os.access(output, os.W_OK | os.X_OK):
            raise OutputError(f"output folder {output} is not writable")
    ours = sorted(
        (path for path in files_under(output) if written_by_us(output, path)),
        key=lambda path: not path.endswith(SUMMARY_FILE),
    )
    if ours:
        FileSystems.delete(ours)
    if "://" not in output:  # local folders outlive their files: the empty ones Beam's sinks and ours leave
        staging, errors = os.path.join(output, STAGING_FOLDER), os.path.join(output, ERRORS_FOLDER)
        if os.path.isdir(staging):
            shutil.rmtree(staging)
        with contextlib.suppress(OSError):  # absent, or holding someone else's files
            os.rmdir(errors)


def _shards(sink: ScoredSink) -> dict[str, Any]:
    return {"file_name_suffix": ".parquet", "num_shards": sink.num_shards, "codec": "snappy"}


def write_scored(tables, sink: ScoredSink):
    """Scored batches, each already an Arrow table of the sink's schema, written as they come."""
    return tables | "WriteScored" >> beam.io.WriteToParquetBatched(
        sink.staging_path(SCORED_PREFIX), schema=sink.schema, **_shards(sink)
    )


def write_errors(rows, sink: ScoredSink):
    """Error rows (dicts: there are few of them)."""
    return rows | "WriteErrors" >> beam.io.WriteToParquet(
        sink.staging_path(ERRORS_PREFIX), schema=sink.error_schema, **_shards(sink)
    )


class PublishShards(beam.DoFn):
    """Once both sinks have finished (their file names are side inputs): move their shards from
    _staging/ into place, and pass on the published (scored, error) names.

    Scored shards go to the top of the output folder, every one (an empty one still tells a reader
    the schema, and is the whole scored data of a run that read nothing). Error shards go to
    _errors/, only those holding rows: the sink writes an empty one when nothing failed, which is
    deleted, so a run without failures has no _errors/ at all.
    """

    def __init__(self, sink: ScoredSink):
        self.sink = sink

    def process(self, _, scored_files: list[str], error_files: list[str]) -> Iterator[tuple[list[str], list[str]]]:
        yield self._publish(scored_files, self.sink.path), self._publish_errors(error_files)

    @staticmethod
    def _publish(staged: list[str], to: Callable[[str], str]) -> list[str]:
        """Move finished shards from _staging/ to `to(name)` (idempotent, for retries)."""
        published = []
        for path in staged:
            target = to(path.rsplit("/", 1)[-1])
            if FileSystems.exists(path):
                FileSystems.rename([path], [target])
            published.append(target)
        return sorted(published)

    def _publish_errors(self, staged: list[str]) -> list[str]:
        """The error shards that hold rows, moved to _errors/; the empty ones deleted. A retry finds
        the moved ones in place and the deleted ones gone."""
        holding = []
        for path in staged:
            if FileSystems.exists(path):
                if parquet_rows(path) == 0:
                    FileSystems.delete([path])
                    continue
            elif not FileSystems.exists(self.sink.errors_path(path.rsplit("/", 1)[-1])):
                continue  # an empty shard an earlier try deleted
            holding.append(path)
        if holding:
            with contextlib.suppress(OSError):  # there already; on an object store a no-op
                FileSystems.mkdirs(self.sink.path(ERRORS_FOLDER))
        return self._publish(holding, self.sink.errors_path)


def parquet_rows(path: str) -> int:
    """Rows of a Parquet file, from its footer."""
    with FileSystems.open(path) as f:
        return pq.ParquetFile(f).metadata.num_rows


class WriteSummary(beam.DoFn):
    """Writes _report.html, then _SUMMARY.json, last; then clears _staging/. Yields the summary as written.

    Its input is the summary step's (RunSummary, report page), the page None when the report could not
    be drawn (the summary's report_error says why); the summary's `report` is where the page went.
    """

    def __init__(self, sink: ScoredSink):
        self.sink = sink

    def process(self, checked: tuple[RunSummary, bytes | None]) -> Iterator[RunSummary]:
        summary, page = checked
        if page is not None:
            with FileSystems.create(self.sink.path(REPORT_FILE)) as f:
                f.write(page)
            summary = summary.model_copy(update={"report": self.sink.path(REPORT_FILE)})
        write_summary(self.sink.output, summary)
        with contextlib.suppress(Exception):  # only Beam's emptied temp folders are left; harmless
            FileSystems.delete([self.sink.path(STAGING_FOLDER)])
        yield summary


def write_summary(output: str, summary: RunSummary) -> None:
    with FileSystems.create(FileSystems.join(output, SUMMARY_FILE)) as f:
        f.write(summary_to_json(summary).encode())


def read_summary(output: str) -> RunSummary:
    """The summary of the run that wrote `output`; SummaryError when its _SUMMARY.json is not one."""
    with FileSystems.open(FileSystems.join(output, SUMMARY_FILE)) as f:
        return summary_from_json(f.read())
