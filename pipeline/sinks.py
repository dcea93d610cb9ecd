"""Where scored rows, error rows and the run summary go: Parquet and JSON under the output folder.

Nothing a reader could take for a result appears in the output folder before the job is done:
Beam's sinks write their shards into `_staging/` (a leading underscore makes pyarrow, Spark and
Hive skip it, and it does not match `scored-*.parquet`), and only once both sinks have finished
does WriteSummary move the shards up and then write _SUMMARY.json. A folder with _SUMMARY.json in
it is complete; a job killed earlier leaves at most `_staging/` behind, which the next
`--overwrite` run clears. Everything goes through Beam's FileSystems, so gs:// works the same way
(a rename there is a copy and a delete; _SUMMARY.json is still written last).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipeline.monitoring.monitor import Monitor
from pipeline.verdict import RunPolicy, judge
from schemas.output import ERRORS_PREFIX, REPORT_FILE, SCORED_PREFIX, STAGING_FOLDER, SUMMARY_FILE

OUTPUT_PREFIXES = (SCORED_PREFIX, ERRORS_PREFIX)
log = logging.getLogger("reviewscore")
FAILED_PREFIX = "failed:"
"""Keys of the run's counts that count failures at one stage (see WriteSummary)."""
ENGINE_PREFIX = "scored_by:"
"""Keys of the run's counts that count the reviews one engine scored, for one reason (see engine_tally_key)."""


def engine_tally_key(engine: str, reason: str) -> str:
    """The count key of reviews scored by `engine`, chosen for `reason`: engines are chosen where the
    model loads, so on a remote runner each worker may report its own."""
    return f"{ENGINE_PREFIX}{engine}:{reason}"


def engines_that_ran(counts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{engine: {"reviews": n, "why": [reasons]}} from the run's counts."""
    engines: dict[str, dict[str, Any]] = {}
    for key, n in sorted(counts.items()):
        if key.startswith(ENGINE_PREFIX):
            engine, reason = key.removeprefix(ENGINE_PREFIX).split(":", 1)
            entry = engines.setdefault(engine, {"reviews": 0, "why": []})
            entry["reviews"] += n
            if reason:
                entry["why"].append(reason)
    return engines


class OutputError(ValueError):
    """The output folder cannot be used (exit code 2)."""


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


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse a non-empty output folder unless overwrite; then delete what an earlier run of ours wrote.

    Only our own names are deleted (scored-*.parquet, errors-*.parquet, _SUMMARY.json, _staging/):
    --overwrite on a folder that also holds someone else's files leaves those alone. The same
    FileSystems calls serve a local folder and gs://.
    """
    if "://" not in output:
        if os.path.exists(output) and not os.path.isdir(output):
            raise OutputError(f"output {output} exists and is not a folder")
        try:
            os.makedirs(output, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create output folder {output}: {e.strerror}") from None
        if not os.access(output, os.W_OK | os.X_OK):
            raise OutputError(f"output folder {output} is not writable")
    existing = _files_under(output)
    if "://" not in output and os.listdir(output):
        existing = existing or [output]  # empty subfolders count: the folder is not empty
    if not existing:
        return
    if not overwrite:
        raise OutputError(f"output folder {output} is not empty; pass --overwrite to replace an earlier run's output")
    ours = [path for path in existing if written_by_us(output, path)]
    if ours:
        FileSystems.delete(ours)
    staging = os.path.join(output, STAGING_FOLDER)
    if "://" not in output and os.path.isdir(staging):  # the empty folders Beam's local sinks leave
        shutil.rmtree(staging)


def written_by_us(output: str, path: str) -> bool:
    """Is this file one of the names a scoring run writes into its output folder?"""
    name = path.removeprefix(FileSystems.join(output, ""))
    return (
        name in (SUMMARY_FILE, REPORT_FILE)
        or name.startswith(STAGING_FOLDER + "/")
        or ("/" not in name and any(fnmatch.fnmatch(name, f"{prefix}-*.parquet") for prefix in OUTPUT_PREFIXES))
    )


def _files_under(output: str) -> list[str]:
    return [m.path for m in FileSystems.match([FileSystems.join(output, "**")])[0].metadata_list]


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


class WriteSummary(beam.DoFn):
    """Writes report.html, then _SUMMARY.json, once the scored and error files are in place (their
    names are side inputs).

    `counts` is the job's one combined tally: read, scored, failed, FAILED_PREFIX + stage, the
    reviews each engine scored (ENGINE_PREFIX), and the run's Statistics, from which the label
    counts, the drift checks and the report's plots come. The summary ends with the run's verdict
    (`pipeline/verdict.py`) under the job's policy.
    """

    def __init__(self, sink: ScoredSink, started: float, model_version: str, monitor: Monitor, policy: RunPolicy):
        self.sink = sink
        self.started = started
        self.model_version = model_version
        self.monitor = monitor
        self.policy = policy

    def process(self, _, counts: dict, scored_files: list, error_files: list):
        scored_files = self._publish(scored_files)
        error_files = self._publish(error_files)
        wall = time.time() - self.started
        read, scored, failed = (counts.get(key, 0) for key in ("read", "scored", "failed"))
        statistics = self.monitor.run_statistics(counts)
        stages = {key.removeprefix(FAILED_PREFIX): n for key, n in counts.items() if key.startswith(FAILED_PREFIX)}
        engines = engines_that_ran(counts)
        summary: dict[str, Any] = {
            "records_read": read,
            "records_scored": scored,
            "records_failed": failed,
            "failed_by_stage": dict(sorted(stages.items())),
            "accounting_ok": read == scored + failed,
            "label_counts": dict(zip(self.monitor.class_names, statistics.labels.tolist(), strict=True)),
            "model_version": self.model_version,
            "engine": " + ".join(engines),
            "engines": engines,
            "wall_seconds": round(wall, 2),
            "reviews_per_second": round(scored / wall, 1) if wall > 0 else None,
            "scored_files": sorted(scored_files),
            "error_files": sorted(error_files),
            "drift": self.monitor.drift(statistics),
        }
        explanations = self.monitor.explanations(counts, summary["engine"])
        if explanations is not None:
            summary["explanations"] = explanations
        summary["verdict"] = judge(summary, self.policy)
        summary["report"] = self._write_report(summary, statistics)
        with FileSystems.create(self.sink.path(SUMMARY_FILE)) as f:
            f.write(json.dumps(summary, indent=2).encode())
        with contextlib.suppress(Exception):  # only Beam's emptied temp folders are left; harmless
            FileSystems.delete([self.sink.path(STAGING_FOLDER)])
        yield summary

    def _write_report(self, summary: dict[str, Any], statistics) -> str | None:
        """The report's path; a report that cannot be drawn is logged, never fails a finished job."""
        try:
            page = self.monitor.report(summary, statistics)
        except Exception as e:
            log.warning("report.html not written: %r", e)
            summary["report_error"] = repr(e)
            return None
        with FileSystems.create(self.sink.path(REPORT_FILE)) as f:
            f.write(page)
        return self.sink.path(REPORT_FILE)

    def _publish(self, staged: list[str]) -> list[str]:
        """Move finished shards from _staging/ into the output folder (idempotent, for retries)."""
        published = []
        for path in staged:
            target = self.sink.path(path.rsplit("/", 1)[-1])
            if FileSystems.exists(path):
                FileSystems.rename([path], [target])
            published.append(target)
        return published


def read_summary(output: str) -> dict[str, Any]:
    with FileSystems.open(FileSystems.join(output, SUMMARY_FILE)) as f:
        return json.loads(f.read())
