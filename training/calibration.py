"""Fitting the bundle's calibration on held-out reviews, and measuring how calibrated scores are.

Both methods minimise the log loss of sigmoid(slope * z + intercept) on the calibration fold by
Newton's method (one or two parameters: a few iterations, exact to 1e-10). Which one the bundle
keeps is decided on data neither was fitted on: each is fitted on all but one part of the fold,
grouped like the split, and scored on the part left out (cross-fitting); the one with the lower
held-out log loss is then fitted on the whole fold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.calibration import Calibration

ECE_BINS = 15
CROSS_FIT_FOLDS = 5
MIN_SLOPE = 1e-6


def binned(values: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> tuple[np.ndarray, ...]:
    """Per equal-width bin of `values` in [0, 1]: how many fall in it, the sum of their values and
    the sum of their targets. The one binning behind both ECEs and the reliability diagram."""
    values = np.asarray(values, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    which = np.minimum((values * bins).astype(np.int64), bins - 1)
    return np.bincount(which, minlength=bins), np.bincount(which, values, bins), np.bincount(which, targets, bins)


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the score as a probability of the positive class: over equal-width score bins, the
    review-weighted mean of |mean score - share of positives|."""
    count, score_sums, positive_sums = binned(scores, labels, bins)
    return float(np.abs(score_sums - positive_sums).sum() / max(len(labels), 1)) if count.any() else float("nan")


def confidence_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the predicted label's confidence (Guo et al. 2017): bins of max(p, 1 - p) against accuracy."""
    scores = np.asarray(scores, dtype=np.float64)
    predicted = scores >= 0.5
    confidence = np.where(predicted, scores, 1.0 - scores)
    correct = predicted == np.asarray(labels).astype(bool)
    _, confidence_sums, correct_sums = binned(confidence, correct, bins)
    return float(np.abs(confidence_sums - correct_sums).sum() / max(len(scores), 1))


def brier_score(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean((np.asarray(scores, dtype=np.float64) - np.asarray(labels, dtype=np.float64)) ** 2))


def log_loss(labels: np.ndarray, scores: np.ndarray) -> float:
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit(method: str, logits: np.ndarray, labels: np.ndarray, details: dict[str, Any] | None = None) -> Calibration:
    """The `method` ('temperature' or 'platt') that minimises log loss on these logits and labels.

    The slope must stay positive (a negative one would flip labels): when the best slope is not, the
    model has no usable signal on this fold, and the slope is held at MIN_SLOPE (Platt then scores
    about the fold's base rate).
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    ones = np.ones_like(z)
    if method == "temperature":
        slope = max(_newton(z[:, None], y, np.zeros_like(z), np.ones(1))[0], MIN_SLOPE)
        return Calibration(method, slope, 0.0, details or {})
    slope, intercept = _newton(np.stack([z, ones], axis=1), y, np.zeros_like(z), np.array([1.0, 0.0]))
    if slope < MIN_SLOPE:
        slope, (intercept,) = MIN_SLOPE, _newton(ones[:, None], y, MIN_SLOPE * z, np.zeros(1))
    return Calibration(method, float(slope), float(intercept), details or {})


def _newton(features: np.ndarray, y: np.ndarray, offset: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Minimise the mean log loss of sigmoid(features @ params + offset): convex, so Newton's method
    with step halving converges to the optimum."""
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (features @ params + offset)))
        gradient = features.T @ (p - y)
        hessian = (features * (p * (1 - p))[:, None]).T @ features + 1e-9 * np.eye(len(params))
        step = np.linalg.solve(hessian, gradient)
        loss = _loss(features, y, offset, params)
        scale = 1.0
        while scale > 1e-6 and _loss(features, y, offset, params - scale * step) > loss:
            scale /= 2
        params = params - scale * step
        if np.max(np.abs(scale * step)) < 1e-10:
            break
    return params


def _loss(features: np.ndarray, y: np.ndarray, offset: np.ndarray, params: np.ndarray) -> float:
    z = features @ params + offset
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def choose_and_fit(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int) -> Calibration:
    """Cross-fit both methods over group folds of the calibration data, keep the better, refit on all."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    unique, inverse = np.unique(groups, return_inverse=True)
    fold_of_group = np.random.default_rng(seed).permutation(len(unique)) % CROSS_FIT_FOLDS
    fold = fold_of_group[inverse]
    held_out: dict[str, np.ndarray] = {}
    for method in ("temperature", "platt"):
        scores = np.empty(len(labels))
        for k in range(CROSS_FIT_FOLDS):
            test = fold == k
            scores[test] = fit(method, logits[~test], labels[~test]).probabilities(logits[test])
        held_out[method] = scores
    uncalibrated = Calibration().probabilities(logits)
    comparison = {
        method: {
            "log_loss": log_loss(labels, scores),
            "ece": expected_calibration_error(labels, scores),
            "accuracy": float(np.mean((scores >= 0.5) == labels.astype(bool))),
        }
        for method, scores in held_out.items()
    }
    best = min(comparison, key=lambda m: comparison[m]["log_loss"])
    calibration = fit(best, logits, labels)
    calibrated = calibration.probabilities(logits)
    details = {
        "fitted_on": "calibration fold (grouped like the split; not used for early stopping)",
        "rows": len(labels),
        "chosen_by": f"lower log loss in {CROSS_FIT_FOLDS}-fold group cross-fitting on the calibration fold",
        "cross_fitted": comparison,
        "ece_bins": ECE_BINS,
        "before": calibration_metrics(labels, uncalibrated),
        "after": calibration_metrics(labels, calibrated),
        "after_cross_fitted": calibration_metrics(labels, held_out[best]),
    }
    return Calibration(calibration.method, calibration.slope, calibration.intercept, details)


def calibration_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {
        "ece": expected_calibration_error(labels, scores),
        "confidence_ece": confidence_calibration_error(labels, scores),
        "brier": brier_score(labels, scores),
        "log_loss": log_loss(labels, scores),
        "accuracy": float(np.mean((np.asarray(scores) >= 0.5) == np.asarray(labels).astype(bool))),
    }
