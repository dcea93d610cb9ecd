"""Prototype lever (not used by the pipeline yet): a fused inference graph for the bilstm-pool model.

    .venv/bin/python benchmarks/fused_bilstm.py --reviews 5000

Two rewrites of the same arithmetic, both exact at inference time:
- the embedding and each direction's input projection fold into one lookup table,
  table[id] = embedding[id] @ kernel + bias, so no input matrix product runs per step;
- both directions advance in one loop, one batched matrix product per step; the backward
  direction reads each review reversed within its own length, so padding always comes last and
  the outputs at real tokens need no masking inside the loop (pooling masks them).
Prints reviews/s for Keras (the pipeline's compiled function) and for this graph, and the largest
score difference between them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf
import typer

import pipeline  # noqa: F401
from pipeline.bundle import Bundle
from pipeline.model_handler import compile_predict, score_rows


def fused_predict(model):
    import keras

    def weight(variable):
        return tf.constant(keras.ops.convert_to_numpy(variable))

    embedding = weight(model.get_layer("embedding").embeddings)
    bidirectional = next(layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional))
    dense_layer = model.layers[-1]
    dense_kernel, dense_bias = weight(dense_layer.kernel), weight(dense_layer.bias)
    cells = (bidirectional.forward_layer.cell, bidirectional.backward_layer.cell)
    units = cells[0].units
    tables = tf.stack([tf.matmul(embedding, weight(c.kernel)) + weight(c.bias) for c in cells])  # [2, V, 4u]
    recurrent = tf.stack([weight(c.recurrent_kernel) for c in cells])  # [2, u, 4u]

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def predict(ids):
        batch, steps = tf.shape(ids)[0], tf.shape(ids)[1]
        lengths = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)
        backward_ids = tf.reverse_sequence(ids, lengths, seq_axis=1, batch_axis=0)
        both = tf.stack([ids, backward_ids])  # [2, B, T]
        projected = tf.stack([tf.gather(tables[0], both[0]), tf.gather(tables[1], both[1])])  # [2, B, T, 4u]
        projected = tf.transpose(projected, [2, 0, 1, 3])  # [T, 2, B, 4u]
        zeros = tf.zeros([2, batch, units])
        outputs = tf.TensorArray(tf.float32, size=steps)

        def step(t, h, c, outputs):
            z = projected[t] + tf.matmul(h, recurrent)
            i, f, g, o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            return t + 1, h, c, outputs.write(t, h)

        _, _, _, outputs = tf.while_loop(lambda t, *_: t < steps, step, (0, zeros, zeros, outputs))
        h = tf.transpose(outputs.stack(), [1, 2, 0, 3])  # [2, B, T, u]
        forward = h[0]
        backward = tf.reverse_sequence(h[1], lengths, seq_axis=1, batch_axis=0)
        sequence = tf.concat([forward, backward], axis=-1)  # [B, T, 2u]
        valid = tf.sequence_mask(lengths, steps)[:, :, None]
        maximum = tf.reduce_max(tf.where(valid, sequence, -3.0e38), axis=1)
        mean = tf.reduce_sum(tf.where(valid, sequence, 0.0), axis=1) / tf.cast(lengths, tf.float32)[:, None]
        pooled = tf.concat([maximum, mean], axis=-1)
        return tf.sigmoid(tf.matmul(pooled, dense_kernel) + dense_bias)[:, 0]

    return predict


def main(
    data: Annotated[Path, typer.Option()] = Path("../shared/data/imdb/unsup.parquet"),
    bundle_path: Annotated[Path, typer.Option("--bundle")] = Path("models/imdb-bilstm"),
    reviews: Annotated[int, typer.Option()] = 5000,
    batch: Annotated[int, typer.Option()] = 64,
) -> None:
    bundle = Bundle.open(bundle_path)
    model = bundle.load_model()
    texts = pq.read_table(data, columns=["text"]).column("text").slice(0, reviews)
    rows = [r for r in bundle.encoder.encode(texts).rows() if len(r)]
    variants = {"keras (pipeline today)": compile_predict(model), "fused": fused_predict(model)}
    scores = {}
    for name, predict in variants.items():
        score_rows(rows[:200], predict, batch)  # warm-up: tracing
        started = time.perf_counter()
        scores[name] = score_rows(rows, predict, batch)
        seconds = time.perf_counter() - started
        print(f"{name:24s} {len(rows) / seconds:8.0f} reviews/s ({seconds:.1f} s, batch {batch})")
    first, second = scores.values()
    print(f"max |score difference|: {np.abs(first - second).max():.2e}")


if __name__ == "__main__":
    typer.run(main)
