"""Choosing a scoring engine for a bundle and turning its logits into calibrated probabilities.

The engines (`pipeline/engines/`) do the same arithmetic with different libraries; they differ in
what they cost to start and per review (BENCHMARKS.md, "An instant CLI, ... scoring without TensorFlow"):
- 'onnx' loads in about 0.2 s (no TensorFlow) and scores at 0.65-0.85 of 'xla's rate;
- 'xla' scores fastest, after 5.5-7 s of TensorFlow import, model load, XLA compilation and probe;
- 'keras' serves every architecture, at a fifth of 'xla's rate.
`choose_engine` resolves 'auto' from the job's size: below XLA_FROM_REVIEWS reviews the start-up
never pays for itself and 'onnx' is faster end to end; from there on 'xla', if TensorFlow is
installed. A bundle without model.onnx (an architecture the export cannot write) uses the
TensorFlow engines; a worker without TensorFlow uses 'onnx'. 'auto' is resolved where the model
loads: in the launching process for a local runner, on each worker for a remote one, whose
environment (the job's image) is not the launcher's.

Every engine returns the model's logits; `CalibratedScorer` turns them into the bundle's calibrated
class probabilities with one function (`pipeline/calibration.py`), whichever engine ran and however
many classes there are.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.calibration import UNCALIBRATED, Calibration
from pipeline.engines import ENGINES
from pipeline.engines.length_order import available_cores

# Rows per model call when not set, the fastest of each engine on the build machine (BENCHMARKS.md).
BEST_BATCH_SIZE = {"xla": 256, "keras": 64, "onnx": 256}
# Reviews per RunInference batch, sorted by length and cut into model calls (BENCHMARKS.md).
DEFAULT_MAX_BATCH_SIZE = 4096
# From this many reviews per job, 'auto' pays TensorFlow's import and XLA's compile for the faster
# engine (break-even measured by `make bench`, BENCHMARKS.md "Engines").
XLA_FROM_REVIEWS = 60_000
log = logging.getLogger("reviewscore")


class EngineUnavailable(ValueError):
    """The engine asked for cannot score this bundle here (no model.onnx, no TensorFlow)."""


@dataclass(frozen=True)
class ScorerSettings:
    engine: str = "auto"
    batch_size: int = 0
    """Rows per model call; 0 means the chosen engine's BEST_BATCH_SIZE."""
    threads: int = 0
    """Concurrent model calls; 0 means one per core available to this process."""
    reason: str = field(default="", compare=False)
    """Why `engine` was chosen, when the launcher chose it; for the log."""
    reviews: int | None = None
    """The job's size, for resolving 'auto' where the reviews are scored (a remote runner's worker)."""

    def batch_size_for(self, engine: str) -> int:
        return self.batch_size or BEST_BATCH_SIZE[engine]


