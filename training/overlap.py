"""Whether labelled reviews were among a bundle's training data, and how many of them.

Metrics measured on reviews the model was trained, early-stopped or calibrated on overstate how it
does on new reviews. A bundle records its training data two ways:
- the manifest's `training_data.fingerprint`, sha256 over every training text and label in order
  (`LabelledReviews.fingerprint`): data with the same fingerprint *is* the training data, but a
  fingerprint says nothing about data that differs, however little;
- `training_hashes.parquet` (written by `train`): one 64-bit hash of each training review's text and
  the part it was in, from which the evaluated reviews seen in training are counted one by one.
A bundle trained before `train` wrote the hashes has the fingerprint alone: short of an exact match,
its overlap is unknown, and `evaluate` says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from schemas.bundle import TRAINING_HASHES_FILE
from training.datasets import LabelledReviews

if TYPE_CHECKING:
    from pipeline.model.bundle import Bundle

__all__ = ["PARTS", "TrainingOverlap", "text_hashes", "training_overlap", "write_training_hashes"]

HASH_COLUMN = "text_hash"
"""training_hashes.parquet's columns: the first 8 bytes of sha256(text as UTF-8), little-endian, as
uint64 (equal texts, equal hashes; two different texts share one with a chance of 2**-64), and the
part the review was in."""
PART_COLUMN = "part"
PARTS = ("training", "validation", "calibration")
"""The parts a training review can be in, in the order training uses them."""


def text_hashes(texts: pa.Array) -> np.ndarray:
    """One uint64 per text: HASH_COLUMN's definition."""
    return np.fromiter(
        (int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") for text in texts.to_pylist()),
        dtype=np.uint64,
        count=len(texts),
    )


def write_training_hashes(parts: Mapping[str, pa.Array], folder: Path) -> str:
    """Write each part's text hashes (PARTS' names) into the bundle folder; returns the file's name."""
    hashes = [text_hashes(texts) for texts in parts.values()]
    names = [np.full(len(h), name, dtype=object) for name, h in zip(parts, hashes, strict=True)]
    table = pa.table(
        {
            HASH_COLUMN: pa.array(np.concatenate(hashes), pa.uint64()),
            PART_COLUMN: pa.array(np.concatenate(names), pa.string()).dictionary_encode(),
        }
    )
    pq.write_table(table, folder / TRAINING_HASHES_FILE)
    return TRAINING_HASHES_FILE


class TrainingOverlap(BaseModel):
    """How many evaluated reviews the bundle's training saw; `seen` None: unknown.

    A pydantic model: it is a result `evaluate` writes into its JSON as is (`model_dump`), fields in order.
    """

    model_config = ConfigDict(frozen=True)

    reviews: int
    """The evaluated reviews."""
    seen: int | None
    """How many of them were in the training data; None: unknown."""
    by_part: dict[str, int] = {}
    """Per part of the training data (PARTS), the evaluated reviews it held (a text in two parts counts in both)."""
    hashes: int | None = None
    """The review hashes the count rests on; None: the bundle records none."""
    same_as_training: str | None = None
    """The evaluated source whose fingerprint is the manifest's: it is the training data."""

    def warning(self) -> str | None:
        """The one line `evaluate` warns with, when some evaluated reviews were in the training data."""
        if not self.seen:
            return None
        share = f"{self.seen:,} of {self.reviews:,} reviews ({self.seen / self.reviews:.1%})"
        if self.same_as_training is not None:
            found = f"{share} are the bundle's training data ({self.same_as_training} has its fingerprint)"
        else:
            parts = ", ".join(f"{count:,} {part}" for part, count in self.by_part.items() if count)
            found = f"{share} were in the bundle's training data ({parts})"
        return f"{found}: these metrics overstate how the model does on new reviews"

    def note(self) -> str:
        """What `evaluate` says when there is nothing to warn of."""
        if self.seen is None:
            return (
                "overlap unknown: the bundle records no per-review hashes "
                "(these reviews are not its whole training data: the fingerprints differ)"
            )
        return f"overlap with the training data: none of {self.reviews:,} reviews ({self.hashes:,} hashes checked)"


def training_overlap(bundle: Bundle, sources: Sequence[LabelledReviews], data: LabelledReviews) -> TrainingOverlap:
    """The overlap of `data` (all `sources` together, in order) with the bundle's training data."""
    if TRAINING_HASHES_FILE in bundle.manifest.files:
        return _by_hashes(bundle.path / TRAINING_HASHES_FILE, data)
    fingerprint = bundle.manifest.training_data.get("fingerprint")
    same = [part for part in (data, *sources) if part.fingerprint() == fingerprint]
    if same:
        return TrainingOverlap(reviews=len(data), seen=len(same[0]), same_as_training=same[0].source)
    return TrainingOverlap(reviews=len(data), seen=None)


def _by_hashes(path: Path, data: LabelledReviews) -> TrainingOverlap:
    table = pq.read_table(path)
    trained = table.column(HASH_COLUMN).to_numpy()
    parts = np.asarray(table.column(PART_COLUMN).to_pylist(), dtype=object)
    evaluated = text_hashes(data.texts)
    by_part = {part: int(np.isin(evaluated, trained[parts == part]).sum()) for part in PARTS if (parts == part).any()}
    seen = int(np.isin(evaluated, trained).sum())
    return TrainingOverlap(reviews=len(data), seen=seen, by_part=by_part, hashes=len(trained))
