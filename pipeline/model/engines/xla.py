"""Engine 'xla': the model rebuilt as one exact, XLA-compiled loop (needs TensorFlow).

Why it exists: on CPU, Keras runs an LSTM as a TensorFlow loop of a dozen small kernels per time
step, and per-kernel overhead, not arithmetic, bounds it (BENCHMARKS.md#engines-alone). XLA compiles
the whole loop into one native function, but only for static shapes, and recompiling for every batch
shape costs more than it saves. So this graph takes ids at one static width (the bundle's maximum
length) and the number of steps to run as a *value*: the loop stops at the longest review of the
batch, and one compilation serves every batch of the same row count. XLA's compiled loop runs on one
core, so threads, not TensorFlow's intra-op pool, fill the machine.

The arithmetic is Keras' own, rearranged where that is exact at inference time:
- the embedding and each direction's input projection fold into one lookup table,
  `table[id] = embedding[id] @ kernel + bias`, so only the recurrent product runs per step;
- the backward direction reads each review reversed within its own length, so padding always
  comes after the real tokens and the loop needs no masking, only the readout does.

The scorer checks the compiled graph against Keras on a probe batch before it is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pipeline.model.engines.base import TENSORFLOW, ScorerSettings
from pipeline.model.engines.length_order import available_cores, score_in_length_order
from pipeline.model.engines.plan import Direction, RecurrentPlan, UnsupportedModel, difference_to_keras, plan_model

if TYPE_CHECKING:
    import numpy as np

    from pipeline.model.bundle import Bundle

# Largest |probability difference| to Keras allowed on the probe batch before the compiled graph is used.
PROBE_TOLERANCE = 1e-5
PROBE_LENGTH = 12
# From this many reviews per job, 'auto' pays TensorFlow's import and XLA's compile for the faster
# engine (break-even measured by `make bench`, BENCHMARKS.md#engine-choice).
XLA_FROM_REVIEWS = 60_000


class XlaEngine:
    name = "xla"
    title = "XLA"
    description = "compiled, fastest per review"
    module = TENSORFLOW
    bundle_file = None
    best_batch_size = 256
    gradients = True
    auto_from_reviews = XLA_FROM_REVIEWS
    fallback = "keras"

    def load(self, bundle: Bundle, settings: ScorerSettings) -> CompiledScorer:
        return self.from_model(bundle.load_model(), bundle.preprocessing.max_length, settings)

    def from_model(self, model, width: int, settings: ScorerSettings) -> CompiledScorer:
        """Raises UnsupportedModel if the compiled graph cannot reproduce `model`."""
        threads = settings.threads or available_cores()
        scorer = compiled_scorer(model, plan_model(model), width, settings.batch_size_for(self), threads)
        scorer.reason = settings.reason
        return scorer


class CompiledScorer:
    engine = XlaEngine.name
    reason = ""

    def __init__(
        self, predict, width: int, outputs: int, batch_size: int, threads: int, plan: RecurrentPlan | None = None
    ):
        self.predict = predict
        self.width = width
        self.outputs = outputs
        self.batch_size = batch_size
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="score") if threads > 1 else None
        self.plan = plan
        """The plan `predict` was compiled from, which `recurrence` compiles too."""
        self._recurrence: CompiledRecurrence | None = None

    def recurrence(self) -> CompiledRecurrence | None:
        """The plan's recurrence with its states open, for exact occlusion (compiled on first use)."""
        if self._recurrence is None and self.plan is not None:
            self._recurrence = CompiledRecurrence(self.plan, self.width, self.batch_size, self.pool)
        return self._recurrence

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        run = self.pool.map if self.pool else map
        return score_in_length_order(
            rows, self.batch_size, self.outputs, lambda members: self._score_slice(rows, members), run
        )

    def _score_slice(self, rows: Sequence[np.ndarray], members: np.ndarray) -> np.ndarray:
        """One compiled call, on ids padded to the full width and the full batch size.

        One shape means one XLA compilation per process; a short last slice padded with empty rows
        costs at most one batch's worth of steps (BENCHMARKS.md#model-load).
        """
        import numpy as np

        from pipeline.model.preprocessing import pad_rows  # here: the registry imports this module for --help

        count = len(members)
        ids = np.zeros((self.batch_size, self.width), dtype=np.int32)
        ids[:count] = pad_rows([rows[i] for i in members], self.width)
        longest = max(len(rows[i]) for i in members)
        return np.asarray(self.predict(ids, np.int32(longest)))[:count]


