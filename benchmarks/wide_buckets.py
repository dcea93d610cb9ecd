"""How many hashed rows, and presence or counts: the wide part alone by validation accuracy.

    .venv/bin/python benchmarks/wide_buckets.py --data data/imdb/train.parquet \
        --buckets 262139,1048573,4194301 --regularisation 0.3

The default recipe's split (by movie, seed 1337) and vocabulary (30,000 words of the training part),
the wide part of training/wide_fit.py (NB-scaled logistic regression) at each bucket count, on
n-gram presence (what the model computes) and on counts, scored on the validation part. Prints one
line per variant; BENCHMARKS.md#wide-buckets has the figures.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from pipeline.model.preprocessing import TextEncoder, tokenize
from pipeline.model.wide import HashedNgrams
from training import train as training
from training.architectures import get_architecture
from training.config import TrainingConfig
from training.ngram import log_count_ratios
from training.wide_fit import SMOOTHING, presence


def counts(batch, ngrams: HashedNgrams) -> sparse.csr_matrix:
    """(reviews, rows) how often each review's n-grams reach each row."""
    rows, present = ngrams.hashed_rows(batch.padded())
    reviews = np.broadcast_to(np.arange(rows.shape[0])[:, None], rows.shape)
    values = np.ones(int(present.sum()), np.float32)
    matrix = sparse.csr_matrix((values, (reviews[present], rows[present])), shape=(rows.shape[0], ngrams.rows))
    matrix.sum_duplicates()
    return matrix


def main(
    data: Annotated[Path, typer.Option(help="Labelled IMDB reviews (train.parquet).")],
    buckets: Annotated[str, typer.Option(help="Bucket counts to try, comma-separated.")] = "262139,1048573,4194301",
    regularisation: Annotated[float, typer.Option(help="scikit-learn's C.")] = 0.3,
    vocab_size: Annotated[int, typer.Option(help="Vocabulary of the recipe.")] = 30000,
) -> None:
    config = TrainingConfig(data=data, out=Path("unused"), vocab_size=vocab_size)
    preprocessing = training.preprocessing_for(get_architecture("wide-bilstm-pool"), config)
    parts = training.leave_out_empty_texts(training.split(training.load_data(config), config), preprocessing)
    tokens = tokenize(parts.train.texts, preprocessing)
    vocabulary = training.build_vocabulary(tokens, None, vocab_size)
    encoded = training.encode(TextEncoder(preprocessing, vocabulary), tokens, parts)
    labels = np.asarray(parts.train.labels)
    for size in (int(b) for b in buckets.split(",")):
        ngrams = HashedNgrams(len(vocabulary), size)
        for name, features in (("presence", presence), ("counts", counts)):
            started = time.perf_counter()
            train, validation = features(encoded.train, ngrams), features(encoded.validation, ngrams)
            scale = sparse.diags(log_count_ratios(presence(encoded.train, ngrams), labels, SMOOTHING))
            model = LogisticRegression(C=regularisation, solver="liblinear", max_iter=1000).fit(train @ scale, labels)
            accuracy = (model.predict(validation @ scale) == parts.validation.labels).mean()
            print(
                f"buckets {size:,}, {name}: validation accuracy {accuracy:.4f} "
                f"({time.perf_counter() - started:.0f} s, table {(len(vocabulary) + size) * 4 / 1e6:.1f} MB)",
                flush=True,
            )


if __name__ == "__main__":
    typer.run(main)
