"""From class probabilities to a scored row's label columns, for any number of classes.

One object, built from the manifest, decides the predicted label, the score and label_probs for
every bundle: a binary bundle is the two-class case (its score is the probability of its
`score_label`, the positive class), a five-class bundle the five-class case (its score is the
predicted class's probability). No other module asks how many classes there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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

    def columns(self, probabilities: np.ndarray) -> dict[str, Any]:
        """predicted_label, score and label_probs for a batch of (rows, classes) probabilities."""
        p = np.asarray(probabilities, dtype=np.float32)
        if p.ndim != 2 or p.shape[1] != len(self.class_names):
            raise ValueError(f"expected probabilities of {len(self.class_names)} classes, got shape {p.shape}")
        predicted = self.predicted(p)
        return {
            "predicted_label": [self.class_names[i] for i in predicted],
            "score": self.scores(p, predicted),
            "label_probs": [
                [{"label": name, "prob": float(prob)} for name, prob in zip(self.class_names, row, strict=True)]
                for row in p
            ],
        }

    def row(self, probabilities: np.ndarray) -> tuple[str, float, list[dict[str, Any]]]:
        """The same three values for one review's (classes,) probabilities."""
        columns = self.columns(np.asarray(probabilities)[None, :])
        return columns["predicted_label"][0], float(columns["score"][0]), columns["label_probs"][0]
