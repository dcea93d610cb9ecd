"""The scoring pipeline: read reviews, encode them as the bundle was trained, RunInference, write Parquet.

Reviews move through the graph as Arrow batches of up to `max_batch_size` rows, from the Parquet
reader to the Parquet writer: encoding, scoring and the label columns are array operations, and
Beam's per-element cost is paid once per batch, not once per review. Only failures (rare) are
single elements.

`build_pipeline(p, source, sink, model)` wires the graph and nothing else, so a test can run it on
DirectRunner exactly as `reviewscore score` does. Every record ends in exactly one place: a scored
row or an error row. The counts of both, and of the records read, are computed by the pipeline
itself (`pipeline/job/tallies.py`), summarized once every record is counted
(`pipeline/job/summarize.py`) and written to _SUMMARY.json (`pipeline/job/sinks.py`), so a
Dataflow job reports them too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.ml.inference.base import PredictionResult, RunInference
from apache_beam.pvalue import AsList, AsSingleton, TaggedOutput
from apache_beam.utils import shared

from pipeline.job.metrics import NAMESPACE
from pipeline.job.model_handler import (
    EncodedReviews,
    LoadedModel,
    ReviewModelHandler,
    ScoredBatch,
    ShadowModelHandler,
    ShadowReviews,
)
from pipeline.job.sinks import PublishShards, ScoredSink, WriteSummary, write_errors, write_scored
from pipeline.job.sources import FAILED, Failure, InputPlan, ReadReviews, ReviewBatch
from pipeline.job.summarize import RunContext, ShadowContext, Summarize
from pipeline.job.tallies import add_tallies, failed_tally, read_tally, scored_tally, shadow_tally, statistics_tally
from pipeline.job.verdict import RunPolicy
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.length_order import DEFAULT_MAX_BATCH_SIZE
from pipeline.model.explain.explainer import Explained, ExplainSettings, sampled_rows
from pipeline.model.labels import Labels
from pipeline.model.monitoring.training_profile import TrainingProfile
from pipeline.model.preprocessing import EncodedBatch
from pipeline.model.progress import RunProgress, Step, WorkerCount, WorkerLines
from schemas.output import (
    INFERENCE_STAGE,
    MODEL_VERSION,
    PREPROCESS_STAGE,
    READ_STAGE,
    REVIEW_ID,
    TEXT,
    TOP_WORDS,
)
from schemas.output_names import SHADOW_PREFIX
from schemas.summary import Lineage, ModelLineage

log = logging.getLogger("reviewscore")


@dataclass(frozen=True)
class ReviewSource:
    plan: InputPlan
    text_column: str = TEXT
    id_column: str = REVIEW_ID


@dataclass(frozen=True)
class ScoringModel:
    bundle_uri: str
    model_version: str
    labels: Labels
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    manifest: dict[str, Any] = field(default_factory=dict)
    """The bundle's manifest, shown in the run's report."""
    profile: TrainingProfile | None = None
    """The bundle's training profile, for the run's drift checks and report."""
    shared_model: shared.Shared = field(default_factory=shared.Shared, compare=False)
    """The handle every handler of this model loads through: one copy per process (ReviewModelHandler),
    which the explanation step (ExplainReviews) acquires too."""

    def handler(self, kind: type[ReviewModelHandler] = ReviewModelHandler) -> ReviewModelHandler:
        return kind(self.bundle_uri, settings=self.scorer, explain=self.explain, shared_model=self.shared_model)


@dataclass(frozen=True)
class Shadow:
    """A second bundle that scores the same reviews beside the run's (--shadow-model): its own
    ScoringModel (its own handle, so one copy of each model per worker process) and its lineage."""

    model: ScoringModel
    lineage: ModelLineage


class CountRead(beam.DoFn):
    """Batches go on; Failures go to the FAILED output. Counts every record read."""

    def __init__(self):
        self.read = beam.metrics.Metrics.counter(NAMESPACE, "records_read")

    def process(self, record: ReviewBatch | Failure):
        if isinstance(record, Failure):
            self.read.inc()
            yield TaggedOutput(FAILED, record)
        else:
            self.read.inc(len(record))
            yield record


class EncodeReviews(beam.DoFn):
    """A batch of reviews to token ids with the bundle's own encoder, in vectorized calls.

    The batch is split across one thread per core: the encoder's pyarrow kernels release the GIL,
    and while this step runs the model's threads are idle (BENCHMARKS.md#levers).
    A null text or a review with no token left after cleaning (empty, whitespace, only markup or
    punctuation) cannot be scored meaningfully: it becomes a failure. A review whose tokens are all
    unknown words is scored: the model was trained to see unknown ids.
    """

    def __init__(self, bundle_uri: str, text_column: str, threads: int = 0, explain_share: float = 0.0):
        self.bundle_uri = bundle_uri
        self.text_column = text_column
        self.threads = threads
        self.explain_share = explain_share
        """The share of reviews to explain (ExplainSettings.share): 1 keeps the word each id stands for
        of every review (top_words names them); less keeps them for a sample chosen by review id."""
        self.words = explain_share >= 1.0
        self.encoder = None
        self.pool = None

    def setup(self):
        from pipeline.job.locations import read_file
        from pipeline.model.bundle import open_bundle
        from pipeline.model.engines.length_order import available_cores

        self.encoder = open_bundle(self.bundle_uri, read_file).encoder
        self.workers = self.threads or available_cores()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="encode") if self.workers > 1 else None

    def teardown(self):
        if self.pool is not None:
            self.pool.shutdown(wait=False)

    def process(self, batch: ReviewBatch) -> Iterator[Any]:
        sampling = 0.0 < self.explain_share < 1.0
        for output in self._encoded(batch):
            yield self._with_sample(output) if sampling else output

    def _encoded(self, batch: ReviewBatch) -> Iterator[Any]:
        texts = batch.table.column(self.text_column)
        try:
            if self.words:
                encoded, words = self.encoder.encode_words(texts)
            else:
                encoded, words = self.encoder.encode_parallel(texts, self.pool, self.workers), None
        except Exception:  # isolate the culprit instead of failing the batch
            yield from self._encode_one_by_one(batch, texts)
            return
        yield from self._checked(batch, texts, encoded, words=words)

    def _with_sample(self, output):
        """Encoded reviews with the sample to explain (and its words); failures pass unchanged."""
        if not isinstance(output, EncodedReviews):
            return output
        rows = sampled_rows(output.reviews.ids, self.explain_share)
        if not len(rows):
            return output
        texts = output.reviews.table.column(self.text_column).take(pa.array(rows))
        return output._replace(words=self.encoder.encode_words(texts)[1], explain_rows=rows)

    def _encode_one_by_one(self, batch: ReviewBatch, texts) -> Iterator[Any]:
        rows, words, failed = [], [], []
        for i, text in enumerate(texts.to_pylist()):
            try:
                encoded, kept = self.encoder.encode_words([text])
                rows.append(encoded.row(0))
                words.append(kept[0])
            except Exception as e:
                failed.append(i)
                for failure in batch.failures([i], PREPROCESS_STAGE, repr(e)):
                    yield TaggedOutput(FAILED, failure)
                rows.append(np.zeros(0, np.int32))
                words.append([])
        keep = np.ones(len(batch), dtype=bool)
        keep[failed] = False
        yield from self._checked(batch, texts, EncodedBatch.from_rows(rows), keep, words if self.words else None)

    @staticmethod
    def _checked(batch: ReviewBatch, texts, encoded: EncodedBatch, keep: np.ndarray | None = None, words=None):
        """The batch's scorable rows with their ids; a Failure for each null or empty review."""
        keep = np.ones(len(batch), dtype=bool) if keep is None else keep
        null = texts.is_null().to_numpy(zero_copy_only=False)
        empty = (encoded.lengths == 0) & ~null & keep
        for failure in batch.failures(np.flatnonzero(null & keep), READ_STAGE, "text is null"):
            yield TaggedOutput(FAILED, failure)
        for failure in batch.failures(np.flatnonzero(empty), PREPROCESS_STAGE, "no words left after cleaning"):
            yield TaggedOutput(FAILED, failure)
        keep &= ~null & ~empty
        if keep.all():
            yield EncodedReviews(batch, encoded, words)
        elif keep.any():
            kept = np.flatnonzero(keep)
            yield EncodedReviews(
                batch.filter(pa.array(keep)), encoded.take(kept), None if words is None else [words[i] for i in kept]
            )


