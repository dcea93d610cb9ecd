"""A bundle's word attributions: which words pushed each review towards its predicted label.

The Explainer attributes by occlusion (the default: leave one word out, scored on the job's own
engine) or by integrated gradients (TensorFlow, from the RecurrentPlan the engines score with; ONNX
Runtime computes no gradients). Scores never come from here: explaining never changes a label or a
score.

`Explained.of` turns per-token weights into the output column: a review's tokens are summed per
distinct word (a word said three times counts once, with its three contributions), then the K
words with the largest |weight| are kept, signed: positive pushed towards the predicted label,
negative against it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from hashlib import blake2b
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pipeline.model.engines.base import TENSORFLOW
from pipeline.model.engines.registry import ENGINES
from pipeline.model.explain import (
    COMPLETENESS_TOLERANCE,
    METHODS,
    MOST_STEPS,
    OCCLUSION,
    SAMPLE,
    SAMPLE_WORDS,
    STEPS,
    WORD_MIN_REVIEWS,
    WORD_MIN_SHARE,
    WORDS_SHOWN,
)
from pipeline.model.explain.integrated_gradients import BASELINE, Attributions, IntegratedGradients
from pipeline.model.explain.occlusion import Occlusion
from pipeline.model.progress import WorkerCount
from schemas.output import TOP_WORD_TYPE

if TYPE_CHECKING:
    from pipeline.model.bundle import Bundle


class ExplainUnavailable(ValueError):
    """This bundle's model cannot be explained here (no TensorFlow, or an architecture the plan refuses)."""


TARGET = "the predicted class's logit (binary: its log-odds)"


@dataclass(frozen=True)
class ExplainSettings:
    top_k: int = 0
    """Words per review in `top_words`; 0: no explanations."""
    steps: int = STEPS
    """Integrated-gradients steps (occlusion has none)."""
    method: str = METHODS[0]
    """Occlusion by default: exact, on the scoring engine, and measured cheaper than integrated
    gradients at every review length (BENCHMARKS.md#occlusion-vs-ig)."""
    sample: int = SAMPLE
    """Without top_k: about this many reviews explained, for the summary and report only (no column)."""

    @property
    def every_review(self) -> bool:
        """Every review explained, into the top_words column (--explain K)."""
        return self.top_k > 0

    @property
    def active(self) -> bool:
        return self.top_k > 0 or self.sample > 0

    @property
    def words_per_review(self) -> int:
        return self.top_k or SAMPLE_WORDS

    def share(self, reviews: int) -> float:
        """The share of a job's `reviews` to explain: all with top_k, else about `sample` of them."""
        if self.every_review:
            return 1.0
        return min(1.0, self.sample / reviews) if reviews > 0 and self.sample > 0 else 0.0

    def runs_on(self, engine: str) -> str:
        """Where explanations run, given the scoring engine: occlusion on it, integrated gradients on TensorFlow."""
        if self.method == OCCLUSION:
            return engine
        gradients = engine not in ENGINES or ENGINES[engine].gradients
        return f"{TENSORFLOW.title} (XLA-compiled)" + (
            "" if gradients else f": the {engine} engine computes no gradients"
        )

    def describe(self) -> dict:
        chosen = {"reviews_explained": "all" if self.every_review else f"a sample of about {self.sample}, by review id"}
        if self.method == OCCLUSION:
            return {
                "method": "occlusion (leave one word out)",
                "target": TARGET,
                "top_k": self.words_per_review,
                **chosen,
            }
        return {
            "method": IntegratedGradients.method,
            "steps": self.steps,
            "quadrature": "Gauss-Legendre",
            "baseline": BASELINE,
            "target": TARGET,
            "top_k": self.words_per_review,
            **chosen,
        }


