"""Drift checks: is this run's data (and what the model made of it) like the data the model was validated on?

Each check compares the run's Statistics with the bundle's training profile by one named statistic
and a fixed threshold, the conventions of the field (TFDV, Evidently, credit-risk monitoring):
- distributions: the population stability index, PSI = sum (a - e) ln(a / e) over the reference's
  quantile bins (0.1: a minor shift, 0.25: a major one; we alarm at 0.25), and for word shares the
  Jensen-Shannon distance in bits (0: the same, 1: disjoint; we alarm at 0.1, Evidently's default).
  The quantile bins are the reference's deciles: up to QUANTILE_BINS, fewer where deciles fall in
  one bin of the fine histogram (a score bin or a length that more than a tenth of the reference
  has), which the check's statistic then says;
- the unknown-word rate: a two-proportion z-test with Cohen's h as its effect size. Over a million
  tokens a z-test finds any difference, even between clean samples of new reviews and the profile.
  So a rate drifts only when the difference is both significant (|z| > 3.29, two-sided p < 0.001)
  and not negligible (|h| >= 0.2, Cohen's "small" effect).
Below MIN_REVIEWS scored reviews chance alone moves the statistics towards their thresholds: every
check then reports `insufficient_data` and nothing is detected. docs/drift-and-report.md "Drift checks and the run
report" has the measurements behind both choices.

Each check states the conditions that decide it (`conditions`): one statistic against its threshold,
or for the unknown-word rate both z and h; the report shows them all, so a verdict can be read off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.model.monitoring.statistics import Statistics, padded
from schemas.summary import DRIFTED, INSUFFICIENT, NO_PROFILE, OK, Drift, DriftCheck

MIN_REVIEWS = 500
PSI_THRESHOLD = 0.25
JS_THRESHOLD = 0.1
Z_THRESHOLD = 3.29
COHENS_H_THRESHOLD = 0.2
QUANTILE_BINS = 10
PROPORTION_FLOOR = 1e-4
"""Empty bins count as this share in PSI (ln 0 is undefined); the usual choice."""
EFFECT_SIZE = "effect_size"
"""The details key of a check decided by an effect size as well as its statistic (the unknown-word rate)."""


@dataclass(frozen=True)
class Condition:
    """One statistic against its threshold; a check drifts when every one of its conditions holds."""

    statistic: str
    symbol: str
    """How the rule names the value ("z", "h"); empty where the statistic column names it."""
    value: float
    threshold: float
    two_sided: bool = False
    """Compare |value|: a shift either way counts."""
    at_least: bool = False
    """value >= threshold rather than value > threshold."""

    def holds(self) -> bool:
        value = abs(self.value) if self.two_sided else self.value
        return value >= self.threshold if self.at_least else value > self.threshold

    def rule(self) -> str:
        """The condition as the report prints it: "> 0.25", "|z| > 3.29", "|h| ≥ 0.20"."""
        name = f"|{self.symbol}|" if self.two_sided else self.symbol
        return f"{name} {'≥' if self.at_least else '>'} {self.threshold:.2f}".strip()


def rate_conditions(z: float, h: float) -> tuple[Condition, Condition]:
    """The unknown-word rate drifts when the difference is significant and not negligible: both hold."""
    return (
        Condition("two-proportion z-test", "z", z, Z_THRESHOLD, two_sided=True),
        Condition("Cohen's h (effect size)", "h", h, COHENS_H_THRESHOLD, two_sided=True, at_least=True),
    )


def conditions(check: DriftCheck) -> tuple[Condition, ...]:
    """What decides a check, from its summary entry: its statistic against its threshold, and for the
    unknown-word rate Cohen's h against its own as well."""
    effect = check.details.get(EFFECT_SIZE)
    if isinstance(effect, dict):
        return rate_conditions(check.value, effect["value"])
    return (Condition(check.statistic, "", check.value, check.threshold),)


def measured(
    name: str, what: str, statistic: str, value: float, threshold: float, drifted: bool, details: dict[str, Any]
) -> DriftCheck:
    """A check as measured, judged as if the run had enough reviews (`check_drift` says when it has not)."""
    return DriftCheck(
        name=name,
        what=what,
        statistic=statistic,
        value=round(value, 6),
        threshold=threshold,
        drifted=drifted,
        verdict=DRIFTED if drifted else OK,
        details=details,
    )


def insufficient(check: DriftCheck) -> DriftCheck:
    """The check of a run below MIN_REVIEWS: reported, never drifted."""
    return check.model_copy(update={"drifted": False, "verdict": INSUFFICIENT})


def check_drift(reference: Statistics | None, run: Statistics) -> Drift:
    """The summary's drift part: whether anything drifted, and every check with its verdict."""
    if reference is None:
        return Drift(
            detected=False,
            status=NO_PROFILE,
            reason="the bundle has no training profile (add one with `reviewscore profile`)",
        )
    enough = run.reviews >= MIN_REVIEWS
    checks = [
        label_check(reference, run),
        distribution_check("scores", "score column", reference.scores, run.scores),
        distribution_check("length", "tokens per review", reference.lengths, run.lengths),
        vocabulary_check(reference, run),
        unknown_rate_check(reference, run),
    ]
    detected = enough and any(c.drifted for c in checks)
    return Drift(
        detected=detected,
        status=(DRIFTED if detected else OK) if enough else INSUFFICIENT,
        checks=tuple(checks) if enough else tuple(insufficient(c) for c in checks),
        reviews=run.reviews,
        reference_reviews=reference.reviews,
        min_reviews=MIN_REVIEWS,
    )