class EncodeForShadow(EncodeReviews):
    """After the run's model scored a batch: its texts encoded with the shadow bundle's own preprocessing
    and vocabulary, for the shadow model's RunInference (ShadowReviews). In the same fused chain as the
    run's scoring: the batch goes on as it is, with no shuffle between the two models.

    A review the shadow's encoding leaves no word of (its cleaning may differ), or cannot encode, is
    not given to the shadow model: its row keeps null shadow columns, and the summary counts it."""

    def process(self, result: PredictionResult) -> Iterator[ShadowReviews]:
        texts = result.example.reviews.table.column(self.text_column)
        try:
            encoded = self.encoder.encode_parallel(texts, self.pool, self.workers)
        except Exception:  # keep what the shadow can encode, review by review
            encoded = EncodedBatch.from_rows([self._encoded_or_empty(text) for text in texts.to_pylist()])
        rows = np.flatnonzero(encoded.lengths > 0)
        yield ShadowReviews(result, encoded.take(rows) if len(rows) else None, rows)

    def _encoded_or_empty(self, text: str | None) -> np.ndarray:
        try:
            return self.encoder.encode_words([text])[0].row(0)
        except Exception:
            return np.zeros(0, np.int32)


def shadow_step(predictions, shadow: Shadow | None, text_column: str):
    """(what ToScoredBatch takes, the shadow's tallies): without a shadow, the run's predictions; with
    one, the shadow model's PredictionResults, each carrying the run's model's (ShadowReviews)."""
    if shadow is None:
        return predictions, ()
    encoded = predictions | "ShadowEncode" >> beam.ParDo(
        EncodeForShadow(shadow.model.bundle_uri, text_column, shadow.model.scorer.threads)
    )
    scored = encoded | "ShadowScore" >> RunInference(shadow.model.handler(ShadowModelHandler))
    tally = scored | "TallyShadow" >> beam.Map(shadow_tally, shadow.model.labels, text_column)
    return scored, (tally,)


