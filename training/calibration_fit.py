"""Fitting the bundle's calibration on held-out reviews, and measuring how calibrated scores are.

Temperature scaling minimises the log loss of softmax(slope * Z) over the class logits Z (for a
sigmoid head, Z = [0, z]); Platt scaling, for two classes, that of sigmoid(slope * z + intercept).
Both by Newton's method (one or two parameters, convex: a few iterations, exact to 1e-10). Which
one the bundle keeps is decided on data neither was fitted on: each is fitted on all but one part
of the fold, grouped like the split, and scored on the part left out (cross-fitting); the one with
the lower held-out log loss is then fitted on the whole fold. With more than two classes only
temperature scaling applies: it is the one map that cannot change a predicted class.

Measures take (rows, classes) probabilities and the bundle's `Labels`, so they mean the same for
any number of classes: `ece` and `brier` judge the `score` column as a probability (of the
positive class for a binary bundle, of the predicted class being right for a multi-class one),
`confidence_ece` the predicted class's probability, `log_loss` the true class's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.model.calibration import Calibration, class_logits
from pipeline.model.labels import Labels
from schemas.bundle import BINARY_CLASS_NAMES, default_score_label

ECE_BINS = 15
CROSS_FIT_FOLDS = 5
MIN_SLOPE = 1e-6
BINARY = Labels(BINARY_CLASS_NAMES, default_score_label(list(BINARY_CLASS_NAMES)))


def labels_for(class_names) -> Labels:
    return Labels(tuple(class_names), default_score_label(list(class_names)))


def binned(values: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> tuple[np.ndarray, ...]:
    """Per equal-width bin of `values` in [0, 1]: how many fall in it, the sum of their values and
    the sum of their targets. The one binning behind both ECEs and the reliability diagram."""
    values = np.asarray(values, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    which = np.minimum((values * bins).astype(np.int64), bins - 1)
    return np.bincount(which, minlength=bins), np.bincount(which, values, bins), np.bincount(which, targets, bins)


def binned_error(values: np.ndarray, events: np.ndarray, bins: int = ECE_BINS) -> float:
    """Over equal-width bins of the values, the row-weighted mean of |mean value - share of events|."""
    count, value_sums, event_sums = binned(values, events, bins)
    return float(np.abs(value_sums - event_sums).sum() / max(len(values), 1)) if count.any() else float("nan")


def score_events(labels: np.ndarray, probabilities: np.ndarray, names: Labels = BINARY) -> tuple[np.ndarray, ...]:
    """The `score` column and the event it is the probability of: the review is positive (binary
    bundles: score_label), or the predicted class is right (multi-class)."""
    predicted = names.predicted(probabilities)
    scores = names.scores(probabilities, predicted).astype(np.float64)
    labels = np.asarray(labels)
    if names.score_label is not None:
        return scores, labels == names.class_names.index(names.score_label)
    return scores, labels == predicted


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, names: Labels = BINARY) -> float:
    """ECE of the score column as the probability of its event (binary: the positive class)."""
    return binned_error(*score_events(labels, probabilities, names))


def confidence_calibration_error(labels: np.ndarray, probabilities: np.ndarray, names: Labels = BINARY) -> float:
    """ECE of the predicted class's probability against accuracy (Guo et al. 2017)."""
    p = np.asarray(probabilities, dtype=np.float64)
    predicted = names.predicted(p)
    return binned_error(p[np.arange(len(p)), predicted], np.asarray(labels) == predicted)


def brier_score(labels: np.ndarray, probabilities: np.ndarray, names: Labels = BINARY) -> float:
    scores, events = score_events(labels, probabilities, names)
    return float(np.mean((scores - events) ** 2))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.asarray(probabilities, dtype=np.float64)
    true = p[np.arange(len(p)), np.asarray(labels, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(true, 1e-12, 1.0))))


def accuracy(labels: np.ndarray, probabilities: np.ndarray, names: Labels = BINARY) -> float:
    return float(np.mean(names.predicted(probabilities) == np.asarray(labels)))


