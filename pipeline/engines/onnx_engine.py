"""Engine 'onnx': the bundle's model.onnx run by ONNX Runtime, without TensorFlow.

ONNX Runtime imports in a fraction of TensorFlow's time and needs no compilation, so small jobs
and worker images without TensorFlow score with it (BENCHMARKS.md, "An instant CLI, ... scoring
without TensorFlow"). The file is written at training time (training/onnx_export.py). Each call
runs on one thread and several Python threads call one InferenceSession at once (ONNX Runtime
releases the GIL), which beats one call spread over the cores (BENCHMARKS.md, "The TensorFlow-free
engine: what was tried")."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.engines.base import ONNX_RUNTIME, TENSORFLOW, BundleFile, ScorerSettings
from pipeline.engines.length_order import available_cores, score_in_length_order
from schemas.bundle import ONNX_FILE

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

    def load(self, bundle, settings: ScorerSettings) -> OnnxScorer:
        scorer = OnnxScorer.from_file(
            bundle.path / ONNX_FILE,
            settings.batch_size_for(self),
            settings.threads or available_cores(),
            settings.reason,
        )
        bundle.check_outputs_fit(scorer.outputs)
        bundle.check_embedding_fits((bundle.manifest.onnx or {}).get("embedding_rows", len(bundle.vocabulary)))
        return scorer


class OnnxScorer:
    engine = OnnxEngine.name

    def __init__(self, session, outputs: int, batch_size: int, threads: int, reason: str = ""):
        self.session = session
        self.outputs = outputs
        self.batch_size = batch_size
        self.reason = reason
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="score") if threads > 1 else None

    @classmethod
    def from_file(cls, path: Path, batch_size: int, threads: int, reason: str = "") -> OnnxScorer:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        outputs = session.get_outputs()[0].shape[1]
        return cls(session, int(outputs), batch_size, threads, reason)

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        from pipeline.preprocessing import pad_rows  # here: the registry imports this module for --help

        run = self.pool.map if self.pool else map
        return score_in_length_order(
            rows,
            self.batch_size,
            self.outputs,
            lambda members: self.session.run(None, {"ids": pad_rows([rows[i] for i in members])})[0],
            run,
        )
