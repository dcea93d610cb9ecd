"""The training profile: what held-out reviews looked like to the model, kept in the bundle for drift checks.

`train` writes it from the reviews it held out (movies it never trained on): their lengths, unknown
words and word shares, and the calibrated scores and predicted labels the finished model gave them.
Held out, not training reviews: the vocabulary was built from the training text, so training
reviews have fewer unknown words than any new review will. `reviewscore profile` adds one to a
bundle trained before profiles existed. The file is checksummed like every other bundle file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.model.labels import Labels
from pipeline.model.monitoring.statistics import Statistics
from pipeline.model.preprocessing import EncodedBatch

PROFILE_FORMAT = 1


class ProfileError(ValueError):
    """profile.json cannot be read as a training profile."""


@dataclass(frozen=True)
class TrainingProfile:
    statistics: Statistics
    source: dict[str, Any]
    """Which reviews: their file, which part of it (held-out movies, a validation file), how many."""

    @classmethod
    def of(cls, ids: EncodedBatch, probabilities: np.ndarray, labels: Labels, source: dict[str, Any]):
        return cls(Statistics.of_batch(ids, probabilities, labels), {**source, "reviews": len(ids)})

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": PROFILE_FORMAT, "source": self.source, "statistics": self.statistics.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, classes: int) -> TrainingProfile:
        if not isinstance(data, dict) or data.get("format_version") != PROFILE_FORMAT:
            version = data.get("format_version") if isinstance(data, dict) else None
            raise ProfileError(f"unknown profile format version {version!r} (this reviewscore reads {PROFILE_FORMAT})")
        try:
            statistics = Statistics.from_dict(data["statistics"])
        except (KeyError, TypeError, ValueError) as e:
            raise ProfileError(f"invalid statistics: {e}") from None
        if len(statistics.labels) != classes:
            raise ProfileError(f"the profile counts {len(statistics.labels)} classes, the manifest names {classes}")
        return cls(statistics, dict(data.get("source") or {}))
