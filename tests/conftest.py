"""Shared fixtures: small labelled review sets written by the tests themselves, never IMDB text."""

from __future__ import annotations

import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline.model.layers  # noqa: F401  (registers custom layers, quiets TensorFlow)

POSITIVE = ["wonderful", "brilliant", "moving", "superb", "delightful", "charming", "great", "loved"]
NEGATIVE = ["dreadful", "boring", "awful", "terrible", "dull", "tedious", "bad", "hated"]
NEUTRAL = ["the", "film", "plot", "actor", "scene", "story", "ending", "camera", "music", "it", "was", "and"]


# Markers that follow from a fixture (pyproject.toml registers them): a test that asks for the Cloud Storage
# emulator or the browser, directly or through another fixture, is marked so; no decorator to forget.
FIXTURE_MARKERS = {"cloud_storage": "emulator", "gcs_connection": "emulator", "browser": "browser"}


def pytest_collection_modifyitems(items):
    """Marks each test by the fixtures it uses, so `-m emulator` and `-m browser` find every such test."""
    for item in items:
        for fixture in set(FIXTURE_MARKERS) & set(getattr(item, "fixturenames", ())):
            item.add_marker(FIXTURE_MARKERS[fixture])


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

    from training.config import TrainingConfig
    from training.train import train

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


class CloudStorage:
    """A Cloud Storage emulator on loopback: the real google-cloud-storage client and Beam's GCS filesystem
    talk to it over HTTP (STORAGE_EMULATOR_HOST), so gs:// paths are exercised without a cloud account."""

    def __init__(self, url: str, bucket: str):
        self.url = url
        self.bucket = bucket

    def env(self) -> dict[str, str]:
        return {**os.environ, "STORAGE_EMULATOR_HOST": self.url}

    def path(self, *parts: str) -> str:
        return "/".join([f"gs://{self.bucket}", *parts])

    def upload(self, local, target: str) -> str:
        """Copy a local file, or a folder's files, to gs://; returns the target."""
        from pathlib import Path

        from apache_beam.io.filesystems import FileSystems

        local = Path(local)
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for file in files:
            name = target if local.is_file() else f"{target.rstrip('/')}/{file.relative_to(local).as_posix()}"
            with FileSystems.create(name) as f:
                f.write(file.read_bytes())
        return target

    def files(self, prefix: str) -> list[str]:
        from apache_beam.io.filesystems import FileSystems

        return sorted(m.path for m in FileSystems.match([f"{prefix.rstrip('/')}/**"])[0].metadata_list)

    def read(self, path: str) -> bytes:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as f:
            return f.read()


@pytest.fixture(scope="session")
def cloud_storage():
    """One emulator for the session, started the way a developer would (`gcp-storage-emulator start`)."""
    import socket
    import subprocess
    import sys
    import time

    from pipeline.job.beam_internals import use_anonymous_storage

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bucket = "reviewscore-test"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
            "--in-memory",
            f"--default-bucket={bucket}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the Cloud Storage emulator did not start") from None
            time.sleep(0.1)
    url = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    use_anonymous_storage()  # as --no_auth does: no credential search against the real Google endpoints
    try:
        yield CloudStorage(url, bucket)
    finally:
        server.kill()
        server.wait()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="module")
def remote(cloud_storage, tiny_bundle, tmp_path_factory):
    """A bundle and a folder of reviews on gs://, as a scheduled job finds them."""
    reviews = tmp_path_factory.mktemp("remote-reviews")
    (reviews / "1.txt").write_text("a wonderful film", encoding="utf-8")
    (reviews / "2.txt").write_text("a dull and boring film", encoding="utf-8")
    return {
        "model": cloud_storage.upload(tiny_bundle.path, cloud_storage.path("models", "tiny")),
        "input": cloud_storage.upload(reviews, cloud_storage.path("reviews", "day1")) + "/",
    }


FIVE_CLASSES = ("negative", "somewhat negative", "neutral", "somewhat positive", "positive")
CLASS_WORDS = (["awful", "dreadful"], ["dull", "weak"], ["okay", "average"], ["good", "nice"], ["superb", "brilliant"])


def make_five_class_reviews(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Synthetic reviews whose class (0-4) is carried by a word of that class among filler words."""
    rng = random.Random(seed)
    reviews = []
    for i in range(n):
        label = i % 5
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(3, 12))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(CLASS_WORDS[label]))
        reviews.append((" ".join(words), label))
    return reviews


@pytest.fixture(scope="session")
def five_class_bundle(tmp_path_factory):
    """A real five-class bundle (softmax head, temperature-calibrated) trained on synthetic reviews."""
    from pathlib import Path

    from training.config import TrainingConfig
    from training.train import train

    folder = tmp_path_factory.mktemp("five")
    reviews = make_five_class_reviews(400)
    pq.write_table(
        pa.table(
            {
                "text": [t for t, _ in reviews],
                "label": [FIVE_CLASSES[label] for _, label in reviews],  # names, not indices
                "movie_id": [f"m{i // 5}" for i in range(len(reviews))],
            }
        ),
        folder / "five.parquet",
    )
    return train(
        TrainingConfig(
            data=Path(folder / "five.parquet"),
            out=folder / "bundle",
            architecture="bilstm-pool",
            epochs=6,
            batch_size=16,
            vocab_size=200,
            max_length=30,
            embedding_dim=16,
            class_names=FIVE_CLASSES,
            ordinal=True,
            name="five-test",
            verbose=0,
        )
    )
