"""Length-bucketed training batches: reviews of similar length share a batch, padded only to its longest.

IMDB reviews run from ten to over two thousand tokens; padding every batch to the maximum would
make the LSTM spend most of its steps on padding. Each epoch shuffles the reviews, sorts them by
length within large pools, cuts the pools into batches and shuffles the batches, so batches stay
random in content and order while their lengths stay tight.

Batches reach Keras as a tf.data pipeline with an explicit (None, None) signature: Keras's own
PyDataset adapter infers the shape from the first batches it peeks at and, when those happen to
share a width, rejects every later batch of another width.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipeline.model.preprocessing import EncodedBatch, pad_rows

POOL_BATCHES = 50


class LengthBucketedBatches:
    def __init__(self, encoded: EncodedBatch, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        self.rows = encoded.rows()
        self.lengths = encoded.lengths
        self.labels = np.asarray(labels, dtype=np.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.batches = self._plan()

    def _plan(self) -> list[np.ndarray]:
        n = len(self.rows)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(n)
        pool = self.batch_size * POOL_BATCHES
        batches = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        members = self.batches[index]
        return pad_rows([self.rows[i] for i in members]), self.labels[members]

    def __iter__(self):
        """One epoch of (ids, labels) batches; each new pass over a shuffled set is a new epoch."""
        if self.shuffle:
            self.batches = self._plan()
            self.epoch += 1
        return (self[i] for i in range(len(self)))

    def dataset(self) -> tf.data.Dataset:
        targets = (None, *self.labels.shape[1:])  # class indices or probabilities, one row or one vector each
        signature = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec(targets, tf.float32))
        dataset = tf.data.Dataset.from_generator(lambda: iter(self), output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)

    def order(self) -> np.ndarray:
        """Row indices in the order batches yield them (to align predictions with labels)."""
        return np.concatenate(self.batches) if self.batches else np.zeros(0, dtype=np.int64)
