"""The training profile: what held-out reviews looked like to the model, kept in the bundle for drift checks.

`train` writes it from the reviews it held out (movies it never trained on): their lengths, unknown
words and word shares, and the calibrated scores and predicted labels the finished model gave them.
Held out, not training reviews: the vocabulary was built from the training text, so training
reviews have fewer unknown words than any new review will. `reviewscore profile` adds one to a
bundle trained before profiles existed. The file is checksummed like every other bundle file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError, model_validator

from pipeline.model.labels import Labels
from pipeline.model.monitoring.statistics import Statistics
from pipeline.model.preprocessing import EncodedBatch
from schemas.bundle import PROFILE_FILE
from schemas.validation import refusal

PROFILE_FORMAT = 1


class ProfileError(ValueError):
    """profile.json cannot be read as a training profile."""


class TrainingProfile(BaseModel):
    """profile.json: which reviews, and their statistics.

    A pydantic model, as it is a bundle file and nothing more; its statistics stay a `Statistics`
    (the computational object the drift checks use), read and written through its file form.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    format_version: StrictInt = PROFILE_FORMAT
    """The file's layout; this reviewscore reads PROFILE_FORMAT only."""
    source: dict[str, Any]
    """Which reviews: their file, which part of it (held-out movies, a validation file), how many."""
    statistics: Statistics
    """What those reviews looked like to the model, and the calibrated scores it gave them."""

    @model_validator(mode="before")
    @classmethod
    def _readable(cls, data: Any) -> Any:
        """A layout this reviewscore reads, checked before anything else in it."""
        version = data.get("format_version", PROFILE_FORMAT) if isinstance(data, dict) else None
        if version != PROFILE_FORMAT or isinstance(version, bool):
            raise ProfileError(f"unknown profile format version {version!r} (this reviewscore reads {PROFILE_FORMAT})")
        return data

    @classmethod
    def of(
        cls, ids: EncodedBatch, probabilities: np.ndarray, labels: Labels, source: dict[str, Any]
    ) -> TrainingProfile:
        return cls(source={**source, "reviews": len(ids)}, statistics=Statistics.of_batch(ids, probabilities, labels))


def read_profile(data: Any, classes: int) -> TrainingProfile:
    """profile.json's parsed JSON as a TrainingProfile for a bundle of `classes` classes; ProfileError, one
    line, when it cannot be read or counts another number of classes."""
    if not isinstance(data, dict) or "format_version" not in data:
        version = data.get("format_version") if isinstance(data, dict) else None
        raise ProfileError(f"unknown profile format version {version!r} (this reviewscore reads {PROFILE_FORMAT})")
    try:
        profile = TrainingProfile.model_validate({**data, "source": data.get("source") or {}})
    except ValidationError as e:
        raise refusal(e, ProfileError, PROFILE_FILE) from None
    if len(profile.statistics.labels) != classes:
        raise ProfileError(f"the profile counts {len(profile.statistics.labels)} classes, the manifest names {classes}")
    return profile
