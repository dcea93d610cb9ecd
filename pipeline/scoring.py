"""The scoring pipeline: read reviews, encode them as the bundle was trained, RunInference, write Parquet.

`build_pipeline(p, source, sink, model)` wires the graph and nothing else, so a test can run it on
DirectRunner exactly as `reviewscore score` does. Every record ends in exactly one place: a scored
row or an error row. The counts of both, and of the records read, are computed by the pipeline
itself and written to _SUMMARY.json, so a Dataflow job reports them too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import PredictionResult, RunInference
from apache_beam.pvalue import AsList, AsSingleton, TaggedOutput

from pipeline.labels import Labels
from pipeline.model_handler import EncodedReview, ReviewModelHandler
from pipeline.scorer import DEFAULT_MAX_BATCH_SIZE, ScorerSettings
from pipeline.sinks import ScoredSink, WriteSummary, write_errors, write_scored
from pipeline.sources import Failure, InputPlan, ReadReviews, Review
from schemas.output import LABEL_PROBS, MODEL_VERSION, PREDICTED_LABEL, SCORE

NAMESPACE = "reviewscore"
FAILED = "failed"
log = logging.getLogger("reviewscore")


@dataclass(frozen=True)
class ReviewSource:
    plan: InputPlan
    text_column: str = "text"
    id_column: str = "review_id"


@dataclass(frozen=True)
class ScoringModel:
    bundle_uri: str
    model_version: str
    labels: Labels
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    scorer: ScorerSettings = field(default_factory=ScorerSettings)

    def handler(self) -> ReviewModelHandler:
        return ReviewModelHandler(
            self.bundle_uri,
            max_batch_size=self.max_batch_size,
            settings=self.scorer,
        )


class SplitFailures(beam.DoFn):
    """Reviews go on; Failures go to the FAILED output. Counts every record read."""

    def __init__(self):
        self.read = beam.metrics.Metrics.counter(NAMESPACE, "records_read")

    def process(self, record: Review | Failure):
        self.read.inc()
        if isinstance(record, Failure):
            yield TaggedOutput(FAILED, record)
        else:
            yield record


class EncodeReviews(beam.DoFn):
    """Batches of reviews to token ids with the bundle's own encoder, in vectorized calls.

    A batch is split across one thread per core: the encoder's pyarrow kernels release the GIL,
    and while this step runs the model's threads are idle (BENCHMARKS.md: 1.6x on two cores).
    A null text or a review with no token left after cleaning (empty, whitespace, only markup or
    punctuation) cannot be scored meaningfully: it becomes a 'preprocess' failure. A review whose
    tokens are all unknown words is scored: the model was trained to see unknown ids.
    """

    def __init__(self, bundle_uri: str, threads: int = 0):
        self.bundle_uri = bundle_uri
        self.threads = threads
        self.encoder = None
        self.pool = None

    def setup(self):
        from pipeline.bundle import open_bundle
        from pipeline.scorer import available_cores

        self.encoder = open_bundle(self.bundle_uri).encoder
        self.workers = self.threads or available_cores()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="encode") if self.workers > 1 else None

    def teardown(self):
        if self.pool is not None:
            self.pool.shutdown(wait=False)

    def process(self, batch: list[Review]) -> Iterator[Any]:
        try:
            encoded = self.encoder.encode_rows([review.text for review in batch], self.pool, self.workers)
        except Exception:  # isolate the culprit instead of failing the batch
            for review in batch:
                yield from self._encode_one(review)
            return
        for review, ids in zip(batch, encoded, strict=True):
            yield self._checked(review, ids)

    def _encode_one(self, review: Review) -> Iterator[Any]:
        try:
            yield self._checked(review, self.encoder.encode([review.text]).row(0))
        except Exception as e:
            yield TaggedOutput(FAILED, Failure(review.review_id, review.source, "preprocess", repr(e)))

    @staticmethod
    def _checked(review: Review, ids: np.ndarray):
        if review.text is None:
            return TaggedOutput(FAILED, Failure(review.review_id, review.source, "read", "text is null"))
        if len(ids) == 0:
            return TaggedOutput(
                FAILED, Failure(review.review_id, review.source, "preprocess", "no words left after cleaning")
            )
        return EncodedReview(review, ids)


class ToScoredRow(beam.DoFn):
    """A PredictionResult back to the input row plus predicted_label, score, label_probs and model_version."""

    def __init__(self, labels: Labels, progress_every_seconds: float | None):
        self.labels = labels
        self.progress_every_seconds = progress_every_seconds
        self.scored = beam.metrics.Metrics.counter(NAMESPACE, "records_scored")

    def setup(self):
        self._count = 0
        self._started = self._last_report = time.monotonic()

    def process(self, result: PredictionResult) -> Iterator[dict[str, Any]]:
        row = dict(result.example.review.columns)
        row[PREDICTED_LABEL], row[SCORE], row[LABEL_PROBS] = self.labels.row(result.inference)
        row[MODEL_VERSION] = result.model_id
        self.scored.inc()
        self._report_progress()
        yield row

    def _report_progress(self):
        self._count += 1
        if self.progress_every_seconds is None:
            return
        now = time.monotonic()
        if now - self._last_report >= self.progress_every_seconds:
            self._last_report = now
            rate = self._count / (now - self._started)
            log.warning("progress: worker %d scored %d reviews (%.0f reviews/s)", os.getpid(), self._count, rate)


def failure_row(failure: Failure) -> dict[str, Any]:
    return failure._asdict()


def failed_batch_rows(batch_and_error) -> Iterator[dict[str, Any]]:
    """RunInference's dead-letter output is (batch, error); each review of the batch becomes an error row."""
    batch, error = batch_and_error
    for item in batch:
        yield failure_row(Failure(item.review.review_id, item.review.source, "inference", str(error)[:2000]))