def compiled_scorer(model, plan: RecurrentPlan, width: int, batch_size: int, threads: int) -> CompiledScorer:
    """The plan compiled and checked against `model` (the Keras model it was read from)."""
    scorer = CompiledScorer(compile_plan(plan, width), width, plan.outputs, batch_size, threads, plan)
    check_against_keras(scorer, model, vocabulary=plan.vocabulary)
    return scorer


def folded_table(embedding: np.ndarray, direction: Direction) -> np.ndarray:
    """(vocabulary, 4 * units): embedding @ kernel + bias, the direction's input projection of every id."""
    import numpy as np

    return (embedding @ direction.kernel + direction.bias).astype(np.float32)


def compile_plan(plan: RecurrentPlan, width: int):
    """An XLA-compiled `predict(ids, steps)`: ids int32 (batch, width) right-padded with 0, steps the
    longest review's length; returns float32 (batch, outputs) logits (the final Dense before its
    sigmoid or softmax)."""
    import tensorflow as tf

    tables = [tf.constant(folded_table(plan.embedding, d)) for d in plan.directions]
    constants = plan_constants(plan)

    @tf.function(
        input_signature=[tf.TensorSpec([None, width], tf.int32), tf.TensorSpec([], tf.int32)],
        jit_compile=True,
    )
    def predict(ids, steps):
        lengths = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)
        readers = [tf.transpose(ids)]  # time-major (width, batch)
        if len(plan.directions) == 2:
            readers.append(tf.transpose(tf.reverse_sequence(ids, lengths, seq_axis=1, batch_axis=0)))
        logits = recurrent_logits(
            plan, lambda d, t: tf.gather(tables[d], readers[d][t]), lengths, width, steps, constants
        )
        return logits if plan.wide is None else logits + wide_logits(constants, plan, ids)

    return predict


def wide_logits(constants: dict, plan: RecurrentPlan, ids):
    """(rows, outputs) logits of the plan's wide part, in TensorFlow (the Keras layer's own operations)."""
    import tensorflow as tf

    from pipeline.model.layers import hashed_ngram_sums

    sums = hashed_ngram_sums(constants["wide_table"], plan.wide.ngrams, ids)  # float64: the ONNX export's sums
    return tf.matmul(tf.cast(sums, tf.float32), constants["wide_kernel"])


def plan_constants(plan: RecurrentPlan) -> dict:
    """The plan's recurrent and dense weights as TensorFlow constants, for recurrent_logits."""
    import tensorflow as tf

    constants = {
        "recurrent": [tf.constant(d.recurrent_kernel) for d in plan.directions],
        "dense_kernel": tf.constant(plan.dense_kernel),
        "dense_bias": tf.constant(plan.dense_bias),
    }
    if plan.wide is not None:
        constants["wide_table"] = tf.constant(plan.wide.table, tf.float64)
        constants["wide_kernel"] = tf.constant(plan.wide.kernel)
    return constants