class CalibratedScorer:
    """Any engine's logits as the bundle's calibrated (rows, classes) probabilities."""

    def __init__(self, engine_scorer, calibration: Calibration):
        self.engine_scorer = engine_scorer
        self.calibration = calibration

    @property
    def engine(self) -> str:
        return self.engine_scorer.engine

    @property
    def reason(self) -> str:
        return self.engine_scorer.reason

    def logits(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return self.engine_scorer(rows)

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return self.with_logits(rows)[0]

    def with_logits(self, rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, logits) from one engine call, for callers that need both (explanations)."""
        logits = self.engine_scorer(rows)
        return self.calibration.probabilities(logits), logits


def tensorflow_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def choose_engine(asked: str, has_onnx: bool, reviews: int | None = None) -> tuple[str, str]:
    """(engine, why) for a bundle with or without model.onnx and a job of `reviews` (None: unknown, large).

    An explicit engine is kept (EngineUnavailable if it cannot run here); 'auto' follows the rule in
    this module's docstring.
    """
    if asked not in ENGINES:
        raise ValueError(f"unknown engine {asked!r}; choose one of: {', '.join(ENGINES)}")
    tensorflow = tensorflow_installed()
    if asked == "onnx" and not has_onnx:
        raise EngineUnavailable(
            "this bundle has no model.onnx; write one with `reviewscore export-onnx BUNDLE` "
            "(needs TensorFlow), or score with --engine xla or keras"
        )
    if asked in ("xla", "keras") and not tensorflow:
        raise EngineUnavailable(f"--engine {asked} needs TensorFlow, which is not installed here; use --engine onnx")
    if asked != "auto":
        return asked, "asked for"
    if has_onnx and not tensorflow:
        return "onnx", "TensorFlow is not installed"
    if has_onnx and reviews is not None and reviews < XLA_FROM_REVIEWS:
        return "onnx", f"{reviews:,} reviews: fewer than {XLA_FROM_REVIEWS:,}, XLA's start-up would not pay off"
    if tensorflow:
        return "xla", f"at least {XLA_FROM_REVIEWS:,} reviews" if has_onnx else "no model.onnx in the bundle"
    raise EngineUnavailable(
        "this bundle has no model.onnx and TensorFlow is not installed: nothing here can score it; "
        "install reviewscore[tensorflow] or write model.onnx with `reviewscore export-onnx BUNDLE`"
    )


def bundle_scorer(bundle, settings: ScorerSettings, reviews: int | None = None) -> CalibratedScorer:
    """The bundle's model on the engine `choose_engine` picks, calibrated."""
    from pipeline.bundle import ONNX_FILE

    width = bundle.preprocessing.max_length
    engine, why = choose_engine(settings.engine, bundle.has_onnx, settings.reviews if reviews is None else reviews)
    why = settings.reason or why
    if engine == "onnx":
        from pipeline.engines.onnx_engine import OnnxScorer

        scorer = OnnxScorer.from_file(
            bundle.path / ONNX_FILE,
            settings.batch_size_for("onnx"),
            settings.threads or available_cores(),
            why,
        )
        bundle.check_outputs_fit(scorer.outputs)
        bundle.check_embedding_fits((bundle.manifest.onnx or {}).get("embedding_rows", len(bundle.vocabulary)))
        return CalibratedScorer(scorer, bundle.calibration)
    scorer = _tensorflow_engine(bundle.load_model(), width, replace(settings, engine=engine), why)
    return CalibratedScorer(scorer, bundle.calibration)


def make_scorer(model, width: int, settings: ScorerSettings, calibration: Calibration = UNCALIBRATED):
    """A Keras model (in memory) on a TensorFlow engine: 'xla' raises if the compiled graph cannot
    reproduce it, 'auto' falls back to 'keras'."""
    reason = "" if settings.engine == "auto" else "asked for"
    return CalibratedScorer(_tensorflow_engine(model, width, settings, reason), calibration)


def _tensorflow_engine(model, width: int, settings: ScorerSettings, reason: str):
    """`settings.engine` ('xla', 'keras', or 'auto': xla, else keras) on `model`; `reason` says why it
    was chosen, a fallback to keras says why instead."""
    from pipeline.engines.keras_engine import KerasScorer
    from pipeline.engines.plan import UnsupportedModel, plan_model
    from pipeline.engines.xla import compiled_scorer

    if settings.engine not in ("auto", "xla", "keras"):  # 'auto' here: xla, else keras
        raise ValueError(f"engine {settings.engine!r} does not run an in-memory Keras model; use xla or keras")
    if settings.engine == "keras":
        return KerasScorer(model, settings.batch_size_for("keras"), reason)
    threads = settings.threads or available_cores()
    try:
        scorer = compiled_scorer(model, plan_model(model), width, settings.batch_size_for("xla"), threads)
    except UnsupportedModel as e:
        if settings.engine == "xla":
            raise
        log.info("scoring with Keras: %s", e)
        return KerasScorer(model, settings.batch_size_for("keras"), str(e))
    scorer.reason = reason
    return scorer
