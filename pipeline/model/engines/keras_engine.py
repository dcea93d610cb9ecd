"""Engine 'keras': the bundle's Keras model itself, for any architecture (needs TensorFlow).

The model runs in a shape-polymorphic `tf.function` on length-sorted slices padded to their own
longest review, traced once instead of once per shape. It serves the architectures the other
engines do not reproduce (the Conv1D front, for one) and is the reference they are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.model.engines.base import TENSORFLOW, ScorerSettings
from pipeline.model.engines.length_order import score_in_length_order

if TYPE_CHECKING:
    import numpy as np

    from pipeline.model.bundle import Bundle


class KerasEngine:
    name = "keras"
    title = "Keras"
    description = "the Keras model itself, any architecture"
    module = TENSORFLOW
    bundle_file = None
    best_batch_size = 64
    gradients = True
    auto_from_reviews = None
    fallback = None

    def load(self, bundle: Bundle, settings: ScorerSettings) -> KerasScorer:
        return self.from_model(bundle.load_model(), bundle.preprocessing.max_length, settings)

    def from_model(self, model, width: int, settings: ScorerSettings) -> KerasScorer:
        return KerasScorer(model, settings.batch_size_for(self), settings.reason)


class KerasScorer:
    engine = KerasEngine.name

    def __init__(self, model, batch_size: int, reason: str = ""):
        self.predict, self.outputs = compile_keras(model)
        self.batch_size = batch_size
        self.reason = reason

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        import numpy as np

        from pipeline.model.preprocessing import pad_rows  # here: the registry imports this module for --help

        return score_in_length_order(
            rows,
            self.batch_size,
            self.outputs,
            lambda members: np.asarray(self.predict(pad_rows([rows[i] for i in members]))),
        )


def compile_keras(model):
    """(predict, outputs): logits as a tf.function over any batch size and length, traced once
    instead of once per shape, and the number of logit columns.

    The logits are the final Dense layer's input times its kernel plus bias: the model up to that
    layer, then the layer's own weights without its sigmoid or softmax.
    """
    import keras
    import tensorflow as tf

    from pipeline.model.layers import output_head

    head = output_head(model)
    features = keras.Model(model.inputs, head.input)
    kernel = head.kernel
    bias = head.bias if head.use_bias else tf.zeros([head.units])

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True)
    def predict(ids):
        return tf.matmul(features(ids, training=False), kernel) + bias

    return predict, head.units
