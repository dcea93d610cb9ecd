"""Model architectures by name: the seed tutorials' four, and the stronger default.

Every model takes right-padded int32 id sequences of any length and masks id 0, so a batch can be
padded to its own longest review (length-bucketed batches) and padding never changes a score.
Each architecture also carries the preprocessing and training settings it was designed with, which
`reviewscore train` uses unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from pipeline.layers import MaskedConv1D, MaskedGlobalMaxPooling1D, MaskedMaxPooling1D


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    build_layers: Callable[[keras.KerasTensor], keras.KerasTensor]
    """From the embedded sequence (batch, time, dim), masked, to the positive-class probability."""
    embedding_dim: int
    vocab_size: int
    max_length: int = 500
    batch_size: int = 64
    learning_rate: float = 1e-3

    def build(
        self, input_dim: int, embedding_dim: int | None = None, embeddings=None, train_embedding: bool = True
    ) -> keras.Model:
        """An uncompiled model for a vocabulary of `input_dim` ids (reserved ids included), its
        embedding started from `embeddings` (input_dim, dim) when given, else at random, and kept
        as it is during training when `train_embedding` is false."""
        if embeddings is not None:
            embedding_dim = embeddings.shape[1]
        ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        embedding = layers.Embedding(
            input_dim, embedding_dim or self.embedding_dim, mask_zero=True, trainable=train_embedding, name="embedding"
        )
        model = keras.Model(ids, self.build_layers(embedding(ids)), name=self.name.replace("-", "_"))
        if embeddings is not None:  # set, not an initializer: a Constant would be saved into the config
            embedding.set_weights([embeddings])
        return model


def _lstm(x):
    x = layers.LSTM(100)(x)
    return layers.Dense(1, activation="sigmoid")(x)


def _lstm_dropout(x):
    x = layers.Dropout(0.2)(x)
    x = layers.LSTM(100)(x)
    x = layers.Dropout(0.2)(x)
    return layers.Dense(1, activation="sigmoid")(x)


def _lstm_recurrent_dropout(x):
    x = layers.LSTM(100, dropout=0.2, recurrent_dropout=0.2)(x)
    return layers.Dense(1, activation="sigmoid")(x)


def _cnn_lstm(x):
    x = MaskedConv1D(filters=32, kernel_size=3, activation="relu")(x)
    x = MaskedMaxPooling1D(pool_size=2)(x)
    x = layers.LSTM(100)(x)
    return layers.Dense(1, activation="sigmoid")(x)


def _bilstm_pool(x):
    """A bidirectional LSTM read of the whole review, summarised by masked max and mean pooling.

    The last LSTM state of a 500-token review forgets its beginning; pooling over every step lets
    a strong phrase anywhere in the review decide, and the backward direction sees what follows.
    """
    x = layers.Dropout(0.25)(x)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    pooled = layers.Concatenate()([MaskedGlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x)])
    pooled = layers.Dropout(0.3)(pooled)
    return layers.Dense(1, activation="sigmoid")(pooled)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("lstm", "Embedding 32, LSTM 100, sigmoid (the tutorial)", _lstm, 32, 5000),
        Architecture("lstm-dropout", "lstm with Dropout 0.2 before and after the LSTM", _lstm_dropout, 32, 5000),
        Architecture(
            "lstm-recurrent-dropout",
            "lstm with dropout and recurrent_dropout 0.2 inside the LSTM",
            _lstm_recurrent_dropout,
            32,
            5000,
        ),
        Architecture("cnn-lstm", "Conv1D 32x3 relu, MaxPooling1D 2, LSTM 100", _cnn_lstm, 32, 5000),
        Architecture(
            "bilstm-pool",
            "Embedding (64 by default), Dropout 0.25, BiLSTM 64 over every step, masked max+mean pooling, "
            "Dropout 0.3, sigmoid (the default)",
            _bilstm_pool,
            64,
            20000,
        ),
    )
}
DEFAULT_ARCHITECTURE = "bilstm-pool"


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}") from None
