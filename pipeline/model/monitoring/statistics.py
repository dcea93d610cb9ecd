"""What a set of scored reviews looks like to the model, as counts that add up across batches.

Drift checks and the run report compare a run with the reviews the model was validated on; both
sides are `Statistics`, built by the same function from the same encoded ids and probabilities,
so a training profile and a scoring run can never be measured two different ways. Every field is
a histogram of counts: a batch's statistics are computed where the batch is scored, and a run's
are their sum (Beam's CombineGlobally adds them; no review travels to one machine).

Histograms are fine and fixed (scores in 100 equal bins, lengths by exact token count): the drift
checks coarsen both sides to the reference's own quantile bins when they compare.

`Statistics` stays a plain dataclass, not a pydantic model: it is a computational object (NumPy
histograms that batches build and Beam adds up), and pydantic would validate every sum. Its file form
(a training profile's `statistics`) is one pydantic model, `StatisticsFile`, with the same fields as
JSON lists; a pydantic model with a `Statistics` field reads and writes it through that model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, StrictInt
from pydantic_core import core_schema

from pipeline.model.labels import Labels
from pipeline.model.preprocessing import OOV_ID, RESERVED_IDS, EncodedBatch

TOP_TOKENS = 200
"""The vocabulary's most frequent words (ids 2 .. 201: the vocabulary is ordered by frequency) whose
shares are kept; every other known word counts together as 'other'."""
SCORE_BINS = 100
OOV_SHARE_BINS = 20


@dataclass(frozen=True)
class Statistics:
    reviews: int
    lengths: np.ndarray
    """Reviews by tokens the model saw (after truncation): lengths[n] reviews had n tokens."""
    tokens: np.ndarray
    """Token counts: [unknown, the TOP_TOKENS most frequent words in vocabulary order, other known words]."""
    oov_shares: np.ndarray
    """Reviews by their share of unknown tokens, in OOV_SHARE_BINS equal bins over [0, 1]."""
    scores: np.ndarray
    """Reviews by their `score` column, in SCORE_BINS equal bins over [0, 1]."""
    labels: np.ndarray
    """Reviews by predicted class, in the manifest's class_names order."""

    @classmethod
    def of_batch(cls, ids: EncodedBatch, probabilities: np.ndarray, labels: Labels) -> Statistics:
        """The statistics of one scored batch: its ids as encoded and its calibrated probabilities."""
        p = np.asarray(probabilities, dtype=np.float32)
        predicted = labels.predicted(p)
        scores = labels.scores(p, predicted)
        lengths = ids.lengths
        unknown = np.concatenate([[0], np.cumsum(ids.ids == OOV_ID)])
        unknown_per_review = unknown[ids.offsets[1:]] - unknown[ids.offsets[:-1]]
        shares = unknown_per_review / np.maximum(lengths, 1)
        top_end = RESERVED_IDS + TOP_TOKENS  # ids at or above it are "other known words"
        token_counts = np.bincount(np.minimum(ids.ids, top_end), minlength=top_end + 1)[OOV_ID:]
        return cls(
            reviews=len(ids),
            lengths=np.bincount(lengths, minlength=1),
            tokens=token_counts.astype(np.int64),
            oov_shares=_histogram(shares, OOV_SHARE_BINS),
            scores=_histogram(scores, SCORE_BINS),
            labels=np.bincount(predicted, minlength=len(labels.class_names)).astype(np.int64),
        )

    @classmethod
    def empty(cls, classes: int) -> Statistics:
        """No reviews (a run where nothing was scored)."""
        zeros = np.zeros(0, dtype=np.int64)
        return cls(
            reviews=0,
            lengths=zeros,
            tokens=np.zeros(TOP_TOKENS + 2, dtype=np.int64),
            oov_shares=np.zeros(OOV_SHARE_BINS, dtype=np.int64),
            scores=np.zeros(SCORE_BINS, dtype=np.int64),
            labels=np.zeros(classes, dtype=np.int64),
        )

    def __add__(self, other: Statistics) -> Statistics:
        if not isinstance(other, Statistics):
            return NotImplemented
        return Statistics(
            reviews=self.reviews + other.reviews,
            **{name: _add(getattr(self, name), getattr(other, name)) for name in _HISTOGRAMS},
        )

    def __radd__(self, other: Any) -> Statistics:
        """`0 + statistics`, so sum() and a tally's `total.get(key, 0) + n` work."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    @property
    def total_tokens(self) -> int:
        return int(self.tokens.sum())

    @property
    def unknown_tokens(self) -> int:
        return int(self.tokens[0])

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """As a pydantic model's field: read from StatisticsFile's JSON (or taken as is), written as it."""
        file_schema = handler.generate_schema(StatisticsFile)
        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_after_validator_function(StatisticsFile.statistics, file_schema),
            python_schema=core_schema.union_schema(
                [
                    core_schema.is_instance_schema(cls),
                    core_schema.no_info_after_validator_function(StatisticsFile.statistics, file_schema),
                ]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                StatisticsFile.of, return_schema=file_schema
            ),
        )


_HISTOGRAMS = tuple(f.name for f in fields(Statistics) if f.name != "reviews")

Count = Annotated[StrictInt, Field(ge=0)]


class StatisticsFile(BaseModel):
    """Statistics as a file holds them: the same fields, each histogram a JSON list of counts."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    reviews: Count
    """Reviews counted."""
    lengths: list[Count]
    """Reviews by tokens the model saw (after truncation): lengths[n] reviews had n tokens."""
    tokens: list[Count]
    """Token counts: [unknown, the most frequent words in vocabulary order, other known words]."""
    oov_shares: list[Count]
    """Reviews by their share of unknown tokens, in equal bins over [0, 1]."""
    scores: list[Count]
    """Reviews by their `score` column, in equal bins over [0, 1]."""
    labels: list[Count]
    """Reviews by predicted class, in the manifest's class_names order."""

    @classmethod
    def of(cls, statistics: Statistics) -> StatisticsFile:
        return cls(reviews=statistics.reviews, **{name: getattr(statistics, name).tolist() for name in _HISTOGRAMS})

    def statistics(self) -> Statistics:
        return Statistics(
            reviews=self.reviews, **{name: np.asarray(getattr(self, name), dtype=np.int64) for name in _HISTOGRAMS}
        )


def _histogram(values: np.ndarray, bins: int) -> np.ndarray:
    """Counts of values in `bins` equal bins over [0, 1]; 1.0 falls in the last bin."""
    index = np.clip((np.asarray(values, dtype=np.float64) * bins).astype(np.int64), 0, bins - 1)
    return np.bincount(index, minlength=bins).astype(np.int64)


def padded(counts: np.ndarray, length: int) -> np.ndarray:
    """The counts followed by zeros up to `length` bins (a histogram grows with the longest review)."""
    counts = np.asarray(counts)
    return np.concatenate([counts, np.zeros(length - len(counts), counts.dtype)]) if len(counts) < length else counts


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of two count arrays; the shorter is padded with zeros."""
    length = max(len(a), len(b))
    return padded(a, length) + padded(b, length)