class ExplainReviews(beam.DoFn):
    """Explains each scored batch's sampled or requested rows (`EncodedReviews.words`, `explain_rows`),
    after RunInference and apart from it: explanations never change a score.

    It explains with the process's copy of the model, the one RunInference scored with, acquired
    through the same `shared.Shared` handle and key (`ReviewModelHandler.load_model`): never a
    second load. RunInference hands it the logits of those rows (`ScoredBatch.logits`), so occlusion
    scores only the occluded variants. A batch that cannot be explained fails as a whole, at the
    inference stage, as its scoring would have."""

    def __init__(self, handler: ReviewModelHandler, progress: WorkerCount | None = None):
        self.handler = handler
        self.progress = progress
        """Counts the reviews explained as they are (explaining one batch can take minutes)."""
        self.model: LoadedModel | None = None

    def setup(self):
        self.model = self.handler.load_model()

    def process(self, result: PredictionResult) -> Iterator[Any]:
        scored: ScoredBatch = result.inference
        if scored.logits is None or self.model.explain is None:
            yield result
            return
        item: EncodedReviews = result.example
        try:
            explained = self._explained(item, scored)
        except Exception as e:
            for failure in item.reviews.failures(range(len(item.reviews)), INFERENCE_STAGE, str(e)[:2000]):
                yield TaggedOutput(FAILED, failure)
            return
        yield result._replace(inference=replace(scored, explained=explained, logits=None))

    def _explained(self, item: EncodedReviews, scored: ScoredBatch) -> Explained:
        """The batch's explanations: of every review, or of its sampled rows (`item.explain_rows`)."""
        predicted = self.model.labels.predicted(scored.probabilities)
        chosen = item.explain_rows
        if chosen is None:
            rows = item.ids.rows()
        else:
            rows, predicted = [item.ids.row(i) for i in chosen], predicted[chosen]
        attributions = self.model.explain(rows, predicted, scored.logits, self.progress, item.words)
        return Explained.of(item.words, attributions, self.model.top_k, chosen)


