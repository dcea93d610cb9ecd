"""The run's one combined tally: what each element adds to it, and what the summary reads off the total.

Every count of the summary and the run's statistics come from a single CombineGlobally: each
element of the graph contributes a small dict (`read_tally`, `scored_tally`, `statistics_tally`,
`failed_tally`), `add_tallies` sums them key by key, and `RunTally.of` reads the total. The keys
are defined here and nowhere else: a failure counts under FAILED_PREFIX + its stage, a scored batch
under `engine_tally_key` of the engine that scored it and why that engine was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from apache_beam.ml.inference.base import PredictionResult

from pipeline.job.model_handler import ScoredBatch
from pipeline.job.sources import Failure, ReviewBatch
from pipeline.model.explain.explainer import ExplanationStatistics
from pipeline.model.labels import Labels
from pipeline.model.monitoring.statistics import Statistics
from schemas.output import STAGE
from schemas.summary import EngineUse

READ, SCORED, FAILED, STATISTICS, EXPLANATIONS = "read", "scored", "failed", "statistics", "explanations"
FAILED_PREFIX = "failed:"
"""Keys of the tally that count failures at one stage: FAILED_PREFIX + stage."""
ENGINE_PREFIX = "scored_by:"
"""Keys of the tally that count the reviews one engine scored, for one reason (see engine_tally_key)."""


def engine_tally_key(engine: str, reason: str) -> str:
    """The tally key of reviews scored by `engine`, chosen for `reason`: engines are chosen where the
    model loads, so on a remote runner each worker may report its own."""
    return f"{ENGINE_PREFIX}{engine}:{reason}"


def read_tally(element: ReviewBatch | Failure) -> dict[str, int]:
    return {READ: 1 if isinstance(element, Failure) else len(element)}


def scored_tally(table: pa.Table) -> dict[str, int]:
    return {SCORED: table.num_rows}


def statistics_tally(result: PredictionResult, labels: Labels) -> dict[str, Any]:
    """The scored batch's lengths, words, scores and labels, for drift checks and the report; the
    engine that scored it; with --explain, its explanations' completeness and top words by class."""
    scored: ScoredBatch = result.inference
    tally: dict[str, Any] = {
        STATISTICS: Statistics.of_batch(result.example.ids, scored.probabilities, labels),
        engine_tally_key(scored.engine, scored.engine_reason): len(scored.probabilities),
    }
    if scored.explained is not None:
        predicted = labels.predicted(scored.probabilities)
        tally[EXPLANATIONS] = ExplanationStatistics.of(scored.explained, predicted, len(labels.class_names))
    return tally


def failed_tally(row: dict[str, Any]) -> dict[str, int]:
    return {FAILED: 1, FAILED_PREFIX + row[STAGE]: 1}


def add_tallies(tallies) -> dict[str, Any]:
    """Beam's CombineGlobally calls this on inputs and on partial sums alike (it is associative).
    Values are counts, Statistics or ExplanationStatistics, which add the same way."""
    total: dict[str, Any] = {}
    for tally in tallies:
        for key, n in tally.items():
            total[key] = total.get(key, 0) + n
    return total


@dataclass(frozen=True)
class RunTally:
    """The combined tally, read: what the run's summary is computed from."""

    read: int
    scored: int
    failed: int
    failed_by_stage: dict[str, int]
    """Failures per stage, by stage name."""
    engines: dict[str, EngineUse]
    """The reviews each engine scored and every reason it was chosen for, by engine name."""
    statistics: Statistics | None
    """None when nothing was scored."""
    explanations: ExplanationStatistics | None
    """None when nothing was explained."""

    @classmethod
    def of(cls, total: dict[str, Any]) -> RunTally:
        stages = {key.removeprefix(FAILED_PREFIX): n for key, n in total.items() if key.startswith(FAILED_PREFIX)}
        return cls(
            read=total.get(READ, 0),
            scored=total.get(SCORED, 0),
            failed=total.get(FAILED, 0),
            failed_by_stage=dict(sorted(stages.items())),
            engines=engines_that_ran(total),
            statistics=total.get(STATISTICS),
            explanations=total.get(EXPLANATIONS),
        )


def engines_that_ran(total: dict[str, Any]) -> dict[str, EngineUse]:
    """The reviews each engine scored, with every reason it was chosen for, from the tally's engine keys."""
    reviews: dict[str, int] = {}
    why: dict[str, list[str]] = {}
    for key, n in sorted(total.items()):
        if key.startswith(ENGINE_PREFIX):
            engine, reason = key.removeprefix(ENGINE_PREFIX).split(":", 1)
            reviews[engine] = reviews.get(engine, 0) + n
            why.setdefault(engine, [])
            if reason:
                why[engine].append(reason)
    return {engine: EngineUse(reviews=n, why=tuple(why[engine])) for engine, n in reviews.items()}
