"""Every architecture masks padding: how much a review is padded never changes its score."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.model.layers import MaskedConv1D, MaskedGlobalMaxPooling1D, MaskedMaxPooling1D
from training.architectures import ARCHITECTURES, get_architecture


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.slow
def test_padding_never_changes_the_score(name):
    keras.utils.set_random_seed(7)
    model = ARCHITECTURES[name].build(input_dim=300)
    # Larger random embeddings than the default initializer, so a leak of padding would show.
    embedding = model.get_layer("embedding")
    embedding.set_weights([np.random.default_rng(0).normal(0, 1.0, embedding.get_weights()[0].shape)])
    rng = np.random.default_rng(1)
    reviews = [rng.integers(2, 300, size=n).astype(np.int32) for n in (1, 2, 7, 33)]
    for review in reviews:
        scores = []
        for width in (len(review), len(review) + 1, len(review) + 6, 120):
            batch = np.zeros((3, width), dtype=np.int32)
            batch[1, : len(review)] = review
            batch[0, :1] = 5  # other rows in the batch must not matter either
            scores.append(float(model(batch, training=False)[1, 0]))
        assert max(scores) - min(scores) <= 1e-6, (name, len(review), scores)


def test_masked_max_pooling_ignores_padded_steps():
    x = np.array([[[1.0], [5.0], [9.0]]], dtype=np.float32)
    mask = np.array([[True, True, False]])
    assert float(MaskedGlobalMaxPooling1D()(x, mask=mask)[0, 0]) == 5.0
    # The stock layer takes the padded 9.0: the reason this layer exists.
    assert float(keras.layers.GlobalMaxPooling1D()(x)[0, 0]) == 9.0


def test_masked_max_pooling_of_empty_review_is_zero():
    x = np.full((1, 2, 3), -4.0, dtype=np.float32)
    assert np.array_equal(MaskedGlobalMaxPooling1D()(x, mask=np.zeros((1, 2), bool)), np.zeros((1, 3)))


def test_masked_max_pooling1d_pools_the_mask():
    x = np.arange(5, dtype=np.float32).reshape(1, 5, 1)
    mask = np.array([[True, True, True, False, False]])
    layer = MaskedMaxPooling1D(pool_size=2)
    assert layer(x, mask=mask)[0, :, 0].numpy().tolist() == [1.0, 2.0, 0.0]
    assert layer.compute_mask(x, mask).numpy().tolist() == [[True, True, False]]


def test_masked_conv_zeroes_padded_outputs():
    layer = MaskedConv1D(
        filters=2, kernel_size=3, activation="relu", kernel_initializer="ones", bias_initializer="ones"
    )
    out = layer(np.ones((1, 4, 3), np.float32), mask=np.array([[True, True, False, False]])).numpy()
    assert (out[0, 2:] == 0).all() and (out[0, :2] > 0).all()


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match=r"unknown architecture .gpt.*bilstm-pool"):
        get_architecture("gpt")