def fit(method: str, logits: np.ndarray, labels: np.ndarray, details: dict[str, Any] | None = None) -> Calibration:
    """The `method` ('temperature' or 'platt') that minimises log loss on these logits and labels.

    The slope must stay positive (a negative one would flip labels): when the best slope is not, the
    model has no usable signal on this fold, and the slope is held at MIN_SLOPE (Platt then scores
    about the fold's base rate).
    """
    z = class_logits(logits)
    y = np.asarray(labels, dtype=np.int64)
    if method == "temperature":
        return Calibration(method=method, slope=max(_temperature_slope(z, y), MIN_SLOPE), details=details or {})
    if z.shape[1] != 2:
        raise ValueError(f"Platt scaling applies to two classes, not {z.shape[1]}")
    margin, positive = z[:, 1] - z[:, 0], y.astype(np.float64)
    ones = np.ones_like(margin)
    slope, intercept = _newton(np.stack([margin, ones], axis=1), positive, np.zeros_like(margin), np.array([1.0, 0.0]))
    if slope < MIN_SLOPE:
        slope, (intercept,) = MIN_SLOPE, _newton(ones[:, None], positive, MIN_SLOPE * margin, np.zeros(1))
    return Calibration(method=method, slope=float(slope), intercept=float(intercept), details=details or {})


def _temperature_slope(z: np.ndarray, y: np.ndarray) -> float:
    """The s minimising mean(logsumexp(s * Z) - s * Z[y]): convex in s; Newton with step halving."""
    true = z[np.arange(len(z)), y]

    def loss(s: float) -> float:
        scaled = s * z
        top = scaled.max(axis=1)
        return float(np.mean(top + np.log(np.exp(scaled - top[:, None]).sum(axis=1)) - s * true))

    s = 1.0
    for _ in range(100):
        scaled = s * z
        p = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        expected = (p * z).sum(axis=1)
        gradient = float(np.mean(expected - true))
        hessian = float(np.mean((p * z * z).sum(axis=1) - expected**2)) + 1e-9
        step, scale, current = gradient / hessian, 1.0, loss(s)
        while scale > 1e-6 and loss(s - scale * step) > current:
            scale /= 2
        s -= scale * step
        if abs(scale * step) < 1e-10:
            break
    return s


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


def choose_and_fit(
    logits: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    seed: int,
    names: Labels = BINARY,
    fitted_on: str = "calibration fold (grouped like the split; not used for early stopping)",
) -> Calibration:
    """Cross-fit the methods that apply over group folds of the calibration data, keep the better, refit on all."""
    labels = np.asarray(labels)
    methods = ("temperature", "platt") if len(names.class_names) == 2 else ("temperature",)
    unique, inverse = np.unique(groups, return_inverse=True)
    fold_of_group = np.random.default_rng(seed).permutation(len(unique)) % CROSS_FIT_FOLDS
    fold = fold_of_group[inverse]
    held_out: dict[str, np.ndarray] = {}
    for method in methods:
        probabilities = np.empty((len(labels), len(names.class_names)))
        for k in range(CROSS_FIT_FOLDS):
            test = fold == k
            probabilities[test] = fit(method, logits[~test], labels[~test]).probabilities(logits[test])
        held_out[method] = probabilities
    uncalibrated = Calibration().probabilities(logits)
    comparison = {
        method: {
            "log_loss": log_loss(labels, probabilities),
            "ece": expected_calibration_error(labels, probabilities, names),
            "accuracy": accuracy(labels, probabilities, names),
        }
        for method, probabilities in held_out.items()
    }
    best = min(comparison, key=lambda m: comparison[m]["log_loss"])
    calibration = fit(best, logits, labels)
    calibrated = calibration.probabilities(logits)
    details = {
        "fitted_on": fitted_on,
        "rows": len(labels),
        "chosen_by": f"lower log loss in {CROSS_FIT_FOLDS}-fold group cross-fitting on the calibration fold",
        "cross_fitted": comparison,
        "ece_bins": ECE_BINS,
        "before": calibration_metrics(labels, uncalibrated, names),
        "after": calibration_metrics(labels, calibrated, names),
        "after_cross_fitted": calibration_metrics(labels, held_out[best], names),
    }
    return calibration.model_copy(update={"details": details})


def calibration_metrics(labels: np.ndarray, probabilities: np.ndarray, names: Labels = BINARY) -> dict[str, float]:
    return {
        "ece": expected_calibration_error(labels, probabilities, names),
        "confidence_ece": confidence_calibration_error(labels, probabilities, names),
        "brier": brier_score(labels, probabilities, names),
        "log_loss": log_loss(labels, probabilities),
        "accuracy": accuracy(labels, probabilities, names),
    }