def explain_step(predictions, model: ScoringModel, handler: ReviewModelHandler, progress: WorkerCount | None):
    """(the scored batches, with their explanations if the run explains; the failures explaining)."""
    if not model.explain.active:
        return predictions, ()
    explained, failures = predictions | "Explain" >> beam.ParDo(ExplainReviews(handler, progress)).with_outputs(
        FAILED, main="explained"
    )
    return explained, (failures,)


class ToScoredBatch(beam.DoFn):
    """A scored batch as the output's Arrow table: the input columns, then predicted_label, score,
    label_probs and model_version, all built as columns; then, with a shadow model, its own four
    (`shadow_columns`)."""

    def __init__(
        self, labels: Labels, schema: pa.Schema, progress: WorkerCount | None = None, shadow: Labels | None = None
    ):
        self.labels = labels
        self.schema = schema
        self.progress = progress
        self.shadow = shadow
        """The shadow model's labels: each element is then its PredictionResult (a ShadowReviews)."""
        self.scored = beam.metrics.Metrics.counter(NAMESPACE, "records_scored")

    def process(self, result: PredictionResult) -> Iterator[pa.Table]:
        shadowed = None
        if self.shadow is not None:
            shadowed, result = result, result.example.champion
        batch: ReviewBatch = result.example.reviews
        scored: ScoredBatch = result.inference
        columns = self.labels.columns(scored.probabilities)
        columns[MODEL_VERSION] = pa.repeat(pa.scalar(result.model_id, pa.string()), len(batch))
        if scored.explained is not None and scored.explained.rows is None:
            columns[TOP_WORDS] = scored.explained.top_words
        if shadowed is not None:
            columns.update(shadow_columns(shadowed, self.shadow, len(batch)))
        table = batch.table
        for name, column in columns.items():
            table = table.append_column(name, column)
        self.scored.inc(len(batch))
        if self.progress is not None:
            self.progress.add(len(batch))
        yield conform(table, self.schema)


def shadow_columns(result: PredictionResult, labels: Labels, rows: int) -> dict[str, pa.Array]:
    """The shadow model's four columns for a batch of `rows`: null where it did not score a review
    (none at all where its model call failed: `conform` fills them with nulls)."""
    item: ShadowReviews = result.example
    scored: ScoredBatch | None = result.inference
    if scored is None:
        return {}
    columns = labels.columns(scored.probabilities)
    columns[MODEL_VERSION] = pa.repeat(pa.scalar(result.model_id, pa.string()), len(item.rows))
    where = np.full(rows, -1, np.int64)
    where[item.rows] = np.arange(len(item.rows))
    take = pa.array(where, mask=where < 0)  # a null index takes a null
    return {SHADOW_PREFIX + name: column.take(take) for name, column in columns.items()}


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with the output schema's columns in order: a column another input file has and this
    one lacks is null here; types are the schema's (unified at launch, so the casts are safe)."""
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def failure_row(failure: Failure) -> dict[str, Any]:
    return failure.row()


def failed_batch_rows(batch_and_error) -> Iterator[dict[str, Any]]:
    """RunInference's dead-letter output is (batch, error); each review of the batch becomes an error row."""
    batch, error = batch_and_error
    for item in batch:
        for failure in item.reviews.failures(range(len(item.reviews)), INFERENCE_STAGE, str(error)[:2000]):
            yield failure_row(failure)


class CountedFailures:
    """Counts each failed review as handled (`progress`) and passes it on to `tally`: a review that
    fails is done with, so the scoring step's count reaches the job's total."""

    def __init__(self, tally, progress: WorkerCount):
        self.tally = tally
        self.progress = progress

    def __call__(self, row):
        self.progress.add(1)
        return self.tally(row)


def progress_steps(source: ReviewSource, model: ScoringModel) -> tuple[Step, Step | None]:
    """The steps a run's progress shows, with their totals as the launch counted them: every review
    is scored (or fails); explanations cover every review with --explain K, else about the sample."""
    reviews = source.plan.reviews
    share = model.explain.share(reviews)
    explained = None
    if share > 0:
        explained = Step("explanations", total=round(share * reviews), about=share < 1.0)
    return Step("scoring", total=reviews), explained


