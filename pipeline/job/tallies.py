"""The run's one combined tally: what each element adds to it, and what the summary reads off the total.

Every count of the summary and the run's statistics come from a single CombineGlobally: each
element of the graph contributes a small dict (`read_tally`, `scored_tally`, `statistics_tally`,
`failed_tally`), `add_tallies` sums them key by key, and `RunTally.of` reads the total. The keys
are defined here and nowhere else: a failure counts under FAILED_PREFIX + its stage, a scored batch
under `engine_tally_key` of the engine that scored it and why that engine was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from apache_beam.ml.inference.base import PredictionResult

from pipeline.job.model_handler import ScoredBatch, ShadowReviews
from pipeline.job.sources import Failure, ReviewBatch
from pipeline.model.explain.explainer import Explained, ExplanationStatistics
from pipeline.model.labels import Labels
from pipeline.model.monitoring.statistics import Statistics
from schemas.output import STAGE
from schemas.summary import DISAGREEMENTS_SHOWN, SCORE_DIFFERENCE_BINS, EngineUse

READ, SCORED, FAILED, STATISTICS, EXPLANATIONS = "read", "scored", "failed", "statistics", "explanations"
SHADOW = "shadow"
SNIPPET_CHARACTERS = 200
"""About how much of a review's text a listed disagreement shows."""
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


class Candidate(NamedTuple):
    """A review the two models labelled differently: one of the run's largest disagreements, perhaps."""

    difference: float
    """|score - shadow_score|."""
    review_id: str
    snippet: str
    champion_label: int
    champion_score: float
    shadow_label: int
    shadow_score: float
    champion_words: tuple[tuple[str, float], ...] | None
    """The run's model's top words for it (word, weight), where the review was explained."""

    def rank(self) -> tuple[float, str]:
        """Largest difference first; the review id breaks ties, so every run lists the same reviews."""
        return -self.difference, self.review_id


@dataclass(frozen=True)
class ShadowTally:
    """How the shadow model compares with the run's, as sums that add across batches and workers."""

    compared: int
    failed: int
    """Reviews the run's model scored and the shadow model did not."""
    labels: np.ndarray
    """(classes, classes) counts: by the run's model's label, then the shadow model's."""
    abs_sum: float
    abs_max: float
    differences: np.ndarray
    """SCORE_DIFFERENCE_BINS counts of shadow_score - score, from -1 to 1."""
    sums: np.ndarray
    """Pearson's sums over (score x, shadow score y): x, y, x², y², xy (float64)."""
    statistics: Statistics
    """The shadow model's own statistics (its encoding, its scores): its drift checks read them."""
    disagreements: tuple[Candidate, ...]
    """The DISAGREEMENTS_SHOWN largest disagreements so far, by `Candidate.rank`."""

    @classmethod
    def empty(cls, classes: int) -> ShadowTally:
        return cls(
            0,
            0,
            np.zeros((classes, classes), np.int64),
            0.0,
            0.0,
            np.zeros(SCORE_DIFFERENCE_BINS, np.int64),
            np.zeros(5, np.float64),
            Statistics.empty(classes),
            (),
        )

    def __add__(self, other: ShadowTally) -> ShadowTally:
        if not isinstance(other, ShadowTally):
            return NotImplemented
        return ShadowTally(
            self.compared + other.compared,
            self.failed + other.failed,
            self.labels + other.labels,
            self.abs_sum + other.abs_sum,
            max(self.abs_max, other.abs_max),
            self.differences + other.differences,
            self.sums + other.sums,
            self.statistics + other.statistics,
            largest(self.disagreements + other.disagreements),
        )

    def __radd__(self, other: Any) -> ShadowTally:
        """`0 + tally`, so a tally's `total.get(key, 0) + n` works."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def largest(candidates) -> tuple[Candidate, ...]:
    return tuple(sorted(candidates, key=Candidate.rank)[:DISAGREEMENTS_SHOWN])


def difference_bins(differences: np.ndarray) -> np.ndarray:
    """Counts of `differences` (shadow - champion scores, -1 to 1) in SCORE_DIFFERENCE_BINS equal bins;
    the last bin includes 1."""
    index = np.floor((differences.astype(np.float64) + 1) / 2 * SCORE_DIFFERENCE_BINS).astype(np.int64)
    return np.bincount(np.clip(index, 0, SCORE_DIFFERENCE_BINS - 1), minlength=SCORE_DIFFERENCE_BINS)


def snippet(text: str | None) -> str:
    """The review's first SNIPPET_CHARACTERS or so, cut at a space where one is near."""
    text = " ".join((text or "").split())
    if len(text) <= SNIPPET_CHARACTERS:
        return text
    cut = text.rfind(" ", SNIPPET_CHARACTERS - 40, SNIPPET_CHARACTERS)
    return text[: cut if cut > 0 else SNIPPET_CHARACTERS] + "…"


def shadow_tally(result: PredictionResult, labels: Labels, text_column: str) -> dict[str, ShadowTally]:
    """The comparison of one batch: the shadow model's PredictionResult (a ShadowReviews and its
    ScoredBatch, or None where its model call failed) against the run's model's, row for row.
    `labels`: the two models' (their class names are the same; the launch checks it)."""
    item: ShadowReviews = result.example
    champion: ScoredBatch = item.champion.inference
    batch: ReviewBatch = item.champion.example.reviews
    scored: ScoredBatch | None = result.inference
    tally = ShadowTally.empty(len(labels.class_names))
    if scored is None:
        return {SHADOW: replace(tally, failed=len(batch))}
    mine = champion.probabilities[item.rows]
    x_label, y_label = labels.predicted(mine), labels.predicted(scored.probabilities)
    x = labels.scores(mine, x_label).astype(np.float64)
    y = labels.scores(scored.probabilities, y_label).astype(np.float64)
    gap = np.abs(x - y)
    table = np.zeros_like(tally.labels)
    np.add.at(table, (x_label, y_label), 1)
    apart = np.flatnonzero(x_label != y_label)
    apart = apart[np.lexsort((apart, -gap[apart]))][:DISAGREEMENTS_SHOWN]
    texts, ids = batch.table.column(text_column), batch.ids
    words = explained_words(champion.explained, len(batch)) if len(apart) else {}
    candidates = tuple(
        Candidate(
            float(gap[i]),
            ids[int(item.rows[i])].as_py(),
            snippet(texts[int(item.rows[i])].as_py()),
            int(x_label[i]),
            float(x[i]),
            int(y_label[i]),
            float(y[i]),
            words.get(int(item.rows[i])),
        )
        for i in apart
    )
    return {
        SHADOW: ShadowTally(
            len(item.rows),
            len(batch) - len(item.rows),
            table,
            float(gap.sum()),
            float(gap.max(initial=0.0)),
            difference_bins(y - x),
            np.array([x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()]),
            Statistics.of_batch(item.ids, scored.probabilities, labels),
            largest(candidates),
        )
    }


def explained_words(explained: Explained | None, rows: int) -> dict[int, tuple[tuple[str, float], ...]]:
    """The run's model's top words (word, weight) by the batch's row, for the rows it explained."""
    if explained is None:
        return {}
    chosen = range(rows) if explained.rows is None else explained.rows.tolist()
    return {
        int(row): tuple((w["word"], float(w["weight"])) for w in words)
        for row, words in zip(chosen, explained.top_words.to_pylist(), strict=True)
    }


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
    shadow: ShadowTally | None = None
    """None without a shadow model, or when it met no batch."""

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
            shadow=total.get(SHADOW),
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
