"""Integrated gradients on the embeddings: how much each token moved a review towards its predicted class.

Definition (Sundararajan, Taly and Yan, 2017): for input x, baseline x' and a differentiable F,
    IG_i(x) = (x_i - x'_i) * integral over a in [0, 1] of dF(x' + a (x - x')) / dx_i.
Here x is the review's embedded tokens (tokens x embedding_dim), x' is the all-zero embedding at
every real token (same length, same mask: "no word information", the usual baseline for text), and
a token's attribution is the sum of IG over its embedding dimensions. F is the predicted class's
logit: for a binary bundle the log-odds of the predicted class (z for positive, -z for negative,
where z is the model's one logit); for K classes that class's logit before the softmax. Calibration
(a positive scale and shift of the logit) changes neither which words matter nor their signs.

Completeness: the attributions sum to F(x) - F(x') exactly for the exact integral. The integral is
computed with STEPS-point Gauss-Legendre quadrature (nodes and weights on [0, 1]); the difference
between the sum and F(x) - F(x'), relative to |F(x) - F(x')|, is each review's completeness error,
which the job reports.

The model is the bundle's RecurrentPlan (`pipeline/model/engines/plan.py`), the arithmetic the XLA and
ONNX engines score with, written here over embeddings instead of ids so TensorFlow can take its
gradient; the interpolation steps of a batch run as one batch of reviews x steps rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.model.engines.plan import RecurrentPlan
from pipeline.model.engines.xla import plan_constants, recurrent_logits
from pipeline.model.explain import STEPS
from pipeline.model.preprocessing import pad_rows
from pipeline.model.progress import WorkerCount

BASELINE = "zero embedding at every token (mask and length kept)"


@dataclass(frozen=True)
class Attributions:
    """Per review: one weight per token (in the review's token order), and how far from complete."""

    weights: list[np.ndarray]
    target_logit: np.ndarray
    """F(x): the predicted class's logit (binary: its log-odds)."""
    baseline_logit: np.ndarray | None
    """F(x'): the same logit at the all-zero embedding; None for a method without a baseline (occlusion)."""

    @property
    def completeness_error(self) -> np.ndarray:
        """|sum of weights - (F(x) - F(x'))| / |F(x) - F(x')| per review; NaN without a baseline."""
        if self.baseline_logit is None:
            return np.full(len(self.weights), np.nan)
        totals = np.array([w.sum() for w in self.weights], dtype=np.float64)
        delta = self.target_logit.astype(np.float64) - self.baseline_logit
        return np.abs(totals - delta) / np.maximum(np.abs(delta), 1e-6)


def class_logit(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """F per row from the engines' (rows, outputs) logits: the given class's logit; for a one-logit
    (binary) head, the log-odds of the given class (z for class 1, -z for class 0)."""
    logits = np.asarray(logits, dtype=np.float32)
    classes = np.asarray(classes)
    if logits.shape[1] == 1:
        return np.where(classes == 1, logits[:, 0], -logits[:, 0])
    return logits[np.arange(len(logits)), classes]


def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of `steps`-point Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return ((nodes + 1) / 2).astype(np.float32), (weights / 2).astype(np.float32)


class IntegratedGradients:
    """Attributions for batches of id rows, on TensorFlow, from a model's RecurrentPlan."""

    method = "integrated gradients"

    def __init__(self, plan: RecurrentPlan, width: int, steps: int = STEPS, batch_size: int = 32):
        import tensorflow as tf

        self.plan = plan
        self.width = width
        self.steps = steps
        self.batch_size = batch_size
        self.alphas, self.alpha_weights = gauss_legendre(steps)
        self._embedding = tf.constant(plan.embedding)
        self._kernels = [tf.constant(d.kernel) for d in plan.directions]
        self._biases = [tf.constant(d.bias) for d in plan.directions]
        self._constants = plan_constants(plan)
        self._compiled: dict[int, object] = {}

    def with_steps(self, steps: int) -> IntegratedGradients:
        return IntegratedGradients(self.plan, self.width, steps, self.batch_size)

    def widths(self) -> list[int]:
        """The padded widths batches are compiled for: powers of two from 16, then the bundle's maximum.
        A batch of short reviews runs at a short width: the path, its projections and their gradients
        are built at the width a batch runs at, so at the bundle's maximum alone short reviews would
        cost as much as long ones."""
        widths, w = [], 16
        while w < self.width:
            widths.append(w)
            w *= 2
        return [*widths, self.width]

    def _compiled_for(self, width: int):
        """One XLA compilation per width: batch_size rows of `width` ids, the loop's length a value."""
        if width not in self._compiled:
            import tensorflow as tf

            self._compiled[width] = tf.function(
                lambda ids, classes, steps: self._attribute_graph(ids, classes, steps, width),
                input_signature=[
                    tf.TensorSpec([self.batch_size, width], tf.int32),
                    tf.TensorSpec([self.batch_size], tf.int32),
                    tf.TensorSpec([], tf.int32),
                ],
                jit_compile=True,
            )
        return self._compiled[width]

    def __call__(
        self, rows: Sequence[np.ndarray], predicted: np.ndarray, progress: WorkerCount | None = None
    ) -> Attributions:
        """Attributions towards each row's predicted class index (into the bundle's classes);
        `progress` counts the reviews explained, batch by batch."""
        weights: list[np.ndarray] = [np.zeros(0, np.float32)] * len(rows)
        target = np.zeros(len(rows), np.float32)
        baseline = np.zeros(len(rows), np.float32)
        order = np.argsort([len(r) for r in rows], kind="stable")
        for start in range(0, len(rows), self.batch_size):
            members = order[start : start + self.batch_size]
            count = len(members)
            longest = max(len(rows[i]) for i in members)
            width = next(w for w in self.widths() if w >= longest)
            ids = np.zeros((self.batch_size, width), np.int32)
            ids[:count] = pad_rows([rows[i] for i in members], width)
            classes = np.zeros(self.batch_size, np.int32)
            classes[:count] = np.asarray(predicted)[members]
            w, f, f0 = (np.asarray(t) for t in self._compiled_for(width)(ids, classes, np.int32(longest)))
            for j, i in enumerate(members):
                weights[i] = w[j, : len(rows[i])]
            target[members], baseline[members] = f[:count], f0[:count]
            if progress is not None:
                progress.add(count)
        return Attributions(weights, target, baseline)

    def _attribute_graph(self, ids, classes, steps, width: int):
        import tensorflow as tf

        rows = self.batch_size
        lengths = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)
        embedded = tf.gather(self._embedding, ids)  # (rows, width, dim)
        alphas = tf.constant(self.alphas)
        # every review at every step: (steps * rows, width, dim), step-major
        path = alphas[:, None, None, None] * embedded[None]
        path = tf.reshape(path, [-1, width, tf.shape(embedded)[2]])
        repeated_lengths = tf.tile(lengths, [self.steps])
        repeated_classes = tf.tile(classes, [self.steps])
        with tf.GradientTape() as tape:
            tape.watch(path)
            chosen = self._class_logit(path, repeated_lengths, repeated_classes, steps, width)
        gradients = tape.gradient(chosen, path)  # (steps * rows, width, dim)
        gradients = tf.reshape(gradients, [self.steps, rows, width, -1])
        averaged = tf.tensordot(tf.constant(self.alpha_weights), gradients, axes=1)  # (rows, width, dim)
        weights = tf.reduce_sum(averaged * embedded, axis=2)
        weights *= tf.cast(tf.sequence_mask(lengths, width), tf.float32)
        target = self._class_logit(embedded, lengths, classes, steps, width)
        base = self._class_logit(tf.zeros_like(embedded), lengths, classes, steps, width)
        return weights, target, base

    def _class_logit(self, embedded, lengths, classes, steps, width: int):
        """F for each row: the predicted class's logit (binary: z or -z)."""
        import tensorflow as tf

        logits = self._logits(embedded, lengths, steps, width)
        if self.plan.outputs == 1:
            return tf.where(classes == 1, logits[:, 0], -logits[:, 0])
        return tf.gather(logits, classes, axis=1, batch_dims=1)

    def _logits(self, embedded, lengths, steps, width: int):
        """The plan's arithmetic (the 'xla' engine's recurrent_logits) over embeddings instead of ids."""
        import tensorflow as tf

        inputs = []
        for d in range(len(self.plan.directions)):
            projected = tf.einsum("btd,dk->btk", embedded, self._kernels[d]) + self._biases[d]
            if d == 1:  # backward: each review reversed within its own length
                projected = tf.reverse_sequence(projected, lengths, seq_axis=1, batch_axis=0)
            inputs.append(tf.transpose(projected, [1, 0, 2]))  # time-major
        return recurrent_logits(self.plan, lambda d, t: inputs[d][t], lengths, width, steps, self._constants)
