"""The RunInference ModelHandler for reviewscore bundles.

Like Beam's own handlers, it only knows how to load a model and run it on a batch; the pipeline
never sees how. RunInference calls `load_model` once per worker process and shares the result
between the process's threads (Beam's `shared.Shared`), so a worker holds one copy of the model.

Each element is already a batch (EncodedReviews: up to `max_batch_size` reviews read together), so
RunInference's own batching is set to one element per call; the scorer (`pipeline/scorer.py`)
sorts the batch's reviews by length and runs the model on slices of `settings.batch_size`. Sorting
here rather than in Beam: Beam 2.77's `batch_length_fn` only buckets on the stateful,
streaming-oriented path (it needs `max_batch_duration_secs`), and SortAndBatchElements buffers a
whole bundle in memory. With masking, padding never changes a score, so the result is the same as
scoring every review alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline.preprocessing import EncodedBatch
from pipeline.scorer import ScorerSettings
from pipeline.sources import ReviewBatch

log = logging.getLogger("reviewscore")


def engine_metric(engine: str) -> str:
    """Counter of the reviews `engine` scored; the launcher reads it back for the summary."""
    return f"reviews_scored_by_{engine}"


class EncodedReviews(NamedTuple):
    reviews: ReviewBatch
    ids: EncodedBatch
    """The rows' token ids, flat with offsets: Beam pickles elements to estimate their size, and two
    arrays pickle in a millisecond where 4,096 small ones take 65 ms (BENCHMARKS.md, "Profile")."""


@dataclass
class LoadedModel:
    version: str
    score: Any
    """CalibratedScorer: a sequence of int32 id arrays to float32 (rows, classes) calibrated probabilities."""


def load_scorer(bundle_uri: str, settings: ScorerSettings) -> LoadedModel:
    """The bundle's calibrated scorer on the engine `settings` name, loaded once per process.

    The launcher loads it first, to report a model that cannot load as a configuration error before
    any work starts; on a local runner the pipeline then runs in the same process and reuses it
    instead of loading and compiling the model a second time.
    """
    key = (bundle_uri, settings)
    if key not in _LOADED:
        from pipeline.bundle import open_bundle
        from pipeline.scorer import bundle_scorer

        started = time.monotonic()
        bundle = open_bundle(bundle_uri)
        scorer = bundle_scorer(bundle, settings)
        log.info(
            "model %s loaded in %.1f s; engine %s%s",
            bundle.model_version,
            time.monotonic() - started,
            scorer.engine,
            f" ({scorer.reason})" if scorer.reason else "",
        )
        _LOADED[key] = LoadedModel(bundle.model_version, scorer)
    return _LOADED[key]


_LOADED: dict[tuple[str, ScorerSettings], LoadedModel] = {}


class ReviewModelHandler(ModelHandler[EncodedReviews, PredictionResult, LoadedModel]):
    def __init__(self, bundle_uri: str, *, settings: ScorerSettings | None = None):
        # One element per call: each element is a batch of reviews read together, already as large
        # as the job's --batch-size.
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.bundle_uri = bundle_uri
        self.settings = settings or ScorerSettings()

    def load_model(self) -> LoadedModel:
        return load_scorer(self.bundle_uri, self.settings)

    def run_inference(
        self,
        batch: Sequence[EncodedReviews],
        model: LoadedModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """One PredictionResult per element: its (rows, classes) probabilities."""
        results = []
        for item in batch:
            probabilities = model.score(item.ids.rows())
            Metrics.counter(self.get_metrics_namespace(), engine_metric(model.score.engine)).inc(len(item.ids))
            results.append(PredictionResult(item, probabilities, model.version))
        return results

    def get_num_bytes(self, batch: Sequence[EncodedReviews]) -> int:
        return sum(item.ids.ids.nbytes for item in batch)

    def get_metrics_namespace(self) -> str:
        return "reviewscore"
