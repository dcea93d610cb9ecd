"""Turning encoded reviews into scores as fast as this machine allows, without changing a score.

Two engines do the same arithmetic:
- `CompiledScorer` (engine 'xla'): the bundle's model rebuilt as one XLA-compiled loop
  (`pipeline/recurrent_graph.py`), fed fixed-size, length-sorted batches from several threads at
  once. XLA's compiled loop runs on one core, so threads, not TensorFlow's intra-op pool, fill the
  machine. Used when the model's layers are ones the graph reproduces and it agrees with Keras on a
  probe batch.
- `KerasScorer` (engine 'keras'): the Keras model in a shape-polymorphic `tf.function`, on
  length-sorted slices padded to their own longest review. Serves every other architecture.

Both sort reviews by length first so that a batch's padding is small; with masking, padding never
changes a score, so the order of work is invisible in the results. Both return the model's logits
(the final Dense layer before its sigmoid or softmax: one column per unit); `CalibratedScorer`
turns them into the bundle's calibrated class probabilities with one function
(`pipeline/calibration.py`), whichever engine ran and however many classes there are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pipeline.calibration import UNCALIBRATED, Calibration, class_probabilities
from pipeline.layers import output_head
from pipeline.preprocessing import pad_rows

ENGINES = ("auto", "xla", "keras")
# Largest |score difference| to Keras allowed on the probe batch before the compiled graph is used.
PROBE_TOLERANCE = 1e-5
PROBE_LENGTH = 12
# Rows per model call when not set, the fastest of each engine on the build machine (BENCHMARKS.md).
BEST_BATCH_SIZE = {"xla": 256, "keras": 64}
# Reviews per RunInference batch, sorted by length and cut into model calls (BENCHMARKS.md).
DEFAULT_MAX_BATCH_SIZE = 4096
log = logging.getLogger("reviewscore")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def score_in_length_order(
    rows: Sequence[np.ndarray], batch_size: int, outputs: int, score_slice, run=map
) -> np.ndarray:
    """(rows, outputs) logits in input order, computed by `score_slice` on length-sorted slices of
    row indices (`run` may map the slices onto a thread pool)."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    order = np.argsort(lengths, kind="stable")
    slices = [order[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    scores = np.empty((len(rows), outputs), dtype=np.float32)
    for members, part in zip(slices, run(score_slice, slices), strict=True):
        scores[members] = part
    return scores


class KerasScorer:
    engine = "keras"

    def __init__(self, model, batch_size: int, reason: str = ""):
        self.predict, self.outputs = compile_keras(model)
        self.batch_size = batch_size
        self.reason = reason

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return score_in_length_order(
            rows,
            self.batch_size,
            self.outputs,
            lambda members: np.asarray(self.predict(pad_rows([rows[i] for i in members]))),
        )


class CompiledScorer:
    engine = "xla"
    reason = ""

    def __init__(self, predict, width: int, outputs: int, batch_size: int, threads: int):
        self.predict = predict
        self.width = width
        self.outputs = outputs
        self.batch_size = batch_size
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="score") if threads > 1 else None

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        run = self.pool.map if self.pool else map
        return score_in_length_order(
            rows, self.batch_size, self.outputs, lambda members: self._score_slice(rows, members), run
        )

    def _score_slice(self, rows: Sequence[np.ndarray], members: np.ndarray) -> np.ndarray:
        """One compiled call, on ids padded to the full width and the full batch size.

        One shape means one XLA compilation per process (1 to 1.5 s on the build machine); a short
        last slice padded with empty rows costs at most one batch's worth of steps (about 0.15 s).
        """
        count = len(members)
        ids = np.zeros((self.batch_size, self.width), dtype=np.int32)
        ids[:count] = pad_rows([rows[i] for i in members], self.width)
        longest = max(len(rows[i]) for i in members)
        return np.asarray(self.predict(ids, np.int32(longest)))[:count]


def compile_keras(model):
    """(predict, outputs): logits as a tf.function over any batch size and length, traced once
    instead of once per shape, and the number of logit columns.

    The logits are the final Dense layer's input times its kernel plus bias: the model up to that
    layer, then the layer's own weights without its sigmoid or softmax.
    """
    import keras
    import tensorflow as tf

    head = output_head(model)
    features = keras.Model(model.inputs, head.input)
    kernel = head.kernel
    bias = head.bias if head.use_bias else tf.zeros([head.units])

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True)
    def predict(ids):
        return tf.matmul(features(ids, training=False), kernel) + bias

    return predict, head.units


