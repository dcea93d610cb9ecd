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
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictStr,
    ValidationError,
    model_serializer,
    model_validator,
)

from schemas.bundle import CALIBRATION_FILE
from schemas.validation import refusal

METHODS = ("none", "temperature", "platt")


class CalibrationError(ValueError):
    """calibration.json is not a calibration this version of reviewscore can apply."""


class Calibration(BaseModel):
    """calibration.json, and the one map from logits to probabilities it defines.

    A pydantic model, not a computational object with a file form beside it: its fields are the
    file's keys and all it computes (`probabilities`) reads them, so the file is read and written
    through the model itself (`read_calibration`; bundle.py writes `model_dump`). The file's
    `temperature` key, 1 / slope, is written for temperature scaling and ignored when read.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    method: StrictStr = "none"
    """One of METHODS: none, temperature, platt."""
    slope: StrictFloat = 1.0
    """Multiplies every class logit; positive, so it never flips the predicted class."""
    intercept: StrictFloat = 0.0
    """Added to the last class's logit (Platt scaling, two classes); 0 for temperature scaling."""
    details: dict[str, Any] = {}
    """How it was fitted and what it measured (fold, sizes, ECE before and after); informational."""

    @model_validator(mode="after")
    def _applicable(self) -> Calibration:
        """A known method, with a finite positive slope and the intercept its method allows."""
        if self.method not in METHODS:
            raise CalibrationError(f"unknown calibration method {self.method!r}; known: {', '.join(METHODS)}")
        for name in ("slope", "intercept"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise CalibrationError(f"calibration {name} must be a finite number, got {value!r}")
        if self.slope <= 0:
            raise CalibrationError(
                f"calibration slope must be positive (a negative one flips labels), got {self.slope}"
            )
        if self.method == "temperature" and self.intercept != 0:
            raise CalibrationError("temperature scaling has no intercept")
        return self

    @model_serializer(mode="wrap")
    def _with_temperature(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The file's keys in its order: temperature scaling's temperature before the details."""
        data = handler(self)
        if self.method != "temperature":
            return data
        details = data.pop("details")
        return {**data, "temperature": self.temperature, "details": details}

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


FILE_KEYS = ("method", "slope", "intercept")
"""The keys calibration.json must hold (a Calibration built in code may leave them to their defaults)."""


def read_calibration(data: Any) -> Calibration:
    """calibration.json's parsed JSON as a Calibration; CalibrationError, one line, when it cannot be applied."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{CALIBRATION_FILE} must hold a JSON object")
    missing = [key for key in FILE_KEYS if key not in data]
    if missing:
        raise CalibrationError(f"{CALIBRATION_FILE} lacks {missing[0]!r}")
    try:
        return Calibration.model_validate({**data, "details": data.get("details") or {}})
    except ValidationError as e:
        raise refusal(e, CalibrationError, CALIBRATION_FILE) from None


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