def recurrent_logits(plan: RecurrentPlan, input_at, lengths, width: int, steps, constants: dict):
    """(rows, outputs) logits of the plan's LSTM(s), readout and Dense, in TensorFlow.

    `input_at(d, t)` is direction d's input projection at step t (rows, 4 * units): the backward
    direction reads each review reversed within its own length, so padding always comes after the
    real tokens and the loop needs no masking, only the readout does. The loop runs `steps` steps
    (the longest review), at most `width`. The scoring engine looks projections up in folded
    tables; integrated gradients (pipeline/model/explain) compute them from interpolated embeddings.
    """
    import tensorflow as tf

    from pipeline.model.layers import BELOW_ANY_VALUE

    units, count = plan.units, len(plan.directions)
    pool = plan.readout == "pool"
    carried = 4 if pool else 2
    rows = tf.shape(lengths)[0]
    valid = tf.transpose(tf.sequence_mask(lengths, width))[:, :, None]  # (width, batch, 1)
    zeros = tf.zeros([rows, units])
    lowest = tf.fill([rows, units], BELOW_ANY_VALUE)
    state = ([zeros, zeros, lowest, zeros] if pool else [zeros, zeros]) * count  # direction_step's, per direction

    def step(t, *state):
        state = list(state)
        for d in range(count):
            block = state[carried * d : carried * (d + 1)]
            z = input_at(d, t) + tf.matmul(block[0], constants["recurrent"][d])
            state[carried * d : carried * (d + 1)] = direction_step(z, block, valid[t], pool)[0]
        return (t + 1, *state)

    final = tf.while_loop(lambda t, *_: t < steps, step, (tf.constant(0), *state), maximum_iterations=width)[1:]
    if pool:
        seen = (lengths > 0)[:, None]
        tops = [tf.where(seen, final[carried * d + 2], 0.0) for d in range(count)]
        real_steps = tf.cast(tf.maximum(lengths, 1), tf.float32)[:, None]
        means = [final[carried * d + 3] / real_steps for d in range(count)]
        features = tf.concat(tops + means, axis=1)
    else:
        features = tf.concat([final[carried * d] for d in range(count)], axis=1)
    return tf.matmul(features, constants["dense_kernel"]) + constants["dense_bias"]


def direction_step(z, carried: list, real, pool: bool):
    """One LSTM step of one direction, in TensorFlow: from the gates' pre-activations `z` (Keras'
    order i, f, c, o) and the direction's carried state [h, c], and with a pooled readout the running
    [max, sum] after them, returns (the carried state after the step, the new h, the new c). Padding
    comes last, so pooled, h and c run on and only the max and sum skip padded steps (`real` false);
    else the state of the last real token is kept. Scoring and occlusion's recurrence share it."""
    import tensorflow as tf

    h, c = carried[0], carried[1]
    i, f, g, o = tf.split(z, 4, axis=1)
    c_new = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    h_new = tf.sigmoid(o) * tf.tanh(c_new)
    if pool:
        top, total = carried[2], carried[3]
        after = [h_new, c_new, tf.where(real, tf.maximum(top, h_new), top), total + tf.where(real, h_new, 0.0)]
    else:
        after = [tf.where(real, h_new, h), tf.where(real, c_new, c)]
    return after, h_new, c_new


