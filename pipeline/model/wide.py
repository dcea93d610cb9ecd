"""The wide part of a wide-and-deep model: a linear model over hashed n-grams of the encoded review.

A bag of uni- to trigrams holds directly what a recurrent network must learn from examples ("not
bad at all", "7/10", a director's name), at the cost of a sparse sum per review. So the
`wide-bilstm-pool` architecture adds to the BiLSTM's logits a linear model over the n-grams of the
same token ids the BiLSTM reads: one encoder, one code path for training and scoring, and the
n-grams are computed inside every engine's graph from the ids alone.

Each n-gram of a right-padded id matrix gets a row of one weight table:
- a unigram, the word's id itself (rows 0 .. vocabulary - 1; id 0 is padding and never read);
- a bigram (a, b), row vocabulary + (a * V + b) mod buckets;
- a trigram (a, b, c), row vocabulary + (a * V * V + b * V + c + TRIGRAM_OFFSET) mod buckets,
where V is the vocabulary size. The codes are exact in int64 for any vocabulary below 2^20 words, so
NumPy, TensorFlow and ONNX Runtime compute the very same rows. An n-gram is real when none of its ids
is padding, and each row a review's real n-grams reach counts once, however often it is reached:
presence, not counts, as in NBSVM, whose binary features beat counts by 0.6 points of validation
accuracy here (BENCHMARKS.md#wide-buckets). The rows are sorted and the first of each run kept, which
every engine can do in its graph. The wide logits are the sum of the kept rows. Leaving a word out
of a review changes which n-grams it has, so occlusion gives each variant's whole review to the
engine's occlusion graph again (WIDE_IDS), which re-counts them: occlusion stays exact.

`hashed_rows` and `logits` here are the reference: the Keras layer (`pipeline.model.layers`), the
xla engine and the ONNX export compute the same integer arithmetic, and tests hold them to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_BUCKETS", "MAX_N", "TRIGRAM_OFFSET", "WIDE_IDS", "HashedNgrams", "WidePart"]

MAX_N = 3
"""Uni- to trigrams."""
DEFAULT_BUCKETS = 1_048_573
"""Rows shared by the hashed bi- and trigrams: the largest prime below 2^20 (BENCHMARKS.md#wide-buckets)."""
TRIGRAM_OFFSET = 524_287
"""Shifts trigram codes against bigram codes, so (a, b) and (0-led) trigrams do not pair up by construction."""
WIDE_IDS = "wide_ids"
"""The occlusion graph's input of a wide-and-deep model: each job's whole review (the variant it
scores), right-padded, from which the graph adds the wide logits to the job's first share."""
LARGEST_VOCABULARY = 1 << 20
"""a * V * V + b * V + c stays below 2^60 for V up to this: exact in int64 everywhere."""
LARGEST_TABLE = 1 << 24
"""Table rows stay below this, so a row index is exact as a float32 too (sorting in any engine)."""


@dataclass(frozen=True)
class HashedNgrams:
    """Which table row each n-gram of an encoded review reads."""

    vocabulary: int
    """Ids 0 .. vocabulary - 1, padding and the unknown word included."""
    buckets: int = DEFAULT_BUCKETS
    max_n: int = MAX_N

    def __post_init__(self) -> None:
        if not 1 <= self.max_n <= 3:
            raise ValueError(f"hashed n-grams go from unigrams up to trigrams, not {self.max_n}-grams")
        if not 2 < self.vocabulary <= LARGEST_VOCABULARY:
            raise ValueError(f"a vocabulary of {self.vocabulary} ids is outside 3 .. {LARGEST_VOCABULARY}")
        if self.rows > LARGEST_TABLE:
            raise ValueError(f"{self.rows} table rows are more than {LARGEST_TABLE}; use fewer buckets")

    @property
    def rows(self) -> int:
        """The weight table's rows."""
        return self.vocabulary + (self.buckets if self.max_n > 1 else 0)

    def hashed_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, present) for a right-padded (reviews, time) id matrix: each n-gram's table row and
        whether it is a real n-gram (none of its ids padding), unigrams first, then bigrams, then
        trigrams, each (reviews, time - n + 1), concatenated along time."""
        ids = np.asarray(ids, dtype=np.int64)
        v = np.int64(self.vocabulary)
        rows, present = [ids], [ids > 0]
        if self.max_n >= 2:
            a, b = ids[:, :-1], ids[:, 1:]
            rows.append(v + (a * v + b) % self.buckets)
            present.append((a > 0) & (b > 0))
        if self.max_n >= 3:
            a, b, c = ids[:, :-2], ids[:, 1:-1], ids[:, 2:]
            rows.append(v + (a * v * v + b * v + c + TRIGRAM_OFFSET) % self.buckets)
            present.append((a > 0) & (b > 0) & (c > 0))
        return np.concatenate(rows, axis=1), np.concatenate(present, axis=1)

    def distinct_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, first) for a right-padded id matrix: each review's n-gram rows in ascending order
        (absent n-grams as row 0, which only padding reaches) and whether each is the first of its
        run of equal rows and not row 0: the rows that count, once each."""
        index, present = self.hashed_rows(ids)
        ordered = np.sort(np.where(present, index, 0), axis=1)
        first = np.ones_like(ordered, dtype=bool)
        first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        return ordered, first & (ordered > 0)

    def record(self) -> dict[str, int]:
        return {"vocabulary": self.vocabulary, "buckets": self.buckets, "max_n": self.max_n}


@dataclass(frozen=True)
class WidePart:
    """The fitted wide part: its hashing, its table (rows, outputs) float32, whose rows add up to the
    wide part's outputs, and the classifier's weights on those (outputs, outputs), which make them
    logits. The table is kept as trained (not multiplied by the kernel), so a bundle holds it once for
    the Keras model and the graphs."""

    ngrams: HashedNgrams
    table: np.ndarray
    kernel: np.ndarray

    def logits(self, rows: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(reviews, outputs) wide logits of encoded reviews (a padded matrix, or a list of rows)."""
        from pipeline.model.preprocessing import pad_rows

        ids = rows if isinstance(rows, np.ndarray) and rows.ndim == 2 else pad_rows(list(rows))
        if ids.shape[1] == 0:
            return np.zeros((ids.shape[0], self.kernel.shape[1]), np.float32)
        index, counted = self.ngrams.distinct_rows(ids)
        sums = (self.table[index] * counted[..., None]).sum(axis=1, dtype=np.float64)  # as the engines sum them
        return sums.astype(np.float32) @ self.kernel