class CalibratedScorer:
    """Any engine's logits as the bundle's calibrated (rows, classes) probabilities."""

    def __init__(self, engine_scorer, calibration: Calibration):
        self.engine_scorer = engine_scorer
        self.calibration = calibration

    @property
    def engine(self) -> str:
        return self.engine_scorer.engine

    @property
    def reason(self) -> str:
        return self.engine_scorer.reason

    def logits(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return self.engine_scorer(rows)

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return self.calibration.probabilities(self.engine_scorer(rows))


@dataclass(frozen=True)
class ScorerSettings:
    engine: str = "auto"
    batch_size: int = 0
    """Rows per model call; 0 means the chosen engine's BEST_BATCH_SIZE."""
    threads: int = 0
    """Concurrent compiled calls; 0 means one per core available to this process."""

    def batch_size_for(self, engine: str) -> int:
        return self.batch_size or BEST_BATCH_SIZE[engine]


def make_scorer(model, width: int, settings: ScorerSettings, calibration: Calibration = UNCALIBRATED):
    """The fastest engine that reproduces `model`'s scores, calibrated; 'xla' raises if it cannot,
    'auto' falls back to Keras."""
    return CalibratedScorer(_make_engine(model, width, settings), calibration)


def _make_engine(model, width: int, settings: ScorerSettings):
    from pipeline.recurrent_graph import UnsupportedModel, compile_plan, plan_model

    if settings.engine not in ENGINES:
        raise ValueError(f"unknown engine {settings.engine!r}; choose one of: {', '.join(ENGINES)}")
    if settings.engine == "keras":
        return KerasScorer(model, settings.batch_size_for("keras"), "asked for")
    threads = settings.threads or available_cores()
    try:
        plan = plan_model(model)
        scorer = CompiledScorer(compile_plan(plan, width), width, plan.outputs, settings.batch_size_for("xla"), threads)
        check_against_keras(scorer, model, vocabulary=plan.directions[0].table.shape[0])
    except UnsupportedModel as e:
        if settings.engine == "xla":
            raise
        log.info("scoring with Keras: %s", e)
        return KerasScorer(model, settings.batch_size_for("keras"), str(e))
    return scorer


def check_against_keras(scorer: CompiledScorer, model, vocabulary: int, seed: int = 0) -> None:
    """Score a probe batch both ways; a disagreement means the compiled graph is not this model.

    The probe has the scorer's own batch size, so the compilation it triggers is the one the
    job uses next. Its reviews are 1 to 12 tokens long: Keras runs the probe eagerly, at about
    12 ms per time step on the build machine, and a dozen steps exercise masking, both directions
    and the readout as well as a hundred would.
    """
    from pipeline.recurrent_graph import UnsupportedModel

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, min(PROBE_LENGTH, scorer.width) + 1, size=scorer.batch_size)
    rows = [rng.integers(1, vocabulary, size=n, dtype=np.int32) for n in lengths]
    expected = class_probabilities(np.asarray(model(pad_rows(rows), training=False)))
    difference = float(np.max(np.abs(UNCALIBRATED.probabilities(scorer(rows)) - expected)))
    if not difference <= PROBE_TOLERANCE:
        raise UnsupportedModel(f"compiled graph differs from Keras by {difference:.1e} on the probe batch")
