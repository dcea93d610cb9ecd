"""What the deployed model is fitted to: the training reviews' own labels, or (distilling) the
teacher's soft labels over the training reviews and unlabelled reviews of the same kind.

Unlabelled reviews carry most of what distillation transfers: on them the teacher's probabilities
are the only signal, and they show the student many more reviews than the labelled set has. On the
labelled reviews the student learns the review's own label, mixed with the teacher's
probabilities by `TeacherSettings.labelled_weight` (the teacher's members trained on these very
reviews, so there their probabilities are over-confident).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.model.preprocessing import EncodedBatch
from training.teacher import Teacher

__all__ = ["Targets", "distilled_targets", "label_targets", "one_hot"]


@dataclass(frozen=True)
class Targets:
    encoded: EncodedBatch
    values: np.ndarray
    """Class indices (texts,), or with `soft` probabilities: of the second class (texts,) for two
    classes, of every class (texts, classes) for more."""
    soft: bool
    labelled: int
    """How many of the rows are labelled reviews (the rest are unlabelled ones)."""

    def __len__(self) -> int:
        return len(self.values)


def label_targets(encoded: EncodedBatch, labels: np.ndarray) -> Targets:
    return Targets(encoded, np.asarray(labels), soft=False, labelled=len(labels))


def distilled_targets(
    teacher: Teacher, encoded: EncodedBatch, labels: np.ndarray, unlabelled: EncodedBatch | None, weight: float
) -> Targets:
    """The teacher's probabilities on the unlabelled reviews, and on the labelled ones `weight` of them
    plus `1 - weight` of the one-hot label."""
    taught = teacher.probabilities("train")
    labelled = weight * taught + (1.0 - weight) * one_hot(labels, taught.shape[1])
    values = [labelled]
    batches = [encoded]
    if unlabelled is not None and len(unlabelled):
        values.append(teacher.probabilities("unlabelled"))
        batches.append(unlabelled)
    probabilities = np.concatenate(values).astype(np.float32)
    if probabilities.shape[1] == 2:
        probabilities = probabilities[:, 1]  # a sigmoid output learns the second class's probability
    return Targets(EncodedBatch.concatenate(batches), probabilities, soft=True, labelled=len(labels))


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
