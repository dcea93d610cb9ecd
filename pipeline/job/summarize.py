"""The run's summary step: once every record is counted, its drift checks, explanations, verdict and report.

The pipeline's one combined tally (`pipeline/job/tallies.py`) and the names of the published shards
come in; the run's RunSummary (`schemas/summary.py`) and its report page go out, to WriteSummary
(`pipeline/job/sinks.py`), which writes them. Nothing here writes a file, and nothing here is read
from one: the model's side (class names, manifest, training profile), the job's policy and the
lineage the launch recorded travel with the step as a RunContext, plain data that pickles to a
Dataflow worker; the step finishes the lineage (`pipeline/job/lineage.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

from pipeline.job.lineage import finished_lineage
from pipeline.job.report import render_report
from pipeline.job.tallies import RunTally
from pipeline.job.verdict import RunPolicy, judge
from pipeline.model.explain.explainer import ExplainSettings, ExplanationStatistics
from pipeline.model.monitoring.drift import check_drift
from pipeline.model.monitoring.statistics import Statistics
from pipeline.model.monitoring.training_profile import TrainingProfile
from schemas.output_names import REPORT_FILE
from schemas.summary import ExplanationsSummary, Lineage, RunSummary

log = logging.getLogger("reviewscore")
NO_ENGINE = "none: no review was scored"
"""Where explanations ran, in a run that scored nothing (a day with no reviews): no engine ran."""


@dataclass(frozen=True)
class RunContext:
    """What the summary needs besides the tally: the model, its training profile, the job's policy and start."""

    model_version: str
    class_names: tuple[str, ...]
    manifest: dict[str, Any] = field(default_factory=dict)
    profile: TrainingProfile | None = None
    """The bundle's training profile, which the drift checks and the report's plots compare with."""
    explain: ExplainSettings | None = None
    """Set when the run explains its labels (--explain K): the summary then describes the explanations."""
    policy: RunPolicy = field(default_factory=RunPolicy)
    started: float = field(default_factory=time.time)
    """When the user started the job; wall time and reviews/s count from here, start-up included."""
    lineage: Lineage | None = None
    """What the launch recorded of the run (inputs, model, options, versions); finished here."""


def summarize(
    tally: RunTally,
    statistics: Statistics,
    published: tuple[list[str], list[str]],
    context: RunContext,
    finished: float,
) -> RunSummary:
    """The run's summary from its tally and Statistics, the published (scored, error) files and when it
    finished (a time.time() value: wall time counts from the context's start)."""
    scored_files, error_files = published
    wall = finished - context.started
    engine = " + ".join(tally.engines)
    summary = RunSummary(
        records_read=tally.read,
        records_scored=tally.scored,
        records_failed=tally.failed,
        failed_by_stage=tally.failed_by_stage,
        accounting_ok=tally.read == tally.scored + tally.failed,
        label_counts=dict(zip(context.class_names, statistics.labels.tolist(), strict=True)),
        model_version=context.model_version,
        engine=engine,
        engines=tally.engines,
        wall_seconds=round(wall, 2),
        reviews_per_second=round(tally.scored / wall, 1) if wall > 0 else None,
        scored_files=tuple(sorted(scored_files)),
        error_files=tuple(sorted(error_files)),
        drift=check_drift(context.profile.statistics if context.profile else None, statistics),
        explanations=explanations_summary(tally, context, engine),
        lineage=None if context.lineage is None else finished_lineage(context.lineage, tally.engines, finished),
    )
    return summary.model_copy(update={"verdict": judge(summary, context.policy)})


def explanations_summary(tally: RunTally, context: RunContext, engine: str) -> ExplanationsSummary | None:
    """The run's explanations, when it explained; `engine`: the scoring engine(s) that ran."""
    if context.explain is None:
        return None
    statistics = tally.explanations or ExplanationStatistics.empty(len(context.class_names))
    described = statistics.summary(context.class_names, context.explain)
    runs_on = context.explain.runs_on(engine) if engine else NO_ENGINE
    return ExplanationsSummary(**described, engine=runs_on)


def report_page(summary: RunSummary, statistics: Statistics, context: RunContext) -> tuple[RunSummary, bytes | None]:
    """The summary and _report.html's content; a report that cannot be drawn is logged and named in the
    summary (report_error), never fails a finished job."""
    try:
        return summary, render_report(summary, statistics, context.profile, context.manifest).encode()
    except Exception as e:
        log.warning("%s not written: %r", REPORT_FILE, e)
        return summary.model_copy(update={"report_error": repr(e)}), None


class Summarize(beam.DoFn):
    """Once the shards are published: the run's (RunSummary, report page or None), for WriteSummary.

    `published` holds the published (scored, error) file names; `counts` is the job's one combined
    tally, a side input.
    """

    def __init__(self, context: RunContext):
        self.context = context

    def process(
        self, published: tuple[list[str], list[str]], counts: dict[str, Any]
    ) -> Iterator[tuple[RunSummary, bytes | None]]:
        tally = RunTally.of(counts)
        statistics = tally.statistics or Statistics.empty(len(self.context.class_names))
        summary = summarize(tally, statistics, published, self.context, time.time())
        yield report_page(summary, statistics, self.context)
