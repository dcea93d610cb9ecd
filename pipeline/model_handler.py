"""The RunInference ModelHandler for reviewscore bundles.

Like Beam's own handlers, it only knows how to load a model and run it on a batch; the pipeline
never sees how. RunInference calls `load_model` once per worker process and shares the result
between the process's threads (Beam's `shared.Shared`), so a worker holds one copy of the model.

BatchElements hands us up to `max_batch_size` encoded reviews; the scorer (`pipeline/scorer.py`)
sorts them by length and runs the model on slices of `settings.batch_size`. Sorting here rather
than in Beam: Beam 2.77's `batch_length_fn` only buckets on the stateful, streaming-oriented path
(it needs `max_batch_duration_secs`), and SortAndBatchElements buffers a whole bundle in memory.
With masking, padding never changes a score, so the result is the same as scoring every review alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline.scorer import DEFAULT_MAX_BATCH_SIZE, ScorerSettings
from pipeline.sources import Review

log = logging.getLogger("reviewscore")


def engine_metric(engine: str) -> str:
    """Counter of model loads that chose `engine`; the launcher reads it back for the summary."""
    return f"model_loads_engine_{engine}"


class EncodedReview(NamedTuple):
    review: Review
    ids: np.ndarray


@dataclass
class LoadedModel:
    version: str
    score: Any
    """Scorer: a sequence of int32 id arrays to float32 (rows, classes) calibrated probabilities, in order."""
    engine_reported: bool = False


class ReviewModelHandler(ModelHandler[EncodedReview, PredictionResult, LoadedModel]):
    def __init__(
        self,
        bundle_uri: str,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        settings: ScorerSettings | None = None,
    ):
        # Full batches, not BatchElements' adaptive sizes: it starts at one element and grows, and
        # small batches sort poorly and waste compiled calls (measured in BENCHMARKS.md).
        super().__init__(min_batch_size=max_batch_size, max_batch_size=max_batch_size)
        self.bundle_uri = bundle_uri
        self.settings = settings or ScorerSettings()

    def load_model(self) -> LoadedModel:
        from pipeline.bundle import open_bundle
        from pipeline.scorer import make_scorer

        started = time.monotonic()
        bundle = open_bundle(self.bundle_uri)
        scorer = make_scorer(bundle.load_model(), bundle.preprocessing.max_length, self.settings, bundle.calibration)
        log.info(
            "model %s loaded in %.1f s; engine %s%s",
            bundle.model_version,
            time.monotonic() - started,
            scorer.engine,
            f" ({scorer.reason})" if scorer.reason else "",
        )
        return LoadedModel(bundle.model_version, scorer)

    def run_inference(
        self,
        batch: Sequence[EncodedReview],
        model: LoadedModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        if not model.engine_reported:  # metrics count only inside a bundle, not in load_model
            model.engine_reported = True
            Metrics.counter(self.get_metrics_namespace(), engine_metric(model.score.engine)).inc()
        scores = model.score([item.ids for item in batch])
        return [PredictionResult(item, row, model.version) for item, row in zip(batch, scores, strict=True)]

    def get_num_bytes(self, batch: Sequence[EncodedReview]) -> int:
        return sum(item.ids.nbytes for item in batch)

    def get_metrics_namespace(self) -> str:
        return "reviewscore"