class CompiledRecurrence:
    """pipeline/model/explain/occlusion.py's Recurrence on XLA: the contract of training/onnx_export.py's
    `occlusion_model` (the same inputs and outputs, by name), compiled at one static shape (the
    scorer's batch size and the bundle's width) per `states` flag, slices on the scorer's threads."""

    def __init__(self, plan: RecurrentPlan, width: int, batch_size: int, pool: ThreadPoolExecutor | None):
        self.plan = plan
        self.directions = len(plan.directions)
        self.pooled = plan.readout == "pool"
        self.wide = plan.wide is not None
        self.units = plan.units
        self.width = width
        self.batch_size = batch_size
        self.parallel_calls = 1  # a slice is padded to batch_size: cutting a small job saves nothing
        self.pool = pool
        self._compiled: dict[bool, tuple[list[str], object]] = {}

    def run(self, feeds: list[dict[str, np.ndarray]], states: bool) -> list[dict[str, np.ndarray]]:
        import numpy as np

        from pipeline.model.wide import WIDE_IDS

        if states not in self._compiled:
            self._compiled[states] = compile_recurrence(self.plan, self.width, states)
        names, function = self._compiled[states]

        def one(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            rows, time = feed["ids0"].shape
            args = []
            for name in names:
                value = feed[name]
                ids = name.startswith("ids") or name == WIDE_IDS
                full = np.zeros((self.batch_size, self.width if ids else value.shape[1]), value.dtype)
                full[:rows, : value.shape[1]] = value
                args.append(full)
            out = function(*args, np.int32(time))
            return {
                k: np.asarray(v)[:time, :rows] if k.endswith("_steps") else np.asarray(v)[:rows] for k, v in out.items()
            }

        return list((self.pool.map if self.pool else map)(one, feeds))


def compile_recurrence(plan: RecurrentPlan, width: int, states: bool):
    """(input names, an XLA-compiled function of those inputs and the steps to run) computing
    `occlusion_model`'s outputs: each row's job per direction from its own state, each direction's
    share of the logits, and with `states` the state after every step."""
    import tensorflow as tf

    from pipeline.model.wide import WIDE_IDS

    count, units, pool = len(plan.directions), plan.units, plan.readout == "pool"
    tables = [tf.constant(folded_table(plan.embedding, d)) for d in plan.directions]
    constants = plan_constants(plan)  # the recurrent kernels, the bias and any wide part, as scoring has them
    recurrent = constants["recurrent"]
    dense = [tf.constant(plan.dense_kernel[b * units : (b + 1) * units]) for b in range(2 * count if pool else count)]
    per = ("h", "c", "top", "total", "count") if pool else ("h", "c")
    names = [f"{n}{d}" for d in range(count) for n in ("ids", *per)] + ([WIDE_IDS] if plan.wide is not None else [])
    spec = {"ids": ([None, width], tf.int32), "count": ([None, 1], tf.float32), WIDE_IDS: ([None, width], tf.int32)}
    signature = [tf.TensorSpec(*spec.get(name, spec.get(name[:-1], ([None, units], tf.float32)))) for name in names]

    @tf.function(input_signature=[*signature, tf.TensorSpec([], tf.int32)], jit_compile=True)
    def run(*args):
        feed, steps = dict(zip(names, args[:-1], strict=True)), args[-1]
        readers = [tf.transpose(feed[f"ids{d}"]) for d in range(count)]  # time-major
        valid = [tf.transpose(feed[f"ids{d}"] > 0)[:, :, None] for d in range(count)]
        carried = 4 if pool else 2
        state = [feed[f"{n}{d}"] for d in range(count) for n in ("h", "c", *(("top", "total") if pool else ()))]
        seen = [tf.TensorArray(tf.float32, size=width, element_shape=[None, units]) for _ in range(2 * count)]

        def step(t, state, seen):
            state, seen = list(state), list(seen)
            for d in range(count):
                block = state[carried * d : carried * (d + 1)]
                z = tf.gather(tables[d], readers[d][t]) + tf.matmul(block[0], recurrent[d])
                state[carried * d : carried * (d + 1)], h_new, c_new = direction_step(z, block, valid[d][t], pool)
                if states:
                    seen[2 * d], seen[2 * d + 1] = seen[2 * d].write(t, h_new), seen[2 * d + 1].write(t, c_new)
            return t + 1, state, seen

        _, final, seen = tf.while_loop(
            lambda t, *_: t < steps, step, (tf.constant(0), state, seen), maximum_iterations=width
        )
        out = {}
        for d in range(count):
            if pool:
                mean = final[carried * d + 3] / feed[f"count{d}"]
                out[f"part{d}"] = tf.matmul(final[carried * d + 2], dense[d]) + tf.matmul(mean, dense[count + d])
            else:
                out[f"part{d}"] = tf.matmul(final[carried * d], dense[d])
            if states:
                out[f"h{d}_steps"], out[f"c{d}_steps"] = seen[2 * d].stack(), seen[2 * d + 1].stack()
        out["part0"] = out["part0"] + constants["dense_bias"]
        if plan.wide is not None:
            out["part0"] = out["part0"] + wide_logits(constants, plan, feed[WIDE_IDS])
        return out

    return names, run


def check_against_keras(scorer: CompiledScorer, model, vocabulary: int, seed: int = 0) -> None:
    """Score a probe batch both ways; a disagreement means the compiled graph is not this model.

    The probe has the scorer's own batch size, so the compilation it triggers is the one the
    job uses next. Its reviews are 1 to PROBE_LENGTH tokens long: Keras runs the probe eagerly, a
    time step at a time (BENCHMARKS.md#model-load), and a dozen steps exercise masking, both
    directions and the readout as well as a hundred would.
    """
    longest = min(PROBE_LENGTH, scorer.width)
    difference = difference_to_keras(scorer, model, vocabulary, scorer.batch_size, longest, seed)
    if not difference <= PROBE_TOLERANCE:
        raise UnsupportedModel(f"compiled graph differs from Keras by {difference:.1e} on the probe batch")