class Explainer:
    """Attributions for a batch: occlusion on the scoring engine's logits, or integrated gradients on
    TensorFlow from the model's RecurrentPlan."""

    def __init__(self, bundle: Bundle, settings: ExplainSettings, logits, batch_size: int = 32, recurrence=None):
        """`logits`: the scoring engine's; `recurrence`: opens its recurrence (CalibratedScorer.recurrence),
        which occlusion reuses on long reviews when there is one."""
        if settings.method not in METHODS:
            raise ExplainUnavailable(f"unknown explanation method {settings.method!r}; choose one of {METHODS}")
        self.settings = settings
        if settings.method == OCCLUSION:
            self.attribute = Occlusion(logits, recurrence)
            return
        if not TENSORFLOW.installed():
            raise ExplainUnavailable(
                f"integrated gradients need {TENSORFLOW.title}, which is not installed here: "
                f"{TENSORFLOW.install}, or explain by occlusion"
            )
        from pipeline.model.engines.plan import UnsupportedModel, plan_model

        try:
            plan = plan_model(bundle.load_model())
        except UnsupportedModel as e:
            raise ExplainUnavailable(f"integrated gradients cannot attribute this model: {e}") from None
        if plan.wide is not None:  # its n-grams have no embedding to interpolate: IG would miss them
            raise ExplainUnavailable(
                "integrated gradients cannot attribute this model: its wide part reads n-grams, not "
                "embeddings; explain by occlusion"
            )
        self.attribute = IntegratedGradients(plan, bundle.preprocessing.max_length, settings.steps, batch_size)

    def __call__(
        self,
        rows: Sequence[np.ndarray],
        predicted: np.ndarray,
        logits=None,
        progress: WorkerCount | None = None,
        words: Sequence[Sequence[str]] | None = None,
    ) -> Attributions:
        """`logits`: the engine's logits of `rows` when the caller already scored them (occlusion then
        scores only the occluded variants); `progress` counts the reviews explained as they are;
        `words`: each review's words, which occlusion leaves out one at a time (all occurrences)."""
        if isinstance(self.attribute, Occlusion):
            return self.attribute(rows, np.asarray(predicted), logits, progress, words)
        return self.attribute(rows, np.asarray(predicted), progress)

    def with_steps(self, steps: int) -> Explainer:
        """The same explainer with another integrated-gradients step count, on the plan already read
        (no model reload); occlusion has no steps."""
        if not isinstance(self.attribute, IntegratedGradients):
            return self
        other = copy.copy(self)
        other.settings = replace(self.settings, steps=steps)
        other.attribute = self.attribute.with_steps(steps)
        return other


def explain_review(explainer: Explainer, rows: Sequence[np.ndarray], predicted: np.ndarray, logits=None, words=None):
    """(attributions, steps used) for one review: integrated gradients with the explainer's steps,
    doubled until the attributions are complete within COMPLETENESS_TOLERANCE or the steps reach
    MOST_STEPS; occlusion, which promises no completeness, at once."""
    steps = explainer.settings.steps
    while True:
        attributions = explainer(rows, predicted, logits, words=words)
        error = float(attributions.completeness_error[0])
        if np.isnan(error) or error <= COMPLETENESS_TOLERANCE or steps >= MOST_STEPS:
            return attributions, steps
        steps *= 2
        explainer = explainer.with_steps(steps)


def sampled_rows(review_ids: pa.Array, share: float) -> np.ndarray:
    """The indices of the reviews to explain: those whose id hashes below `share` of the hash range, so
    the choice depends on the id alone, the same on every runner however the input is batched."""
    if share >= 1.0:
        return np.arange(len(review_ids))
    bound = int(share * 2**64)
    hashes = (int.from_bytes(blake2b(str(i).encode(), digest_size=8).digest()) for i in review_ids.to_pylist())
    return np.flatnonzero(np.fromiter((h < bound for h in hashes), bool, count=len(review_ids)))


def word_weights(words: Sequence[str], weights: np.ndarray) -> list[tuple[str, float]]:
    """The review's distinct words with their summed weights, strongest (largest |weight|) first."""
    totals: dict[str, float] = {}
    for word, weight in zip(words, weights.tolist(), strict=True):
        totals[word] = totals.get(word, 0.0) + weight
    return sorted(totals.items(), key=lambda item: -abs(item[1]))


def _top_words_column(ranked: Sequence[Sequence[tuple[str, float]]], k: int) -> pa.Array:
    """The `top_words` column: per review, its k strongest words (`ranked`: word_weights') and their signed weights."""
    rows = [[{"word": w, "weight": v} for w, v in review[:k]] for review in ranked]
    return pa.array(rows, type=pa.list_(pa.field("item", TOP_WORD_TYPE, nullable=False)))


@dataclass(frozen=True)
class Explained:
    """A scored batch's explanations: the top_words column, each review's completeness error and every
    word's weight, for every review of the batch or for the sampled ones (`rows`)."""

    top_words: pa.Array
    completeness_error: np.ndarray
    rows: np.ndarray | None = None
    """The batch's rows explained (a sample, for the summary only); None: every row, in order."""
    word_weights: tuple[dict[str, float], ...] = ()
    """Per explained review, each distinct word's summed weight: the run's summary ranks words by these."""

    @classmethod
    def of(cls, words: Sequence[Sequence[str]], attributions, k: int, rows: np.ndarray | None = None) -> Explained:
        """The explanations of `words` (each review's) from their `attributions`, k words per review in
        top_words; `rows`: the batch's rows they are, when a sample."""
        ranked = [word_weights(ws, wt) for ws, wt in zip(words, attributions.weights, strict=True)]
        return cls(_top_words_column(ranked, k), attributions.completeness_error, rows, tuple(dict(r) for r in ranked))


