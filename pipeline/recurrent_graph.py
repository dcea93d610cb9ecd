"""An exact, XLA-compiled inference graph for the recurrent classifiers this project trains.

Why it exists: on CPU, Keras runs an LSTM as a TensorFlow loop of a dozen small kernels per time
step, and per-kernel overhead, not arithmetic, bounds it (BENCHMARKS.md: 15 % of peak). XLA compiles
the whole loop into one native function, but only for static shapes, and recompiling for every
batch shape costs more than it saves. So this graph takes ids at one static width (the bundle's
maximum length) and the number of steps to run as a *value*: the loop stops at the longest review
of the batch, and one compilation serves every batch of the same row count.

The arithmetic is Keras' own, rearranged where that is exact at inference time:
- the embedding and each direction's input projection fold into one lookup table,
  `table[id] = embedding[id] @ kernel + bias`, so only the recurrent product runs per step;
- the backward direction reads each review reversed within its own length, so padding always
  comes after the real tokens and the loop needs no masking, only the readout does;
- dropout is the identity at inference.

`plan_model` accepts exactly the layer sequences it knows (Embedding with mask_zero, Dropout,
LSTM or Bidirectional(LSTM) with Keras' default activations, then either the last state or masked
max and mean pooling, then Dense(1, sigmoid) or Dense(K, softmax)) and refuses anything else with the reason, so the
caller falls back to Keras. The caller also checks the compiled graph against Keras on a probe
batch before using it (`pipeline/scorer.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Stands in for "no step seen yet" before a running max: below any float32 activation.
_BELOW_ANY_VALUE = -3.0e38


class UnsupportedModel(ValueError):
    """The model's layers are not a sequence this graph reproduces exactly."""


@dataclass(frozen=True)
class Direction:
    table: np.ndarray
    """(vocabulary, 4 * units): embedding @ kernel + bias, Keras' gate order i, f, c, o."""
    recurrent_kernel: np.ndarray
    """(units, 4 * units)."""
    backward: bool


@dataclass(frozen=True)
class RecurrentPlan:
    directions: tuple[Direction, ...]
    readout: str
    """'last': each direction's state at its last real token; 'pool': [max..., mean...] over real tokens."""
    dense_kernel: np.ndarray
    dense_bias: np.ndarray

    @property
    def units(self) -> int:
        return self.directions[0].recurrent_kernel.shape[0]

    @property
    def outputs(self) -> int:
        """Logit columns: 1 for a sigmoid head, K for a softmax head over K classes."""
        return self.dense_kernel.shape[1]


