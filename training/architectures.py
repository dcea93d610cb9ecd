"""Model architectures by name: the seed tutorials' four, and the stronger default.

Every model takes right-padded int32 id sequences of any length and masks id 0, so a batch can be
padded to its own longest review (length-bucketed batches) and padding never changes a score.
An architecture is its layers up to the classifier; `build` adds the head for the number of classes
(`output_layer`): Dense(1, sigmoid) for two, as the tutorials have it, Dense(K, softmax) for K.
Each architecture also carries the preprocessing and training settings it was designed with, which
`reviewscore train` uses unless told otherwise.

Keras is imported where a model is built, not with this module: `reviewscore train --help` lists
the architectures from ARCHITECTURES without loading TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    from keras import layers

    from pipeline.model.wide import HashedNgrams


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    build_layers: Callable[[keras.KerasTensor], keras.KerasTensor]
    """From the embedded sequence (batch, time, dim), masked, to the features the classifier reads."""
    embedding_dim: int
    vocab_size: int
    max_length: int = 500
    batch_size: int = 64
    learning_rate: float = 1e-3
    wide: bool = False
    """A wide part (`pipeline.model.wide`: a linear model over hashed n-grams of the ids) beside the
    deep one: the classifier reads [deep features, wide logits], its weights on the wide logits
    starting at the identity, so the model starts as the wide part alone."""
    teacher_member: str | None = None
    """The architecture a teacher's network members train with; None: this one."""

    def build(
        self,
        input_dim: int,
        embedding_dim: int | None = None,
        embeddings=None,
        train_embedding: bool = True,
        num_classes: int = 2,
    ) -> keras.Model:
        """An uncompiled model for a vocabulary of `input_dim` ids (reserved ids included) and
        `num_classes` classes, its embedding started from `embeddings` (input_dim, dim) when given,
        else at random, and kept as it is during training when `train_embedding` is false."""
        import keras
        import numpy as np
        from keras import layers

        if embeddings is not None:
            embedding_dim = embeddings.shape[1]
        ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        embedding = layers.Embedding(
            input_dim, embedding_dim or self.embedding_dim, mask_zero=True, trainable=train_embedding, name="embedding"
        )
        features = self.build_layers(embedding(ids))
        outputs = 1 if num_classes == 2 else num_classes
        ngrams = self.hashed_ngrams(input_dim)
        if ngrams is not None:
            from pipeline.model.layers import HashedNgramLogits

            wide = HashedNgramLogits(
                ngrams.vocabulary, ngrams.buckets, ngrams.max_n, outputs, trainable=False, name=WIDE_LAYER
            )
            features = layers.Concatenate(name="wide_and_deep")([features, wide(ids)])
        head = output_layer(num_classes)
        model = keras.Model(ids, head(features), name=self.name.replace("-", "_"))
        if embeddings is not None:  # set, not an initializer: a Constant would be saved into the config
            embedding.set_weights([embeddings])
        if ngrams is not None:
            kernel, bias = head.get_weights()
            kernel[-outputs:] = np.eye(outputs, dtype=kernel.dtype)
            head.set_weights([kernel, bias])
        return model

    def hashed_ngrams(self, input_dim: int) -> HashedNgrams | None:
        """The wide part's hashing for a vocabulary of `input_dim` ids; None without a wide part. The
        model's layer and the fit of its table (training/wide_fit.py) both read it from here."""
        if not self.wide:
            return None
        from pipeline.model.wide import HashedNgrams

        return HashedNgrams(input_dim)


WIDE_LAYER = "wide"
"""The name of a wide-and-deep model's wide part, by which training sets its table."""


def output_layer(num_classes: int) -> layers.Dense:
    """The classifier: one sigmoid unit for two classes (the tutorials' binary head, P(class 1)),
    a softmax over K units for K classes. The engines and the calibration read both the same way."""
    from keras import layers

    if num_classes < 2:
        raise ValueError(f"a classifier needs at least two classes, got {num_classes}")
    return (
        layers.Dense(1, activation="sigmoid") if num_classes == 2 else layers.Dense(num_classes, activation="softmax")
    )


def loss_for(num_classes: int, soft: bool = False) -> str:
    """The cross-entropy matching `output_layer`: on class indices, or (`soft`) on probabilities, which
    a sigmoid reads as the second class's and a softmax as one per class."""
    if num_classes == 2:
        return "binary_crossentropy"
    return "categorical_crossentropy" if soft else "sparse_categorical_crossentropy"


def _lstm(x):
    from keras import layers

    return layers.LSTM(100)(x)


def _lstm_dropout(x):
    from keras import layers

    x = layers.Dropout(0.2)(x)
    x = layers.LSTM(100)(x)
    return layers.Dropout(0.2)(x)


def _lstm_recurrent_dropout(x):
    from keras import layers

    return layers.LSTM(100, dropout=0.2, recurrent_dropout=0.2)(x)


def _cnn_lstm(x):
    from keras import layers

    from pipeline.model.layers import MaskedConv1D, MaskedMaxPooling1D

    x = MaskedConv1D(filters=32, kernel_size=3, activation="relu")(x)
    x = MaskedMaxPooling1D(pool_size=2)(x)
    return layers.LSTM(100)(x)


def _bilstm_pool(x):
    """A bidirectional LSTM read of the whole review, summarised by masked max and mean pooling.

    The last LSTM state of a 500-token review forgets its beginning; pooling over every step lets
    a strong phrase anywhere in the review decide, and the backward direction sees what follows.
    """
    from keras import layers

    from pipeline.model.layers import MaskedGlobalMaxPooling1D

    x = layers.Dropout(0.25)(x)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    pooled = layers.Concatenate()([MaskedGlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x)])
    return layers.Dropout(0.3)(pooled)


def _bilstm_pool_short(x):
    """bilstm-pool for sentences and phrases: heavier dropout (0.5 before and after), as a short text
    gives the classifier few words to spread its trust over."""
    from keras import layers

    from pipeline.model.layers import MaskedGlobalMaxPooling1D

    x = layers.Dropout(0.5)(x)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    pooled = layers.Concatenate()([MaskedGlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x)])
    return layers.Dropout(0.5)(pooled)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("lstm", "Embedding 32, LSTM 100, sigmoid or softmax (the tutorial)", _lstm, 32, 5000),
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
            "Dropout 0.3, sigmoid or softmax (the default)",
            _bilstm_pool,
            64,
            20000,
        ),
        Architecture(
            "bilstm-pool-short",
            "bilstm-pool with Dropout 0.5 before and after, for sentences and phrases (60 tokens, 50,000 words)",
            _bilstm_pool_short,
            100,
            50000,
            max_length=60,
        ),
        Architecture(
            "wide-bilstm-pool",
            "bilstm-pool beside a wide part: a linear model over hashed uni- to trigrams of the same ids, "
            "fitted first and kept fixed while the BiLSTM learns what it misses",
            _bilstm_pool,
            64,
            20000,
            wide=True,
            teacher_member="bilstm-pool",
        ),
        Architecture(
            "wide-bilstm-pool-short",
            "bilstm-pool-short beside the same wide part, for sentences and phrases",
            _bilstm_pool_short,
            100,
            50000,
            max_length=60,
            wide=True,
            teacher_member="bilstm-pool-short",
        ),
    )
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}") from None