def log_start(source: ReviewSource, model: ScoringModel, announcement: str) -> None:
    """A local run's first line: how many reviews, on which engine, and how progress is shown, so
    that reading a large input before the first scored batch is not mistaken for a hang."""
    share = model.explain.share(source.plan.reviews)
    if model.explain.every_review:
        explaining = f", explaining {model.explain.top_k} words each by {model.explain.method}"
    elif share > 0:
        explaining = f", explaining a sample of about {round(share * source.plan.reviews)} by {model.explain.method}"
    else:
        explaining = ""
    log.warning(
        "scoring %s reviews on %s%s%s", f"{source.plan.reviews:,}", model.scorer.engine, explaining, announcement
    )


def build_pipeline(
    p: beam.Pipeline,
    source: ReviewSource,
    sink: ScoredSink,
    model: ScoringModel,
    *,
    started: float | None = None,
    progress: RunProgress | WorkerLines | None = None,
    policy: RunPolicy | None = None,
    lineage: Lineage | None = None,
    shadow: Shadow | None = None,
):
    """Wire the scoring graph onto `p`; returns the PCollection holding the run summary.

    `lineage`: what the launch recorded of the run, finished by the summary step. `progress`: how the
    workers count their work (RunProgress shows a local run's totals; WorkerLines logs on each worker)."""
    started = time.time() if started is None else started
    scoring, explaining = progress_steps(source, model)
    scored_count = explained_count = None
    if progress is not None:
        if progress.local:
            log_start(source, model, progress.announcement())
        scored_count = progress.count(scoring)
        explained_count = progress.count(explaining) if explaining is not None else None
    records = p | "Read" >> ReadReviews(source.plan, source.text_column, source.id_column, model.max_batch_size)
    reviews, read_failures = records | "CountRead" >> beam.ParDo(CountRead()).with_outputs(FAILED, main="reviews")

    encoded, encode_failures = reviews | "Encode" >> beam.ParDo(
        EncodeReviews(
            model.bundle_uri, source.text_column, model.scorer.threads, model.explain.share(source.plan.reviews)
        )
    ).with_outputs(FAILED, main="encoded")
    handler = model.handler()
    predictions, dead_letters = encoded | "Score" >> RunInference(handler).with_exception_handling()
    predictions, explain_failures = explain_step(predictions, model, handler, explained_count)
    both, shadow_tallies = shadow_step(predictions, shadow, source.text_column)
    shadow_labels = None if shadow is None else shadow.model.labels
    scored = both | "ToScoredBatch" >> beam.ParDo(ToScoredBatch(model.labels, sink.schema, scored_count, shadow_labels))

    failures = (
        (read_failures, encode_failures, *explain_failures)
        | "AllFailures" >> beam.Flatten()
        | "FailureRows" >> beam.Map(failure_row)
    )
    inference_failures = dead_letters.failed_inferences | "InferenceFailureRows" >> beam.FlatMap(failed_batch_rows)
    errors = (failures, inference_failures) | "ErrorRows" >> beam.Flatten()

    scored_files = write_scored(scored, sink)
    error_files = write_errors(errors, sink)

    # One combine for every count of the summary and the run's statistics: each element adds its
    # own tally, so a batch of 4,096 reviews is one addition, and the graph has one combine.
    failed = failed_tally if scored_count is None else CountedFailures(failed_tally, scored_count)
    tallies = (
        records | "TallyRead" >> beam.Map(read_tally),
        scored | "TallyScored" >> beam.Map(scored_tally),
        predictions | "TallyStatistics" >> beam.Map(statistics_tally, model.labels),
        errors | "TallyFailed" >> beam.Map(failed),
        *shadow_tallies,
    )
    counts = tallies | "Tallies" >> beam.Flatten() | "Count" >> beam.CombineGlobally(add_tallies)
    context = RunContext(
        model.model_version,
        model.labels.class_names,
        model.manifest,
        model.profile,
        model.explain if model.explain.active else None,
        policy or RunPolicy(),
        started,
        lineage,
        None if shadow is None else ShadowContext(shadow.lineage, shadow.model.profile),
    )
    return (
        p
        | "SummaryTrigger" >> beam.Create([None])
        | "PublishShards"
        >> beam.ParDo(PublishShards(sink), scored_files=AsList(scored_files), error_files=AsList(error_files))
        | "Summarize" >> beam.ParDo(Summarize(context), counts=AsSingleton(counts))
        | "WriteSummary" >> beam.ParDo(WriteSummary(sink))
    )