def label_check(reference: Statistics, run: Statistics) -> DriftCheck:
    value = psi(reference.labels, run.labels)
    return measured(
        "predicted_labels",
        "share of each predicted class",
        "population stability index",
        value,
        PSI_THRESHOLD,
        value > PSI_THRESHOLD,
        {"reference_shares": _shares(reference.labels), "run_shares": _shares(run.labels)},
    )


def distribution_check(name: str, what: str, reference: np.ndarray, run: np.ndarray) -> DriftCheck:
    """PSI over up to QUANTILE_BINS quantile bins of the reference's fine histogram (see quantile_bins)."""
    starts = quantile_bins(reference, QUANTILE_BINS)
    expected, actual = coarsen(reference, starts), coarsen(run, starts)
    value = psi(expected, actual)
    return measured(
        name,
        what,
        quantile_bins_statistic(len(starts)),
        value,
        PSI_THRESHOLD,
        value > PSI_THRESHOLD,
        {"bin_starts": starts.tolist()},
    )


def quantile_bins_statistic(bins: int) -> str:
    """The distribution checks' statistic, saying how many quantile bins there were and, when fewer than
    QUANTILE_BINS, why."""
    if bins >= QUANTILE_BINS:
        return f"population stability index over {QUANTILE_BINS} reference quantile bins"
    return (
        f"population stability index over up to {QUANTILE_BINS} reference quantile bins "
        f"({bins} here: deciles that fall in one histogram bin merge)"
    )


def vocabulary_check(reference: Statistics, run: Statistics) -> DriftCheck:
    value = jensen_shannon_distance(reference.tokens, run.tokens)
    return measured(
        "vocabulary",
        "shares of the most frequent words, other known words and unknown words",
        "Jensen-Shannon distance (base 2)",
        value,
        JS_THRESHOLD,
        value > JS_THRESHOLD,
        {},
    )


def unknown_rate_check(reference: Statistics, run: Statistics) -> DriftCheck:
    p_ref = reference.unknown_tokens / max(reference.total_tokens, 1)
    p_run = run.unknown_tokens / max(run.total_tokens, 1)
    z = two_proportion_z(run.unknown_tokens, run.total_tokens, reference.unknown_tokens, reference.total_tokens)
    h = cohens_h(p_run, p_ref)
    z_test, effect = rate_conditions(z, h)
    return measured(
        "unknown_word_rate",
        "share of tokens not in the vocabulary",
        "two-proportion z-test",
        z,
        Z_THRESHOLD,
        z_test.holds() and effect.holds(),
        {
            "reference_rate": round(p_ref, 6),
            "run_rate": round(p_run, 6),
            EFFECT_SIZE: {"statistic": "Cohen's h", "value": round(h, 6), "threshold": COHENS_H_THRESHOLD},
        },
    )


def psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """Population stability index between two histograms over the same bins."""
    e = proportions(expected_counts)
    a = proportions(actual_counts, len(e))
    e, a = np.maximum(e, PROPORTION_FLOOR), np.maximum(a, PROPORTION_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon_distance(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """sqrt of the Jensen-Shannon divergence in bits (scipy's `jensenshannon(p, q, base=2)`; scipy is
    not a dependency of scoring for these five lines)."""
    p = proportions(p_counts)
    q = proportions(q_counts, len(p))
    m = (p + q) / 2
    divergence = 0.5 * _kl_bits(p, m) + 0.5 * _kl_bits(q, m)
    return float(math.sqrt(max(divergence, 0.0)))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """Pooled two-proportion z statistic for x1/n1 against x2/n2 (0 when either side is empty)."""
    if n1 == 0 or n2 == 0:
        return 0.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return (x1 / n1 - x2 / n2) / se if se > 0 else 0.0


def cohens_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def quantile_bins(reference: np.ndarray, bins: int) -> np.ndarray:
    """Start indices of up to `bins` groups of consecutive fine bins, each holding about 1/bins of the
    reference; a value too common to split (a length every tenth review has) makes fewer groups."""
    counts = np.asarray(reference, dtype=np.float64)
    if counts.sum() == 0:
        return np.array([0])
    cumulative = np.cumsum(counts) / counts.sum()
    cuts = np.searchsorted(cumulative, np.arange(1, bins) / bins, side="left") + 1
    return np.unique(np.concatenate([[0], cuts[cuts < len(counts)]]))


def coarsen(counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Fine-bin counts summed into the groups that begin at `starts`; the last group takes every bin
    from its start on, including bins the reference never had (a run's longer reviews)."""
    return np.add.reduceat(padded(np.asarray(counts, dtype=np.float64), starts[-1] + 1), starts)


def proportions(counts: np.ndarray, length: int = 0) -> np.ndarray:
    """Counts as shares of their total (all zeros stay zeros), padded to `length` bins."""
    c = padded(np.asarray(counts, dtype=np.float64), length)
    total = c.sum()
    return c / total if total > 0 else c


def _kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))


def _shares(counts: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in proportions(counts)]
