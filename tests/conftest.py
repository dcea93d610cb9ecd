"""Shared fixtures: small labelled review sets written by the tests themselves, never IMDB text."""

from __future__ import annotations

import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline  # noqa: F401  (registers custom layers, quiets TensorFlow)

POSITIVE = ["wonderful", "brilliant", "moving", "superb", "delightful", "charming", "great", "loved"]
NEGATIVE = ["dreadful", "boring", "awful", "terrible", "dull", "tedious", "bad", "hated"]
NEUTRAL = ["the", "film", "plot", "actor", "scene", "story", "ending", "camera", "music", "it", "was", "and"]


def make_reviews(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Synthetic reviews whose label is carried by a few sentiment words among filler words."""
    rng = random.Random(seed)
    reviews = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(5, 30))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        text = " ".join(words).capitalize() + ". <br /><br />" + rng.choice(["Really!", "Honestly.", ""])
        reviews.append((text, label))
    return reviews


@pytest.fixture(scope="session")
def labelled_parquet(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "labelled.parquet"
    reviews = make_reviews(240)
    pq.write_table(
        pa.table(
            {
                "text": [t for t, _ in reviews],
                "label": [label for _, label in reviews],
                "movie_id": [f"tt{i // 4:07d}" for i in range(len(reviews))],  # four reviews per movie
            }
        ),
        path,
    )
    return str(path)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, labelled_parquet):
    """A real bundle trained for a few epochs on the synthetic reviews (shared by several tests)."""
    from pathlib import Path

    from training.train import TrainingConfig, train

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    return train(
        TrainingConfig(
            data=Path(labelled_parquet),
            out=out,
            architecture="lstm",
            epochs=3,
            batch_size=16,
            vocab_size=200,
            max_length=40,
            validation_fraction=0.25,
            verbose=0,
        )
    )
