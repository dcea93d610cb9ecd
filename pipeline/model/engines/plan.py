"""A trained recurrent classifier as plain arrays: what the XLA and ONNX engines are built from.

`plan_model` reads a Keras model's weights into a RecurrentPlan, accepting exactly the layer
sequences this project trains and the engines reproduce (Embedding with mask_zero, Dropout, LSTM
or Bidirectional(LSTM) with Keras' default activations, then either the last state or masked max
and mean pooling, optionally beside a wide part over hashed n-grams of the ids, then Dense(1, sigmoid)
or Dense(K, softmax)), and refusing anything else with the
reason, so the caller can fall back to Keras. Dropout is the identity at inference. Reading the
model in one place means the two engines cannot disagree about what the model is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from pipeline.model.wide import WidePart


class UnsupportedModel(ValueError):
    """The model's layers are not a sequence this graph reproduces exactly."""


@dataclass(frozen=True)
class Direction:
    """One LSTM direction's weights, in Keras' layout and gate order (i, f, c, o)."""

    kernel: np.ndarray
    """(embedding_dim, 4 * units)."""
    recurrent_kernel: np.ndarray
    """(units, 4 * units)."""
    bias: np.ndarray
    """(4 * units,)."""
    backward: bool


@dataclass(frozen=True)
class RecurrentPlan:
    embedding: np.ndarray
    """(vocabulary, embedding_dim); row 0 is padding, never read by a masked model."""
    directions: tuple[Direction, ...]
    readout: str
    """'last': each direction's state at its last real token; 'pool': [max..., mean...] over real tokens."""
    dense_kernel: np.ndarray
    """(deep features, outputs): the classifier's rows for the deep features only."""
    dense_bias: np.ndarray
    wide: WidePart | None = None
    """A wide-and-deep model's wide part, with the classifier's rows for it: its logits add to the
    deep part's."""

    @property
    def units(self) -> int:
        return self.directions[0].recurrent_kernel.shape[0]

    @property
    def vocabulary(self) -> int:
        return self.embedding.shape[0]

    @property
    def outputs(self) -> int:
        """Logit columns: 1 for a sigmoid head, K for a softmax head over K classes."""
        return self.dense_kernel.shape[1]


def plan_model(model) -> RecurrentPlan:
    """Read a supported Keras model's weights into a RecurrentPlan, or raise UnsupportedModel."""
    import keras
    import numpy as np

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer | keras.layers.Dropout)]
    layers, wide = _without_wide_part(model, layers)
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
    directions = tuple(_direction(layer, embedding) for layer in cells)
    if [d.backward for d in directions] not in ([False], [False, True]):
        raise UnsupportedModel("expected a forward LSTM, or a forward and a backward one")

    from pipeline.model.layers import MaskedGlobalMaxPooling1D

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

    from pipeline.model.layers import output_head

    try:
        dense = output_head(model)
    except ValueError as e:
        raise UnsupportedModel(str(e)) from None
    if dense is not rest[-1]:
        raise UnsupportedModel(f"unsupported layers after the LSTM: {kinds[2:]}")
    bias = _numpy(dense.bias) if dense.use_bias else np.zeros(dense.units, np.float32)
    kernel = _numpy(dense.kernel)
    if wide is not None:
        from pipeline.model.wide import WidePart

        outputs = dense.units
        wide = WidePart(wide.ngrams, _numpy(wide.table), np.ascontiguousarray(kernel[-outputs:]))
        kernel = np.ascontiguousarray(kernel[:-outputs])
    return RecurrentPlan(embedding, directions, readout, kernel, bias, wide)


def _without_wide_part(model, layers: list) -> tuple[list, Any]:
    """(the layers without a wide part and the concatenation that joins it to the deep features,
    the wide layer or None). The join must be the classifier's input, [deep features, wide logits]."""
    from pipeline.model.layers import HashedNgramLogits

    wides = [layer for layer in layers if isinstance(layer, HashedNgramLogits)]
    if not wides:
        return layers, None
    if len(wides) > 1:
        raise UnsupportedModel(f"expected one wide part, found {len(wides)}")
    wide = wides[0]
    if wide.input is not model.inputs[0]:
        raise UnsupportedModel("the wide part does not read the token ids")
    head = layers[-1]
    join = head.input._keras_history.operation
    if _concatenated(join)[-1] is not wide or len(_concatenated(join)) != 2:
        raise UnsupportedModel("the wide part's logits are not the classifier's last inputs")
    return [layer for layer in layers if layer is not wide and layer is not join], wide


def _check_lstm(layer) -> None:
    import keras

    if not isinstance(layer, keras.layers.LSTM):
        raise UnsupportedModel(f"expected LSTM, found {type(layer).__name__}")
    cell = layer.cell
    if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
        raise UnsupportedModel("LSTM activations other than tanh and sigmoid")
    if layer.stateful or layer.unroll:
        raise UnsupportedModel("stateful or unrolled LSTM")


def _direction(layer, embedding: np.ndarray) -> Direction:
    import numpy as np

    cell = layer.cell
    kernel = _numpy(cell.kernel)
    bias = _numpy(cell.bias) if cell.use_bias else np.zeros(kernel.shape[1], np.float32)
    if kernel.shape[0] != embedding.shape[1]:
        raise UnsupportedModel("the LSTM does not read the embedding directly")
    return Direction(kernel, _numpy(cell.recurrent_kernel), bias, backward=bool(layer.go_backwards))


def _concatenated(layer) -> list[Any]:
    """The layers whose outputs `layer` concatenates, in order (Keras keeps no public accessor)."""
    try:
        return [tensor._keras_history.operation for tensor in layer._inbound_nodes[0].input_tensors]
    except (AttributeError, IndexError) as e:
        raise UnsupportedModel(f"cannot read the inputs of {layer.name}: {e}") from None


def _numpy(variable) -> np.ndarray:
    import keras
    import numpy as np

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def difference_to_keras(scorer, model, vocabulary: int, rows: int, longest: int, seed: int = 0) -> float:
    """Largest |probability difference| between an engine and the Keras model it was built from,
    on a seeded probe batch of `rows` reviews of 1 to `longest` random known-word ids: how both the
    compiled graph and the ONNX export prove they are the model."""
    import numpy as np

    from pipeline.model.calibration import UNCALIBRATED, class_probabilities
    from pipeline.model.preprocessing import pad_rows

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest + 1, size=rows)
    probe = [rng.integers(1, vocabulary, size=n, dtype=np.int32) for n in lengths]
    expected = class_probabilities(np.asarray(model(pad_rows(probe), training=False)))
    return float(np.max(np.abs(UNCALIBRATED.probabilities(scorer(probe)) - expected)))
