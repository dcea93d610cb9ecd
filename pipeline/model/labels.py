"""From class probabilities to a scored row's label columns, for any number of classes.

One object, built from the manifest, decides the predicted label, the score and label_probs for
every bundle: a binary bundle is the two-class case (its score is the probability of its
`score_label`, the positive class), a five-class bundle the five-class case (its score is the
predicted class's probability). No other module asks how many classes there are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from schemas.output import LABEL_PROB_FIELDS, LABEL_PROBS, PREDICTED_LABEL, SCORE


@dataclass(frozen=True)
class Labels:
    class_names: tuple[str, ...]
    score_label: str | None = None

    @classmethod
    def of(cls, manifest) -> Labels:
        return cls(tuple(manifest.class_names), manifest.score_label)

    def predicted(self, probabilities: np.ndarray) -> np.ndarray:
        """Index of the most probable class per row; a tie goes to the later class, so a binary
        score of exactly 0.5 is positive, as `score >= 0.5` always decided."""
        p = np.asarray(probabilities)
        return p.shape[1] - 1 - np.argmax(p[:, ::-1], axis=1)

    def scores(self, probabilities: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        p = np.asarray(probabilities, dtype=np.float32)
        if self.score_label is not None:
            return p[:, self.class_names.index(self.score_label)]
        return p[np.arange(len(p)), predicted]

    @property
    def score_meaning(self) -> str:
        """What the score column holds, in words, for people reading a score beside a label."""
        if self.score_label is not None:
            return f"the probability of {self.score_label}"
        return "the predicted class's probability"

    def columns(self, probabilities: np.ndarray) -> dict[str, pa.Array]:
        """predicted_label, score and label_probs as Arrow columns for a batch of (rows, classes)
        probabilities, built with array operations: no Python object per review."""
        p = np.asarray(probabilities, dtype=np.float32)
        if p.ndim != 2 or p.shape[1] != len(self.class_names):
            raise ValueError(f"expected probabilities of {len(self.class_names)} classes, got shape {p.shape}")
        rows, classes = p.shape
        predicted = self.predicted(p)
        names = pa.array(self.class_names, pa.string())
        pairs = pa.StructArray.from_arrays(
            [names.take(pa.array(np.tile(np.arange(classes), rows))), pa.array(p.reshape(-1))],
            fields=list(LABEL_PROB_FIELDS),
        )
        return {
            PREDICTED_LABEL: names.take(pa.array(predicted)),
            SCORE: pa.array(self.scores(p, predicted)),
            LABEL_PROBS: pa.ListArray.from_arrays(pa.array(np.arange(0, rows * classes + 1, classes, np.int32)), pairs),
        }


def class_mismatch(model: str, classes: tuple[str, ...], shadow: str, shadow_classes: tuple[str, ...]) -> str | None:
    """Why a shadow bundle cannot be compared with the model, review by review, or None when it can:
    it must have the model's class names in the model's order, so that the two labels of a review are
    the same kind of thing and the label table crosses them (`score` and `evaluate` alike)."""
    if tuple(classes) == tuple(shadow_classes):
        return None
    return (
        f"the shadow model {shadow} has the classes {', '.join(shadow_classes)}, the model {model} has "
        f"{', '.join(classes)}: pass a --shadow-model bundle with the model's class names, in order"
    )
