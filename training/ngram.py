"""An n-gram model: naive-Bayes-weighted logistic regression on uni- to trigrams (NBSVM's recipe,
Wang & Manning 2012), one of the teacher's members.

A bag of n-grams sees what a sequence model weighs differently ("not bad at all", a rare actor's
name, "7/10"), and its mistakes are not the BiLSTM's: their combination is better than either,
which is why the teacher has one. It is never deployed (scoring stays one network on compiled
engines), so scikit-learn is a training dependency only.

It reads the same tokens as the network (`pipeline.model.preprocessing.tokenize`), so the teacher and
the student see one cleaning. With two classes each n-gram's presence is scaled by its log-count
ratio between the classes (the "NB" of NB-LR) before a logistic regression; with more classes a
multinomial logistic regression reads the plain presence features (the ratio is a two-class
quantity).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from training.config import NgramSettings

__all__ = ["NgramModel", "log_count_ratios", "logistic_regression", "scaled"]


class NgramModel:
    """Fitted n-gram features and classifier; `log_probabilities` scores token lists."""

    def __init__(self, vectorizer: CountVectorizer, ratios: np.ndarray | None, classifier: LogisticRegression):
        self.vectorizer = vectorizer
        self.ratios = ratios
        self.classifier = classifier

    @classmethod
    def fit(cls, tokens: pa.Array, labels: np.ndarray, num_classes: int, settings: NgramSettings) -> NgramModel:
        vectorizer = CountVectorizer(
            ngram_range=(1, settings.max_n),
            min_df=settings.min_count,
            binary=True,
            token_pattern=None,
            tokenizer=str.split,
            lowercase=False,
            dtype=np.float32,
        )
        features = vectorizer.fit_transform(_joined(tokens))
        labels = np.asarray(labels, dtype=np.int64)
        ratios = log_count_ratios(features, labels, settings.smoothing) if num_classes == 2 else None
        classifier = logistic_regression(settings.regularisation, num_classes).fit(scaled(features, ratios), labels)
        return cls(vectorizer, ratios, classifier)

    @property
    def features(self) -> int:
        return len(self.vectorizer.vocabulary_)

    def log_probabilities(self, tokens: pa.Array) -> np.ndarray:
        """(texts, classes) natural-log class probabilities."""
        features = scaled(self.vectorizer.transform(_joined(tokens)), self.ratios)
        return self.classifier.predict_log_proba(features)


def _joined(tokens: pa.Array) -> list[str]:
    """Token lists as space-joined strings: the vectorizer splits them back on whitespace, which no
    token contains."""
    return pc.binary_join(tokens, pa.scalar(" ", pa.large_string())).to_pylist()


def log_count_ratios(features: sparse.csr_matrix, labels: np.ndarray, smoothing: float) -> np.ndarray:
    positive = np.asarray(features[labels == 1].sum(axis=0)).ravel() + smoothing
    negative = np.asarray(features[labels == 0].sum(axis=0)).ravel() + smoothing
    return np.log((positive / positive.sum()) / (negative / negative.sum())).astype(np.float32)


def logistic_regression(regularisation: float, num_classes: int) -> LogisticRegression:
    """An unfitted regression with scikit-learn's C = `regularisation`: liblinear is the fastest on two
    classes; lbfgs fits one multinomial model for more."""
    solver = "liblinear" if num_classes == 2 else "lbfgs"
    return LogisticRegression(C=regularisation, max_iter=1000, solver=solver)


def scaled(features: sparse.csr_matrix, ratios: np.ndarray | None) -> sparse.csr_matrix:
    """The features times each one's log-count ratio (NB-LR); unchanged without ratios."""
    return features if ratios is None else sparse.csr_matrix(features.multiply(ratios))
