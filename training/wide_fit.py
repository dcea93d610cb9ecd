"""Fitting a wide-and-deep model's wide part before its network: NBSVM's recipe on hashed n-grams.

The wide part is a linear model over the presence of hashed n-grams (`pipeline.model.wide`). It is
fitted first, by a regularised logistic regression whose solvers find the optimum in seconds, and
then kept fixed while the network learns what it misses: the network's gradient steps are a poor
way to fit a million sparse weights, and a fixed wide part cannot drift while the network
overfits. With two classes each n-gram's presence is scaled by its log-count ratio between the
classes before the regression (Wang & Manning 2012), and the ratio is folded into the table after
it, so the model stays one sum of table rows. The regularisation is chosen by validation accuracy.

The features are built from the same `HashedNgrams.distinct_rows` the Keras layer and the engines
are held to, from the encoded reviews the network reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from pipeline.model.preprocessing import EncodedBatch
from pipeline.model.wide import HashedNgrams
from training.ngram import log_count_ratios, logistic_regression, scaled

__all__ = ["REGULARISATIONS", "FittedWide", "fit_wide", "presence"]

REGULARISATIONS = (0.1, 0.3, 1.0)
"""scikit-learn's C values tried; the one of best validation accuracy is kept."""
SMOOTHING = 1.0
"""Added to every n-gram's count per class before the log-count ratio (NBSVM's alpha)."""


@dataclass(frozen=True)
class FittedWide:
    ngrams: HashedNgrams
    table: np.ndarray
    """(rows, outputs) float32: the regression's weights times the ratios."""
    intercept: np.ndarray
    """(outputs,): the regression's intercept, where the classifier's bias starts."""
    regularisation: float
    validation_accuracy: dict[float, float]
    """Validation accuracy of the wide part alone for each C tried."""
    held_out_accuracy: float
    """The chosen wide part's accuracy alone on the held-out (calibration) part, which chose nothing."""
    seconds: float

    def record(self) -> dict:
        return {
            **self.ngrams.record(),
            "weighting": "presence, scaled by NB log-count ratios" if self.table.shape[1] == 1 else "presence",
            "regularisation": self.regularisation,
            "validation_accuracy_by_regularisation": {str(c): round(a, 4) for c, a in self.validation_accuracy.items()},
            "held_out_accuracy": round(self.held_out_accuracy, 4),
            "fit_seconds": round(self.seconds, 1),
        }


def presence(batch: EncodedBatch, ngrams: HashedNgrams) -> sparse.csr_matrix:
    """(reviews, table rows) 0/1 matrix: which rows each review's n-grams reach."""
    rows, counted = ngrams.distinct_rows(batch.padded())
    reviews = np.broadcast_to(np.arange(rows.shape[0])[:, None], rows.shape)
    values = np.ones(int(counted.sum()), np.float32)
    return sparse.csr_matrix((values, (reviews[counted], rows[counted])), shape=(rows.shape[0], ngrams.rows))


def fit_wide(
    ngrams: HashedNgrams,
    train: EncodedBatch,
    labels: np.ndarray,
    validation: EncodedBatch,
    validation_labels: np.ndarray,
    held_out: EncodedBatch,
    held_out_labels: np.ndarray,
    classes: int,
) -> FittedWide:
    started = time.perf_counter()
    labels = np.asarray(labels, dtype=np.int64)
    features = presence(train, ngrams)
    ratios = log_count_ratios(features, labels, SMOOTHING) if classes == 2 else None
    features, validation_features = scaled(features, ratios), scaled(presence(validation, ngrams), ratios)
    fitted, accuracy = {}, {}
    for c in REGULARISATIONS:
        model = logistic_regression(c, classes).fit(features, labels)
        accuracy[c] = float((model.predict(validation_features) == validation_labels).mean())
        fitted[c] = model
        print(f"wide part: C={c}, validation accuracy {accuracy[c]:.4f}")
    best = max(REGULARISATIONS, key=lambda c: accuracy[c])
    model = fitted[best]
    held_out_accuracy = float((model.predict(scaled(presence(held_out, ngrams), ratios)) == held_out_labels).mean())
    table = model.coef_.T.astype(np.float32)  # (rows, 1) for two classes, (rows, K) for K
    if ratios is not None:
        table = table * ratios[:, None]
    return FittedWide(
        ngrams,
        table.astype(np.float32),
        model.intercept_.astype(np.float32),
        best,
        accuracy,
        held_out_accuracy,
        time.perf_counter() - started,
    )