def plan_model(model) -> RecurrentPlan:
    """Read a supported Keras model's weights into a RecurrentPlan, or raise UnsupportedModel."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer | keras.layers.Dropout)]
    kinds = [type(layer).__name__ for layer in layers]
    if len(layers) < 3 or not isinstance(layers[0], keras.layers.Embedding) or not layers[0].mask_zero:
        raise UnsupportedModel(f"expected an Embedding with mask_zero first, found {kinds}")
    embedding = _numpy(layers[0].embeddings)
    recurrent, rest = layers[1], layers[2:]

    if isinstance(recurrent, keras.layers.Bidirectional):
        if recurrent.merge_mode != "concat":
            raise UnsupportedModel(f"Bidirectional merge_mode {recurrent.merge_mode!r} (only 'concat')")
        cells = [recurrent.forward_layer, recurrent.backward_layer]
    else:
        cells = [recurrent]
    for layer in cells:
        _check_lstm(layer)
    directions = tuple(
        Direction(*_folded_weights(layer, embedding), backward=bool(layer.go_backwards)) for layer in cells
    )
    if [d.backward for d in directions] not in ([False], [False, True]):
        raise UnsupportedModel("expected a forward LSTM, or a forward and a backward one")

    from pipeline.layers import MaskedGlobalMaxPooling1D

    returns_sequences = cells[0].return_sequences
    pooling = [type(layer) for layer in rest[:-1]]
    if returns_sequences and pooling == [
        MaskedGlobalMaxPooling1D,
        keras.layers.GlobalAveragePooling1D,
        keras.layers.Concatenate,
    ]:
        if _concatenated(rest[2]) != [rest[0], rest[1]]:
            raise UnsupportedModel("pooled features are not concatenated as [max, mean]")
        readout = "pool"
    elif not returns_sequences and not pooling:
        readout = "last"
    else:
        raise UnsupportedModel(f"unsupported layers after the LSTM: {kinds[2:]}")

    from pipeline.layers import output_head

    try:
        dense = output_head(model)
    except ValueError as e:
        raise UnsupportedModel(str(e)) from None
    if dense is not rest[-1]:
        raise UnsupportedModel(f"unsupported layers after the LSTM: {kinds[2:]}")
    bias = _numpy(dense.bias) if dense.use_bias else np.zeros(dense.units, np.float32)
    return RecurrentPlan(directions, readout, _numpy(dense.kernel), bias)


def compile_plan(plan: RecurrentPlan, width: int):
    """An XLA-compiled `predict(ids, steps)`: ids int32 (batch, width) right-padded with 0, steps the
    longest review's length; returns float32 (batch, outputs) logits (the final Dense before its
    sigmoid or softmax)."""
    import tensorflow as tf

    units = plan.units
    tables = [tf.constant(d.table) for d in plan.directions]
    kernels = [tf.constant(d.recurrent_kernel) for d in plan.directions]
    dense_kernel, dense_bias = tf.constant(plan.dense_kernel), tf.constant(plan.dense_bias)
    pool = plan.readout == "pool"
    count = len(plan.directions)

    def lstm_step(ids_now, h, c, table, kernel):
        z = tf.gather(table, ids_now) + tf.matmul(h, kernel)
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    @tf.function(
        input_signature=[tf.TensorSpec([None, width], tf.int32), tf.TensorSpec([], tf.int32)],
        jit_compile=True,
    )
    def predict(ids, steps):
        rows = tf.shape(ids)[0]
        lengths = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)
        readers = [tf.transpose(ids)]  # time-major (width, batch)
        if count == 2:
            readers.append(tf.transpose(tf.reverse_sequence(ids, lengths, seq_axis=1, batch_axis=0)))
        valid = tf.transpose(tf.sequence_mask(lengths, width))[:, :, None]  # (width, batch, 1)
        zeros = tf.zeros([rows, units])
        lowest = tf.fill([rows, units], _BELOW_ANY_VALUE)
        # per direction: h, c, and the readout's running state (max and sum, or nothing)
        state = [zeros, zeros] * count + ([lowest, zeros] * count if pool else [])

        def step(t, *state):
            state = list(state)
            real = valid[t]
            for d in range(count):
                h, c = lstm_step(readers[d][t], state[2 * d], state[2 * d + 1], tables[d], kernels[d])
                if pool:
                    top, total = state[2 * count + 2 * d], state[2 * count + 2 * d + 1]
                    state[2 * count + 2 * d] = tf.where(real, tf.maximum(top, h), top)
                    state[2 * count + 2 * d + 1] = total + tf.where(real, h, 0.0)
                    state[2 * d], state[2 * d + 1] = h, c
                else:  # keep the state of the last real token
                    state[2 * d] = tf.where(real, h, state[2 * d])
                    state[2 * d + 1] = tf.where(real, c, state[2 * d + 1])
            return (t + 1, *state)

        final = tf.while_loop(lambda t, *_: t < steps, step, (tf.constant(0), *state))[1:]
        if pool:
            seen = (lengths > 0)[:, None]
            tops = [tf.where(seen, final[2 * count + 2 * d], 0.0) for d in range(count)]
            real_steps = tf.cast(tf.maximum(lengths, 1), tf.float32)[:, None]
            means = [final[2 * count + 2 * d + 1] / real_steps for d in range(count)]
            features = tf.concat(tops + means, axis=1)
        else:
            features = tf.concat([final[2 * d] for d in range(count)], axis=1)
        return tf.matmul(features, dense_kernel) + dense_bias

    return predict


def _check_lstm(layer) -> None:
    import keras

    if not isinstance(layer, keras.layers.LSTM):
        raise UnsupportedModel(f"expected LSTM, found {type(layer).__name__}")
    cell = layer.cell
    if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
        raise UnsupportedModel("LSTM activations other than tanh and sigmoid")
    if layer.stateful or layer.unroll:
        raise UnsupportedModel("stateful or unrolled LSTM")


def _folded_weights(layer, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cell = layer.cell
    kernel = _numpy(cell.kernel)
    bias = _numpy(cell.bias) if cell.use_bias else np.zeros(kernel.shape[1], np.float32)
    if kernel.shape[0] != embedding.shape[1]:
        raise UnsupportedModel("the LSTM does not read the embedding directly")
    return (embedding @ kernel + bias).astype(np.float32), _numpy(cell.recurrent_kernel)


def _concatenated(layer) -> list[Any]:
    """The layers whose outputs `layer` concatenates, in order (Keras keeps no public accessor)."""
    try:
        return [tensor._keras_history.operation for tensor in layer._inbound_nodes[0].input_tensors]
    except (AttributeError, IndexError) as e:
        raise UnsupportedModel(f"cannot read the inputs of {layer.name}: {e}") from None


def _numpy(variable) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)
