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
from pipeline.job.tallies import RunTally, ShadowTally
from pipeline.job.verdict import RunPolicy, judge
from pipeline.model.explain.explainer import ExplainSettings, ExplanationStatistics
from pipeline.model.monitoring.drift import check_drift
from pipeline.model.monitoring.statistics import Statistics
from pipeline.model.monitoring.training_profile import TrainingProfile
from schemas.output_names import REPORT_FILE
from schemas.summary import (
    Disagreement,
    ExplanationsSummary,
    Lineage,
    ModelLineage,
    RunSummary,
    ShadowSummary,
    WordWeight,
)

log = logging.getLogger("reviewscore")
NO_ENGINE = "none: no review was scored"
"""Where explanations ran, in a run that scored nothing (a day with no reviews): no engine ran."""


@dataclass(frozen=True)
class ShadowContext:
    """The shadow model's side (--shadow-model): its lineage, and its training profile for its own drift checks."""

    lineage: ModelLineage
    profile: TrainingProfile | None = None


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
    shadow: ShadowContext | None = None
    """Set when a shadow model scored beside the run's: the summary then compares the two."""


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
        shadow=shadow_summary(tally.shadow, context),
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


def _share(part: float, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def shadow_summary(tally: ShadowTally | None, context: RunContext) -> ShadowSummary | None:
    """How the shadow model compares with the run's, from their combined tally; None without one."""
    if context.shadow is None:
        return None
    names = context.class_names
    tally = tally or ShadowTally.empty(len(names))
    n = tally.compared
    champion, shadow = tally.labels.sum(axis=1), tally.labels.sum(axis=0)
    return ShadowSummary(
        model=context.shadow.lineage,
        reviews_compared=n,
        records_failed=tally.failed,
        agreement=_share(float(tally.labels.trace()), n),
        labels={a: {b: int(tally.labels[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)},
        mean_abs_score_difference=_share(tally.abs_sum, n),
        max_abs_score_difference=round(tally.abs_max, 6) if n else None,
        score_differences=tuple(int(c) for c in tally.differences) if n else (),
        score_correlation=correlation(tally.sums, n),
        champion_label_shares={name: _share(int(c), n) or 0.0 for name, c in zip(names, champion, strict=True)},
        shadow_label_shares={name: _share(int(c), n) or 0.0 for name, c in zip(names, shadow, strict=True)},
        drift=check_drift(context.shadow.profile.statistics if context.shadow.profile else None, tally.statistics),
        disagreements=tuple(
            Disagreement(
                review_id=c.review_id,
                snippet=c.snippet,
                champion_label=names[c.champion_label],
                champion_score=round(c.champion_score, 6),
                shadow_label=names[c.shadow_label],
                shadow_score=round(c.shadow_score, 6),
                champion_words=None
                if c.champion_words is None
                else tuple(WordWeight(word=w, mean_weight=round(v, 4), reviews=1) for w, v in c.champion_words),
            )
            for c in tally.disagreements
        ),
    )


def correlation(sums, n: int) -> float | None:
    """Pearson's r from the sums of x, y, x², y², xy over n pairs; None when undefined (n < 2, or a
    score that never varies)."""
    if n < 2:
        return None
    x, y, xx, yy, xy = (float(v) for v in sums)
    vx, vy = n * xx - x * x, n * yy - y * y
    if vx <= 1e-12 * max(n * xx, 1e-300) or vy <= 1e-12 * max(n * yy, 1e-300):  # rounding's leftovers
        return None
    return round(max(-1.0, min(1.0, (n * xy - x * y) / (vx * vy) ** 0.5)), 6)


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
