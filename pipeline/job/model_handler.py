"""The RunInference ModelHandler for reviewscore bundles.

Like Beam's own handlers, it only knows how to load a model and run it on a batch; the pipeline
never sees how. RunInference calls `load_model` once per worker process and shares the result
between the process's threads (Beam's `shared.Shared`), so a worker holds one copy of the model.
The handler loads through a `shared.Shared` handle of its own, which the job's `ScoringModel` holds:
the launcher loads the model first, through the same handle, to report a model that cannot load
before any work starts, and a local run's workers, in the launcher's process, then acquire that
copy instead of loading and compiling the model again. The explanation step after RunInference
(`ExplainReviews`, pipeline/job/graph.py) acquires that same copy the same way: the handler only
scores, and hands it the logits of the rows it will explain, so that occlusion scores only the
occluded variants.

Each element is already a batch (EncodedReviews: up to `max_batch_size` reviews read together), so
RunInference's own batching is set to one element per call; the scorer (`pipeline/model/engines/`)
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.utils import shared

from pipeline.job.metrics import NAMESPACE, SHADOW_NAMESPACE
from pipeline.job.sources import ReviewBatch
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.explain import OCCLUSION
from pipeline.model.explain.explainer import Explained, ExplainSettings
from pipeline.model.labels import Labels
from pipeline.model.preprocessing import EncodedBatch

if TYPE_CHECKING:
    from pipeline.model.explain.explainer import Explainer

log = logging.getLogger("reviewscore")


def engine_metric(engine: str) -> str:
    """Counter of the reviews `engine` scored, for the runner's live metrics (Dataflow's job page); the
    summary counts engines in the pipeline itself (pipeline/job/tallies.py, ENGINE_PREFIX)."""
    return f"reviews_scored_by_{engine}"


class EncodedReviews(NamedTuple):
    reviews: ReviewBatch
    ids: EncodedBatch
    """The rows' token ids, flat with offsets: Beam pickles elements to estimate their size, and two
    arrays pickle far faster than thousands of small ones (BENCHMARKS.md#where-the-time-goes)."""
    words: list[list[str]] | None = None
    """The word each id stands for, per review explained (top_words names them)."""
    explain_rows: np.ndarray | None = None
    """The rows explained, when a sample (`words` are theirs); None: every row, if `words` is set."""


class ShadowReviews(NamedTuple):
    """A batch the run's model scored, on its way to the shadow model (--shadow-model): the run's
    model's result, and the batch's texts as the shadow bundle's own encoder encoded them."""

    champion: PredictionResult
    """The run's model's PredictionResult for the batch (its EncodedReviews and ScoredBatch)."""
    ids: EncodedBatch | None
    """The shadow's token ids of `rows`; None when it kept no row."""
    rows: np.ndarray
    """The batch's rows the shadow encoding kept (a review it leaves no word of is not scored by it)."""


@dataclass(frozen=True)
class ScoredBatch:
    """RunInference's result for one element: (rows, classes) probabilities; the explanation step
    adds the explanations of the rows it explains."""

    probabilities: np.ndarray
    explained: Explained | None = None
    engine: str = ""
    """The engine that scored the batch, and why it was chosen: decided where the model loaded (on a
    remote runner, the worker), so the summary reports what actually ran."""
    engine_reason: str = ""
    logits: np.ndarray | None = None
    """The engine's logits of the rows to explain (every row, or `EncodedReviews.explain_rows`), in
    that order; None when none is to be explained, and once they are."""


@dataclass
class LoadedModel:
    version: str
    score: Any
    """CalibratedScorer: a sequence of int32 id arrays to float32 (rows, classes) calibrated probabilities."""
    labels: Labels
    explain: Explainer | None = None
    top_k: int = 0


def load_scorer(bundle_uri: str, settings: ScorerSettings, explain: ExplainSettings | None = None) -> LoadedModel:
    """The bundle's calibrated scorer on the engine `settings` name, and its explainer if asked."""
    from pipeline.job.locations import read_file
    from pipeline.model.bundle import open_bundle
    from pipeline.model.engines.calibrated import bundle_scorer
    from pipeline.model.native_log import quiet_tensorflow

    quiet_tensorflow(verbose=log.isEnabledFor(logging.DEBUG))  # a worker's own process, before TensorFlow loads
    explain = explain or ExplainSettings()
    started = time.monotonic()
    bundle = open_bundle(bundle_uri, read_file)
    by_occlusion = explain.active and explain.method == OCCLUSION
    scorer = bundle_scorer(bundle, replace(settings, with_recurrence=by_occlusion))
    explainer = None
    if explain.active:
        from pipeline.model.explain.explainer import Explainer

        explainer = Explainer(bundle, explain, scorer.logits, recurrence=scorer.recurrence)
    log.info(
        "model %s loaded in %.1f s; engine %s%s%s",
        bundle.model_version,
        time.monotonic() - started,
        scorer.engine,
        f" ({scorer.reason})" if scorer.reason else "",
        f"; explaining by {explain.describe()['method']} on {explain.runs_on(scorer.engine)}" if explain.active else "",
    )
    return LoadedModel(bundle.model_version, scorer, Labels.of(bundle.manifest), explainer, explain.words_per_review)


class ReviewModelHandler(ModelHandler[EncodedReviews, PredictionResult, LoadedModel]):
    def __init__(
        self,
        bundle_uri: str,
        *,
        settings: ScorerSettings | None = None,
        explain: ExplainSettings | None = None,
        shared_model: shared.Shared | None = None,
    ):
        # One element per call: each element is a batch of reviews read together, already as large
        # as the job's --batch-size.
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.bundle_uri = bundle_uri
        self.settings = settings or ScorerSettings()
        self.explain = explain or ExplainSettings()
        self.shared_model = shared_model or shared.Shared()
        """One loaded model per process for every handler that holds this handle (and its pickled copies)."""

    def load_model(self) -> LoadedModel:
        """The process's copy of the model for these settings: loaded on first use, then shared.

        Beam's Shared holds it weakly: it stays while a worker (or the launcher) holds it."""
        key = (self.bundle_uri, self.settings, self.explain)
        return self.shared_model.acquire(lambda: load_scorer(*key), tag=key)

    def run_inference(
        self,
        batch: Sequence[EncodedReviews],
        model: LoadedModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """One PredictionResult per element: a ScoredBatch of its probabilities, with the logits of the
        rows the explanation step will explain (it explains after, and apart from, the scores: they
        never change one)."""
        results = []
        for item in batch:
            probabilities, logits = model.score.with_logits(item.ids.rows())
            Metrics.counter(self.get_metrics_namespace(), engine_metric(model.score.engine)).inc(len(item.ids))
            if model.explain is None or item.words is None:
                logits = None
            elif item.explain_rows is not None:
                logits = logits[item.explain_rows]
            scored = ScoredBatch(probabilities, None, model.score.engine, model.score.reason, logits)
            results.append(PredictionResult(item, scored, model.version))
        return results

    def get_num_bytes(self, batch: Sequence[EncodedReviews]) -> int:
        return sum(item.ids.ids.nbytes for item in batch)

    def get_metrics_namespace(self) -> str:
        return NAMESPACE


SHADOW_SCORED_METRIC = "shadow_reviews_scored"
"""Counter of the reviews the shadow model scored, for the runner's live metrics."""


class ShadowModelHandler(ReviewModelHandler):
    """The shadow bundle's handler: scores the rows of each ShadowReviews that its encoder kept.

    The run's model already scored the batch: a shadow model call that fails must not lose those
    rows, so it leaves the batch's shadow result empty (None, its rows then have null shadow columns
    and the summary counts them) instead of sending the batch to RunInference's failures."""

    def run_inference(
        self,
        batch: Sequence[ShadowReviews],
        model: LoadedModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        results = []
        for item in batch:
            scored = None
            if item.ids is not None:
                try:
                    probabilities = model.score(item.ids.rows())
                    scored = ScoredBatch(probabilities, None, model.score.engine, model.score.reason)
                    Metrics.counter(NAMESPACE, SHADOW_SCORED_METRIC).inc(len(item.rows))
                except Exception as e:  # the run's rows stand; the shadow's are counted as failed
                    log.warning("the shadow model could not score a batch of %d reviews: %r", len(item.rows), e)
            results.append(PredictionResult(item, scored, model.version))
        return results

    def get_num_bytes(self, batch: Sequence[ShadowReviews]) -> int:
        return sum(item.ids.ids.nbytes for item in batch if item.ids is not None)

    def get_metrics_namespace(self) -> str:
        return SHADOW_NAMESPACE
