"""Exact occlusion (leave-one-word-out): what each word adds, measured by scoring the review without it.

weight(t) = F(x) - F(x without token t), where F is the predicted class's logit (binary: its
log-odds), as for integrated gradients. No gradient and no approximation: each of a review's L
words costs one more forward pass of L - 1 tokens, on whichever engine scores the job (ONNX
Runtime included), so it is cheaper than integrated gradients for short texts and runs where
TensorFlow is not installed. A one-word review's word gets F(x) itself (without it nothing is left
to score). Occlusion does not promise that the weights add up to anything, so it has no
completeness error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pipeline.explain.integrated_gradients import Attributions, class_logit
from pipeline.progress import Progress

ROWS_PER_CALL = 16_384
"""Occluded variants scored per engine call (a 500-token review alone makes 500 of them)."""


class Occlusion:
    method = "occlusion"

    def __init__(self, logits: Callable[[Sequence[np.ndarray]], np.ndarray]):
        self.logits = logits
        """The scoring engine's raw logits (CalibratedScorer.logits): (rows, outputs)."""

    def __call__(
        self, rows: Sequence[np.ndarray], predicted: np.ndarray, logits=None, progress: Progress | None = None
    ) -> Attributions:
        """`logits`: the engine's logits of `rows`, when already computed by scoring; `progress` counts
        the reviews explained, chunk by chunk (a batch of long reviews takes many engine calls)."""
        predicted = np.asarray(predicted)
        target = class_logit(self.logits(rows) if logits is None else logits, predicted)
        weights: list[np.ndarray] = []
        start = 0
        while start < len(rows):
            end, variants = start, 0
            while end < len(rows) and (variants == 0 or variants + len(rows[end]) <= ROWS_PER_CALL):
                variants += len(rows[end])
                end += 1
            weights.extend(self._chunk(rows[start:end], predicted[start:end], target[start:end]))
            if progress is not None:
                progress.add(end - start)
            start = end
        return Attributions(weights, target, None)

    def _chunk(self, rows, predicted, target) -> list[np.ndarray]:
        variants, owners = [], []
        for i, row in enumerate(rows):
            if len(row) > 1:
                keep = ~np.eye(len(row), dtype=bool)
                variants.extend(np.broadcast_to(row, (len(row), len(row)))[keep].reshape(len(row), len(row) - 1))
                owners.extend([i] * len(row))
        occluded = class_logit(self.logits(variants), predicted[owners]) if variants else np.zeros(0, np.float32)
        out, at = [], 0
        for i, row in enumerate(rows):
            if len(row) > 1:
                out.append((target[i] - occluded[at : at + len(row)]).astype(np.float32))
                at += len(row)
            else:
                out.append(np.array([target[i]], np.float32))
        return out
