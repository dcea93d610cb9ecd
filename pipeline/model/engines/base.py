"""What every scoring engine states, and what it is given to load a bundle's model.

An engine is one small class (`onnx_engine.py`, `xla.py`, `keras_engine.py`) registered once in
`registry.py`; everything that names, chooses, describes or loads an engine reads the registry, so
the engine's module and its registry line are all that adding one takes. Like Beam's
ModelHandlers, an engine only knows how to load a model and return a scorer; which engine scores a
job is `choice.py`'s, calibration `calibrated.py`'s.

Cheap to import (no TensorFlow, ONNX Runtime or Beam): `--help` reads the engines' declarations.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pipeline.model.extras import TRAIN

if TYPE_CHECKING:
    import keras
    import numpy as np

    from pipeline.model.bundle import Bundle

__all__ = [
    "ONNX_RUNTIME",
    "TENSORFLOW",
    "BundleFile",
    "Engine",
    "EngineUnavailable",
    "LogitScorer",
    "ModelEngine",
    "PythonModule",
    "ScorerSettings",
    "module_installed",
]


class EngineUnavailable(ValueError):
    """The engine asked for cannot score this bundle here (a bundle file or a Python module missing)."""


def module_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@dataclass(frozen=True)
class PythonModule:
    """A Python package an engine imports when it loads, named as messages name it."""

    name: str
    """The import name: what `module_installed` looks for."""
    title: str
    """As prose writes it ("TensorFlow")."""
    install: str
    """What to do where it is missing."""

    def installed(self) -> bool:
        return module_installed(self.name)


TENSORFLOW = PythonModule("tensorflow", "TensorFlow", TRAIN.install_hint())
ONNX_RUNTIME = PythonModule("onnxruntime", "ONNX Runtime", "reinstall reviewscore, which depends on it")


@dataclass(frozen=True)
class BundleFile:
    """A file an engine reads from the bundle, and how a bundle without it gets one."""

    name: str
    written_by: str
    """The command that adds it to an existing bundle."""
    writer_needs: PythonModule | None = None


@dataclass(frozen=True)
class ScorerSettings:
    """What a job asks of its engine; hashable, as it keys the model loaded once per process."""

    engine: str = "auto"
    batch_size: int = 0
    """Rows per model call; 0 means the chosen engine's best_batch_size."""
    threads: int = 0
    """Concurrent model calls; 0 means one per core available to this process."""
    reason: str = field(default="", compare=False)
    """Why `engine` was chosen, when the launcher chose it; for the log."""
    reviews: int | None = None
    """The job's size, for resolving 'auto' where the reviews are scored (a remote runner's worker)."""
    with_recurrence: bool = False
    """Open the engine's recurrence (for explanations by occlusion) with the model, side by side, rather
    than on first use: both take a while to open, and an explaining job needs both."""

    def batch_size_for(self, engine: Engine) -> int:
        return self.batch_size or engine.best_batch_size


class LogitScorer(Protocol):
    """A loaded model: int32 id rows to float32 (rows, outputs) logits in input order (the final
    Dense layer before its sigmoid or softmax)."""

    engine: str
    """The name of the engine that scores."""
    reason: str
    """Why that engine was chosen."""

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray: ...


class Engine(Protocol):
    """One way of running a bundle's model: what it needs, what it costs, and how to load it.

    Declarations only: an engine imports its library (TensorFlow, ONNX Runtime) in `load`, so
    naming, choosing and describing engines costs nothing.
    """

    name: str
    """What `--engine` calls it."""
    title: str
    """As prose writes it, in reasons and logs ("XLA")."""
    description: str
    """One line, in `--engine`'s help."""
    module: PythonModule | None
    """The Python package `load` imports; None: nothing beyond the core dependencies."""
    bundle_file: BundleFile | None
    """The bundle file `load` reads beyond the bundle's own (None: none)."""
    best_batch_size: int
    """Rows per model call when the job does not set them (BENCHMARKS.md#levers)."""
    gradients: bool
    """Whether its library computes gradients, which integrated gradients need."""
    auto_from_reviews: int | None
    """From how many reviews in a job 'auto' chooses it (choice.py); None: 'auto' never does, except
    as another engine's fallback."""
    fallback: str | None
    """The engine that scores, when 'auto' chose this one, a model this one cannot reproduce."""

    def load(self, bundle: Bundle, settings: ScorerSettings) -> LogitScorer:
        """The bundle's model on this engine, its scorer's reason `settings.reason`; raises
        UnsupportedModel (pipeline/model/engines/plan.py) for a model this engine cannot reproduce."""
        ...


class ModelEngine(Engine, Protocol):
    """An engine that also runs a Keras model held in memory (training's checks, before any bundle)."""

    def from_model(self, model: keras.Model, width: int, settings: ScorerSettings) -> LogitScorer: ...
