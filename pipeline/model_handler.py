"""The RunInference ModelHandler for reviewscore bundles.

Like Beam's own handlers, it only knows how to load a model and run it on a batch; the pipeline
never sees how. RunInference calls `load_model` once per worker process and shares the result
between the process's threads (Beam's `shared.Shared`), so a worker holds one copy of the model.

Length-aware batching happens here rather than in BatchElements: Beam 2.77's `batch_length_fn`
only buckets on the stateful, streaming-oriented path (it needs `max_batch_duration_secs`), and
SortAndBatchElements buffers a whole bundle in memory. Instead BatchElements hands us up to
`max_batch_size` encoded reviews; we sort them by length and run the model on slices of
`inference_batch_size`, each padded only to its own longest review. With masking, padding never
changes a score, so the result is the same as scoring every review alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline.preprocessing import pad_rows
from pipeline.sources import Review

# Measured on the 2-core build machine (BENCHMARKS.md): 64 rows per model call was fastest.
DEFAULT_MAX_BATCH_SIZE = 1024
DEFAULT_INFERENCE_BATCH_SIZE = 64


class EncodedReview(NamedTuple):
    review: Review
    ids: np.ndarray


@dataclass
class LoadedModel:
    version: str
    predict: Any
    """Compiled function: int32 (batch, time) ids to float32 (batch,) positive-class probabilities."""


def compile_predict(model):
    """A tf.function over any batch size and length, traced once instead of once per shape."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True)
    def predict(ids):
        return model(ids, training=False)[:, -1]

    return predict


class ReviewModelHandler(ModelHandler[EncodedReview, PredictionResult, LoadedModel]):
    def __init__(
        self,
        bundle_uri: str,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        inference_batch_size: int = DEFAULT_INFERENCE_BATCH_SIZE,
        min_batch_size: int = 1,
    ):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.bundle_uri = bundle_uri
        self.inference_batch_size = inference_batch_size

    def load_model(self) -> LoadedModel:
        from pipeline.bundle import open_bundle

        bundle = open_bundle(self.bundle_uri)
        return LoadedModel(bundle.model_version, compile_predict(bundle.load_model()))

    def run_inference(
        self,
        batch: Sequence[EncodedReview],
        model: LoadedModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        scores = score_rows([item.ids for item in batch], model.predict, self.inference_batch_size)
        return [PredictionResult(item, float(score), model.version) for item, score in zip(batch, scores, strict=True)]

    def get_num_bytes(self, batch: Sequence[EncodedReview]) -> int:
        return sum(item.ids.nbytes for item in batch)

    def get_metrics_namespace(self) -> str:
        return "reviewscore"


def score_rows(rows: Sequence[np.ndarray], predict, inference_batch_size: int) -> np.ndarray:
    """Scores in input order, computed on length-sorted slices padded to their own longest row."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    order = np.argsort(lengths, kind="stable")
    scores = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), inference_batch_size):
        members = order[start : start + inference_batch_size]
        scores[members] = np.asarray(predict(pad_rows([rows[i] for i in members])))
    return scores
