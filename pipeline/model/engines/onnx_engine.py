"""Engine 'onnx': the bundle's model.onnx run by ONNX Runtime, without TensorFlow.

ONNX Runtime imports in a fraction of TensorFlow's time and needs no compilation, so small jobs and
worker images without TensorFlow score with it (BENCHMARKS.md#model-load). The file is written at
training time (training/onnx_export.py). Each call runs on one thread and several Python threads
call one InferenceSession at once (ONNX Runtime releases the GIL), which beats one call spread over
the cores (BENCHMARKS.md#levers)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.model.engines.base import ONNX_RUNTIME, TENSORFLOW, BundleFile, ScorerSettings
from pipeline.model.engines.length_order import available_cores, score_in_length_order
from schemas.bundle import OCCLUSION_FILE, ONNX_FILE

if TYPE_CHECKING:
    import numpy as np

    from pipeline.model.bundle import Bundle

ONNX_MODEL = BundleFile(ONNX_FILE, "`reviewscore export-onnx BUNDLE`", writer_needs=TENSORFLOW)


class OnnxEngine:
    name = "onnx"
    title = "ONNX Runtime"
    description = "ONNX Runtime, no TensorFlow"
    module = ONNX_RUNTIME
    bundle_file = ONNX_MODEL
    best_batch_size = 256
    gradients = False
    auto_from_reviews = 0
    fallback = None

    def load(self, bundle: Bundle, settings: ScorerSettings) -> OnnxScorer:
        occlusion = bundle.path / OCCLUSION_FILE if OCCLUSION_FILE in bundle.manifest.files else None
        opening = None
        if settings.with_recurrence and occlusion is not None:
            opener = ThreadPoolExecutor(max_workers=1)
            opening = opener.submit(_session, occlusion)  # beside the model's own
            opener.shutdown(wait=False)  # its one thread ends once occlusion.onnx is open
        scorer = OnnxScorer.from_file(
            bundle.path / ONNX_FILE,
            settings.batch_size_for(self),
            settings.threads or available_cores(),
            settings.reason,
        )
        scorer.occlusion_path, scorer.opening = occlusion, opening
        bundle.check_outputs_fit(scorer.outputs)
        bundle.check_embedding_fits((bundle.manifest.onnx or {}).get("embedding_rows", len(bundle.vocabulary)))
        return scorer


class OnnxScorer:
    engine = OnnxEngine.name
    occlusion_path: Path | None = None
    """The bundle's occlusion.onnx, if it has one: what `recurrence` loads."""
    opening: Future | None = None
    """Its session, being opened since the model loaded (ScorerSettings.with_recurrence)."""

    def __init__(self, session, outputs: int, batch_size: int, threads: int, reason: str = ""):
        self.session = session
        self.outputs = outputs
        self.batch_size = batch_size
        self.reason = reason
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="score") if threads > 1 else None
        self._recurrence: OnnxRecurrence | None = None

    @classmethod
    def from_file(cls, path: Path, batch_size: int, threads: int, reason: str = "") -> OnnxScorer:
        session = _session(path)
        outputs = session.get_outputs()[0].shape[1]
        return cls(session, int(outputs), batch_size, threads, reason)

    def recurrence(self) -> OnnxRecurrence | None:
        """The bundle's occlusion.onnx on ONNX Runtime (pipeline/model/explain/occlusion.py's Recurrence),
        loaded on first use (it holds its own copy of the folded tables); None without one."""
        if self._recurrence is None and self.occlusion_path is not None:
            session = self.opening.result() if self.opening is not None else _session(self.occlusion_path)
            self._recurrence = OnnxRecurrence(session, self.batch_size, self.pool, self.threads)
        return self._recurrence

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        from pipeline.model.preprocessing import pad_rows  # here: the registry imports this module for --help

        run = self.pool.map if self.pool else map
        return score_in_length_order(
            rows,
            self.batch_size,
            self.outputs,
            lambda members: self.session.run(None, {"ids": pad_rows([rows[i] for i in members])})[0],
            run,
        )


class OnnxRecurrence:
    """occlusion.onnx (training/onnx_export.py's `occlusion_model`): slices run on the scorer's threads."""

    def __init__(self, session, batch_size: int, pool: ThreadPoolExecutor | None, threads: int):
        self.session = session
        self.batch_size = batch_size
        self.pool = pool
        self.parallel_calls = threads
        inputs = {i.name: i for i in session.get_inputs()}
        self.directions = sum(name.startswith("ids") for name in inputs)  # ids0, ids1
        self.pooled = "top0" in inputs
        from pipeline.model.wide import WIDE_IDS  # here: the registry imports this module for --help

        self.wide = WIDE_IDS in inputs
        self.units = int(inputs["h0"].shape[1])

    def run(self, feeds: list[dict[str, np.ndarray]], states: bool) -> list[dict[str, np.ndarray]]:
        import numpy as np

        names = [f"part{d}" for d in range(self.directions)]
        if states:
            names += [f"{n}{d}_steps" for d in range(self.directions) for n in ("h", "c")]

        flag = np.array(states)

        def one(feed):
            return dict(zip(names, self.session.run(names, {**feed, "states": flag}), strict=True))

        return list((self.pool.map if self.pool else map)(one, feeds))


def _session(path: Path):
    """An InferenceSession on one thread: the scorer's threads call it at once (module docstring)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