def build_pipeline(
    p: beam.Pipeline,
    source: ReviewSource,
    sink: ScoredSink,
    model: ScoringModel,
    *,
    started: float | None = None,
    progress_every_seconds: float | None = None,
    encode_batch_size: int = 1024,
):
    """Wire the scoring graph onto `p`; returns the PCollection holding the run summary."""
    started = time.time() if started is None else started
    records = p | "Read" >> ReadReviews(source.plan, source.text_column, source.id_column)
    reviews, read_failures = records | "CountRead" >> beam.ParDo(SplitFailures()).with_outputs(FAILED, main="reviews")

    encoded, encode_failures = (
        reviews
        | "BatchForEncoding" >> beam.BatchElements(min_batch_size=encode_batch_size, max_batch_size=encode_batch_size)
        | "Encode"
        >> beam.ParDo(EncodeReviews(model.bundle_uri, model.scorer.threads)).with_outputs(FAILED, main="encoded")
    )
    predictions, dead_letters = encoded | "Score" >> RunInference(model.handler()).with_exception_handling()
    scored = predictions | "ToScoredRow" >> beam.ParDo(ToScoredRow(model.labels, progress_every_seconds))

    failures = (
        (read_failures, encode_failures) | "AllFailures" >> beam.Flatten() | "FailureRows" >> beam.Map(failure_row)
    )
    inference_failures = dead_letters.failed_inferences | "InferenceFailureRows" >> beam.FlatMap(failed_batch_rows)
    errors = (failures, inference_failures) | "ErrorRows" >> beam.Flatten()

    scored_files = write_scored(scored, sink)
    error_files = write_errors(errors, sink)

    def count(pcoll, label):
        return AsSingleton(pcoll | label >> beam.combiners.Count.Globally())

    labels = (
        scored
        | "Labels" >> beam.Map(lambda row: row[PREDICTED_LABEL])
        | "CountLabels" >> beam.combiners.Count.PerElement()
    )
    return (
        p
        | "SummaryTrigger" >> beam.Create([None])
        | "WriteSummary"
        >> beam.ParDo(
            WriteSummary(sink, started, model.model_version),
            read=count(records, "CountRecordsRead"),
            scored=count(scored, "CountScored"),
            failed=count(errors, "CountFailed"),
            labels=AsList(labels),
            scored_files=AsList(scored_files),
            error_files=AsList(error_files),
        )
    )
