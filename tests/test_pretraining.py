"""Word vectors pre-trained with gensim on training + unlabelled text start the embedding, and are
cached by a fingerprint of that text so that a second training run does not train them again."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.bundle import Bundle
from tests.conftest import make_reviews

runner = CliRunner()


def train_args(labelled, unlabelled, out, cache, *extra):
    return ["train", "--data", labelled, "--out", str(out), "--arch", "lstm", "--epochs", "1", "--vocab-size", "60",
            "--max-length", "30", "--pretrain-vectors", str(unlabelled), "--cache-dir", str(cache),
            "--embedding-dim", "16", *extra]  # fmt: skip


@pytest.mark.slow
def test_pretrained_vectors_start_the_embedding_and_are_cached(tmp_path, labelled_parquet):
    unlabelled = tmp_path / "unsup.parquet"
    texts = [text for text, _ in make_reviews(300, seed=9)] + ["a word only the unlabelled reviews use: zyzzyva"] * 5
    pq.write_table(pa.table({"text": texts, "label": pa.nulls(len(texts), pa.int8())}), unlabelled)
    cache = tmp_path / "cache"

    first = runner.invoke(app, train_args(labelled_parquet, unlabelled, tmp_path / "a", cache, "--freeze-embedding"))
    assert first.exit_code == 0, first.output
    assert "word vectors:" in first.output and "cached" not in first.output
    cached = list(cache.glob("word2vec-*.npz"))
    assert len(cached) == 1

    bundle = Bundle.open(tmp_path / "a")
    pretraining = bundle.manifest.training_data["pretraining"]
    assert pretraining["method"] == "gensim Word2Vec CBOW" and pretraining["unlabelled_rows"] == 305
    assert pretraining["embedding"] == "frozen" and pretraining["vocabulary_words_with_vectors"] > 0
    assert "zyzzyva" in bundle.vocabulary.tokens  # the vocabulary is built from the unlabelled text too

    # Frozen: each known word's embedding row is exactly its word2vec vector.
    with np.load(cached[0], allow_pickle=False) as vectors:
        words, matrix = vectors["words"].tolist(), vectors["vectors"]
    embedding = bundle.load_model().get_layer("embedding").get_weights()[0]
    for word in ("wonderful", "dreadful", "zyzzyva"):
        np.testing.assert_array_equal(embedding[bundle.vocabulary.tokens.index(word) + 2], matrix[words.index(word)])

    tuned = ("--freeze-embedding", "--fine-tune-epochs", "1")
    second = runner.invoke(app, train_args(labelled_parquet, unlabelled, tmp_path / "b", cache, *tuned))
    assert second.exit_code == 0, second.output
    assert "(cached:" in second.output and "fine-tuning the embedding" in second.output
    assert Bundle.open(tmp_path / "b").vocabulary == bundle.vocabulary
    assert Bundle.open(tmp_path / "b").manifest.metrics["epochs_run"] == 2


def test_missing_unlabelled_data_is_one_clear_error(tmp_path, labelled_parquet):
    result = runner.invoke(app, train_args(labelled_parquet, tmp_path / "nowhere", tmp_path / "o", tmp_path / "c"))
    assert result.exit_code == 2 and "unlabelled data" in result.output and "does not exist" in result.output


def test_freezing_without_vectors_is_one_clear_error(tmp_path, labelled_parquet):
    result = runner.invoke(
        app, ["train", "--data", labelled_parquet, "--out", str(tmp_path / "o"), "--freeze-embedding"]
    )
    assert result.exit_code == 2 and "needs --pretrain-vectors" in result.output
