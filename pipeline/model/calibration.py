"""Calibration: the map from the model's logits to class probabilities a user can take at their word.

A network trained to low loss is overconfident on data it has not seen: its probabilities run
higher than its accuracy (docs/training.md, "Calibrated scores"). Training fits a one- or two-parameter map on
held-out reviews and stores it in the bundle as `calibration.json`, checksummed like every other
file; every engine produces logits and this one function turns them into class probabilities, so
the engines cannot disagree about it.

Logits come as one column per unit of the model's last Dense layer: K columns for a softmax head
over K classes, one column z for a sigmoid head (two classes), which is the softmax head whose
class logits are [0, z]. `class_logits` makes that identity explicit, so everything after it sees
K classes whatever the head:

- temperature scaling: p = softmax(Z / T); one parameter, never changes the predicted class nor
  the ranking of reviews by any class's probability;
- Platt scaling (two classes): p = softmax([0, a * z + b]) = sigmoid(a * z + b); also moves the
  decision threshold when the model leans to one class.
Both are softmax(slope * Z + intercept on the last class). A bundle without the file scores with
slope 1, intercept 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.bundle import CALIBRATION_FILE

METHODS = ("none", "temperature", "platt")


class CalibrationError(ValueError):
    """calibration.json is not a calibration this version of reviewscore can apply."""


@dataclass(frozen=True)
class Calibration:
    method: str = "none"
    slope: float = 1.0
    intercept: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    """How it was fitted and what it measured (fold, sizes, ECE before and after); informational."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise CalibrationError(f"unknown calibration method {self.method!r}; known: {', '.join(METHODS)}")
        for name in ("slope", "intercept"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise CalibrationError(f"calibration {name} must be a finite number, got {value!r}")
        if self.slope <= 0:
            raise CalibrationError(
                f"calibration slope must be positive (a negative one flips labels), got {self.slope}"
            )
        if self.method == "temperature" and self.intercept != 0:
            raise CalibrationError("temperature scaling has no intercept")

    @property
    def temperature(self) -> float:
        return 1.0 / self.slope

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """float32 (rows, classes) probabilities, each row summing to 1; computed in float64."""
        z = self.slope * class_logits(logits)
        if self.intercept:
            if z.shape[1] != 2:
                raise CalibrationError(f"Platt scaling applies to two classes, not {z.shape[1]}")
            z[:, -1] += self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        data = {"method": self.method, "slope": self.slope, "intercept": self.intercept}
        if self.method == "temperature":
            data["temperature"] = self.temperature
        return {**data, "details": self.details}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        if not isinstance(data, dict):
            raise CalibrationError(f"{CALIBRATION_FILE} must hold a JSON object")
        try:
            return cls(data["method"], data["slope"], data["intercept"], dict(data.get("details") or {}))
        except KeyError as e:
            raise CalibrationError(f"{CALIBRATION_FILE} lacks {e.args[0]!r}") from None


UNCALIBRATED = Calibration()


def class_logits(logits: np.ndarray) -> np.ndarray:
    """(rows, classes) float64 logits: a sigmoid head's single column z becomes [0, z]."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    return np.concatenate([np.zeros_like(z), z], axis=1) if z.shape[1] == 1 else z.copy()


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """(rows, classes) probabilities from a bare Keras model's outputs: a sigmoid head's p becomes [1 - p, p]."""
    p = np.asarray(outputs, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    return np.concatenate([1.0 - p, p], axis=1) if p.shape[1] == 1 else p


def logit(probabilities: np.ndarray) -> np.ndarray:
    """The log-odds of a bare Keras model's sigmoid output, for code that holds only probabilities
    (the tutorials' `model.predict`); exact in the middle, limited by float32 in the far tails."""
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)
