"""Mask-aware Keras layers that the stock layers lack, so padding never changes a prediction.

Keras 3's GlobalMaxPooling1D, Conv1D and MaxPooling1D ignore the padding mask: a padded position
would take part in the max, the convolution or the pooled window, and a review's score would depend
on how much it was padded. These versions honour the mask. They are registered as serializable
when `pipeline` is imported, so `keras.saving.load_model(..., safe_mode=True)` can rebuild a model
that uses them without any custom_objects argument.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "reviewscore"
BELOW_ANY_VALUE = -3.0e38
"""Stands in for a padded value before a max, or for "no step seen yet" before a running max (the
xla engine and the ONNX export): below any float32 activation, still finite."""


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Max over the unmasked time steps; a review with no unmasked step pools to zeros."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
        pooled = ops.max(ops.where(valid, inputs, BELOW_ANY_VALUE), axis=1)
        any_valid = ops.any(valid, axis=1)
        return ops.where(any_valid, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedConv1D(keras.layers.Conv1D):
    """Conv1D ('same' padding, stride 1) that sees padded positions as zeros and outputs zeros there.

    Zeroing the inputs makes a window that overlaps the padding see exactly what it would see at the
    end of an unpadded sequence (Conv1D's own 'same' padding is zeros too); zeroing the outputs keeps
    padded positions out of whatever follows. The mask passes through unchanged.
    """

    def __init__(self, *args, **kwargs):
        kwargs["padding"] = "same"
        kwargs["strides"] = 1
        super().__init__(*args, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        valid = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        outputs = super().call(inputs * valid)
        return outputs * ops.cast(valid, outputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return mask


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMaxPooling1D(keras.layers.MaxPooling1D):
    """MaxPooling1D over unmasked steps only, with the mask pooled alongside.

    Uses 'same' padding so the last, partly filled window of an unpadded review is kept; a window is
    valid when any of its steps is.
    """

    def __init__(self, pool_size=2, **kwargs):
        kwargs["padding"] = "same"
        kwargs.setdefault("strides", pool_size)
        super().__init__(pool_size=pool_size, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
        pooled = super().call(ops.where(valid, inputs, BELOW_ANY_VALUE))
        pooled_valid = ops.expand_dims(self.compute_mask(inputs, mask), -1)
        return ops.where(pooled_valid, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        as_float = ops.expand_dims(ops.cast(mask, "float32"), -1)
        pooled = keras.layers.MaxPooling1D.call(self, as_float)
        return ops.squeeze(pooled, -1) > 0.5


def output_head(model):
    """The model's last layer, if it is one whose logits the engines know how to take: Dense(1, sigmoid)
    for two classes or Dense(K, softmax) for K."""
    head = model.layers[-1]
    activation = getattr(head, "activation", None)
    if not isinstance(head, keras.layers.Dense) or not (
        (head.units == 1 and activation is keras.activations.sigmoid)
        or (head.units > 1 and activation is keras.activations.softmax)
    ):
        raise ValueError(
            f"model {model.name} must end in Dense(1, sigmoid) or Dense(K, softmax), not {type(head).__name__}"
        )
    return head


@keras.saving.register_keras_serializable(package=PACKAGE)
class HashedNgramLogits(keras.layers.Layer):
    """The wide part of a wide-and-deep model: from token ids, the sum of one table row per distinct
    hashed n-gram (`pipeline.model.wide` defines the rows and is the reference this layer matches),
    (batch, outputs). It reads the ids, not the embedding, so it needs no mask: padding is id 0."""

    def __init__(self, vocabulary: int, buckets: int, max_n: int, outputs: int, **kwargs):
        super().__init__(**kwargs)
        from pipeline.model.wide import HashedNgrams

        self.ngrams = HashedNgrams(vocabulary, buckets, max_n)
        self.outputs = outputs
        self.table = self.add_weight(
            shape=(self.ngrams.rows, outputs), initializer="zeros", name="table", trainable=self.trainable
        )

    def call(self, ids):
        return hashed_ngram_sums(self.table, self.ngrams, ids)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.ngrams.vocabulary,
            "buckets": self.ngrams.buckets,
            "max_n": self.ngrams.max_n,
            "outputs": self.outputs,
        }


def hashed_ngram_sums(table, ngrams, ids):
    """(batch, outputs) sums of `table`'s rows of each review's distinct hashed n-grams, in keras.ops:
    the Keras layer's computation, which the xla engine compiles too (`pipeline.model.wide` is the
    reference both are held to)."""
    from pipeline.model.wide import TRIGRAM_OFFSET

    ids = ops.cast(ids, "int64")
    v, buckets = ngrams.vocabulary, ngrams.buckets
    rows, present = [ids], [ids > 0]
    if ngrams.max_n >= 2:
        a, b = ids[:, :-1], ids[:, 1:]
        rows.append(v + ops.mod(a * v + b, buckets))
        present.append(ops.logical_and(a > 0, b > 0))
    if ngrams.max_n >= 3:
        a, b, c = ids[:, :-2], ids[:, 1:-1], ids[:, 2:]
        rows.append(v + ops.mod(a * (v * v) + b * v + c + TRIGRAM_OFFSET, buckets))
        present.append(ops.logical_and(ops.logical_and(a > 0, b > 0), c > 0))
    index = ops.concatenate(rows, axis=1)
    ordered = ops.sort(ops.where(ops.concatenate(present, axis=1), index, ops.zeros_like(index)), axis=1)
    repeated = ops.concatenate([ops.zeros_like(ordered[:, :1], dtype="bool"), ordered[:, 1:] == ordered[:, :-1]], 1)
    counted = ops.logical_and(ops.logical_not(repeated), ordered > 0)
    values = ops.take(table, ordered, axis=0)
    return ops.sum(values * ops.expand_dims(ops.cast(counted, values.dtype), -1), axis=1)