@dataclass(frozen=True)
class ExplanationStatistics:
    """What the run summary and report say about a run's explanations, as sums that add across batches."""

    reviews: int
    by_gradients: int
    """Reviews with a completeness error: those explained by integrated gradients (occlusion has none)."""
    incomplete: int
    """Reviews whose completeness error exceeds COMPLETENESS_TOLERANCE."""
    error_sum: float
    error_max: float
    words: tuple[dict[str, tuple[float, int]], ...]
    """Per predicted class (the manifest's order), every word of the reviews explained with that label:
    the sum of its weights in them (towards the label) and how many of them it is in. Sums, so that they
    add across batches and workers; `summary` ranks words by their mean."""
    class_reviews: tuple[int, ...]
    """Per predicted class, the reviews explained with that label."""

    @classmethod
    def of(cls, explained: Explained, predicted: np.ndarray, classes: int) -> ExplanationStatistics:
        """`predicted`: the whole batch's labels."""
        if explained.rows is not None:
            predicted = predicted[explained.rows]
        words: tuple[dict[str, tuple[float, int]], ...] = tuple({} for _ in range(classes))
        reviews = [0] * classes
        for totals, label in zip(explained.word_weights, predicted.tolist(), strict=True):
            sums = words[label]
            reviews[label] += 1
            for word, weight in totals.items():
                total, n = sums.get(word, (0.0, 0))
                sums[word] = (total + weight, n + 1)
        error = np.asarray(explained.completeness_error, dtype=np.float64)
        measured = error[~np.isnan(error)]
        return cls(
            len(error),
            len(measured),
            int((measured > COMPLETENESS_TOLERANCE).sum()),
            float(measured.sum()),
            float(measured.max(initial=0.0)),
            words,
            tuple(reviews),
        )

    @classmethod
    def empty(cls, classes: int) -> ExplanationStatistics:
        return cls(0, 0, 0, 0.0, 0.0, tuple({} for _ in range(classes)), (0,) * classes)

    def __add__(self, other: ExplanationStatistics) -> ExplanationStatistics:
        merged = []
        for mine, theirs in zip(self.words, other.words, strict=True):
            total = dict(mine)
            for word, (weight, n) in theirs.items():
                had, seen = total.get(word, (0.0, 0))
                total[word] = (had + weight, seen + n)
            merged.append(total)
        return ExplanationStatistics(
            self.reviews + other.reviews,
            self.by_gradients + other.by_gradients,
            self.incomplete + other.incomplete,
            self.error_sum + other.error_sum,
            max(self.error_max, other.error_max),
            tuple(merged),
            tuple(a + b for a, b in zip(self.class_reviews, other.class_reviews, strict=True)),
        )

    def __radd__(self, other):
        return self if isinstance(other, int) and other == 0 else NotImplemented

    def summary(self, class_names: Sequence[str], settings: ExplainSettings, most: int = WORDS_SHOWN) -> dict:
        return {
            **settings.describe(),
            "reviews": self.reviews,
            "completeness_error": {
                "mean": round(self.error_sum / self.by_gradients, 6) if self.by_gradients else None,
                "max": round(self.error_max, 6) if self.by_gradients else None,
                "share_above_tolerance": round(self.incomplete / self.by_gradients, 6) if self.by_gradients else None,
                "tolerance": COMPLETENESS_TOLERANCE,
            },
            "words_by_class": {
                name: ranked_words(sums, reviews, most)
                for name, sums, reviews in zip(class_names, self.words, self.class_reviews, strict=True)
            },
        }


def ranked_words(sums: dict[str, tuple[float, int]], reviews: int, most: int) -> dict:
    """One class's words by what they do: the mean weight over the explained reviews of the class that
    contain the word, strongest first, among words in at least min_word_reviews(reviews) of them and
    pushing towards the class. Counting how often a word is among a review's strongest instead ranks the
    most frequent words first ("and", "it", "the"), whatever they do."""
    fewest = min_word_reviews(reviews)
    means = [(word, total / n, n) for word, (total, n) in sums.items() if n >= fewest and total > 0]
    means.sort(key=lambda item: (-item[1], item[0]))
    return {
        "reviews": reviews,
        "min_reviews": fewest,
        "words": [{"word": w, "mean_weight": round(mean, 4), "reviews": n} for w, mean, n in means[:most]],
    }


def min_word_reviews(reviews: int) -> int:
    """The fewest of a class's `reviews` a word is in to be ranked for it (WORD_MIN_REVIEWS, WORD_MIN_SHARE)."""
    return max(WORD_MIN_REVIEWS, math.ceil(WORD_MIN_SHARE * reviews))
