"""A model on its engine, as the bundle's calibrated class probabilities.

Every engine returns the model's logits; `CalibratedScorer` turns them into calibrated (rows,
classes) probabilities with one function (`pipeline/model/calibration.py`), whichever engine ran and
however many classes there are. `bundle_scorer` loads a bundle's model on the engine `choose_engine`
picks; `make_scorer` runs a Keras model held in memory (training's checks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from pipeline.model.calibration import UNCALIBRATED, Calibration
from pipeline.model.engines.base import Engine, LogitScorer, ScorerSettings
from pipeline.model.engines.choice import choose_engine
from pipeline.model.engines.plan import UnsupportedModel
from pipeline.model.engines.registry import AUTO, ENGINES, registered

if TYPE_CHECKING:
    from pipeline.model.bundle import Bundle

log = logging.getLogger("reviewscore")


class CalibratedScorer:
    """Any engine's logits as the bundle's calibrated (rows, classes) probabilities."""

    def __init__(self, engine_scorer: LogitScorer, calibration: Calibration):
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

    def recurrence(self):
        """The engine's model with its recurrent states open (pipeline/model/explain/occlusion.py's
        Recurrence), which exact occlusion reuses; None where the engine has none (keras, or onnx on
        a bundle without occlusion.onnx), and occlusion re-scores every occluded review."""
        opened = getattr(self.engine_scorer, "recurrence", None)
        return opened() if opened is not None else None

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return self.with_logits(rows)[0]

    def with_logits(self, rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, logits) from one engine call, for callers that need both (explanations)."""
        logits = self.engine_scorer(rows)
        return self.calibration.probabilities(logits), logits


def bundle_scorer(bundle: Bundle, settings: ScorerSettings, reviews: int | None = None) -> CalibratedScorer:
    """The bundle's model on the engine `choose_engine` picks, calibrated; `reviews` overrides the
    job size in `settings`."""
    name, why = choose_engine(settings.engine, bundle.manifest.files, settings.reviews if reviews is None else reviews)
    chosen = replace(settings, reason=settings.reason or why)
    scorer = _load(registered(name), chosen, settings.engine == AUTO, lambda engine, s: engine.load(bundle, s))
    return CalibratedScorer(scorer, bundle.calibration)


def make_scorer(model, width: int, settings: ScorerSettings, calibration: Calibration = UNCALIBRATED):
    """A Keras model (in memory) on an engine that runs one (a ModelEngine, base.py): an explicit
    engine raises UnsupportedModel if it cannot reproduce the model, 'auto' falls back."""
    in_memory = [name for name, engine in ENGINES.items() if hasattr(engine, "from_model")]
    if settings.engine != AUTO and settings.engine not in in_memory:
        raise ValueError(
            f"engine {settings.engine!r} does not run an in-memory Keras model; use {' or '.join(in_memory)}"
        )
    name = choose_engine(settings.engine, (), None)[0]
    chosen = replace(settings, reason="" if settings.engine == AUTO else "asked for")
    scorer = _load(ENGINES[name], chosen, settings.engine == AUTO, lambda engine, s: engine.from_model(model, width, s))
    return CalibratedScorer(scorer, calibration)


def _load(
    engine: Engine, settings: ScorerSettings, may_fall_back: bool, load: Callable[[Engine, ScorerSettings], LogitScorer]
) -> LogitScorer:
    """`load(engine, settings)`, or, when 'auto' chose an engine that cannot reproduce the model, its
    fallback's, the reason saying why."""
    try:
        return load(engine, settings)
    except UnsupportedModel as e:
        if not may_fall_back or engine.fallback is None:
            raise
        fallback = ENGINES[engine.fallback]
        log.info("scoring with %s: %s", fallback.title, e)
        return load(fallback, replace(settings, reason=str(e)))
