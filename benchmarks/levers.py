"""Model-only measurements of each inference lever, on the same reviews and the same bundle.

    .venv/bin/python benchmarks/levers.py --data data/imdb/unsup.parquet --reviews 5000

Each variant scores the same encoded reviews (encoding is done once, outside the timings) and is
timed on its second pass over them, so tracing and compilation are not counted here (the
end-to-end benchmark counts them). Prints reviews/s and the largest score difference to the
naive variant.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow.parquet as pq
import typer

import pipeline.model.layers  # noqa: F401
from pipeline.job.options import DEFAULT_MODEL
from pipeline.model.bundle import Bundle
from pipeline.model.calibration import UNCALIBRATED, class_probabilities
from pipeline.model.engines.keras_engine import KerasScorer, compile_keras
from pipeline.model.engines.plan import plan_model
from pipeline.model.engines.xla import CompiledScorer, compile_plan
from pipeline.model.preprocessing import pad_rows
from schemas.output import TEXT


def timed(fn, rows, repeat: int = 1) -> tuple[float, np.ndarray]:
    best, scores = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        scores = fn(rows)
        best = min(best, time.perf_counter() - started)
    return best, scores


def last_class(logits) -> np.ndarray:
    """Every variant compared on the same quantity: the last class's (uncalibrated) probability."""
    return UNCALIBRATED.probabilities(np.asarray(logits))[:, -1]


def on_last_class(scorer):
    return lambda r: last_class(scorer(r))


def scoring_variants(model, width: int) -> dict[str, Callable[[list[np.ndarray]], np.ndarray]]:
    """Each way of scoring the bundle's model: name to a function of the encoded reviews."""
    import tensorflow as tf

    compiled, _ = compile_keras(model)
    plan = plan_model(model)
    graph = compile_plan(plan, width)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], jit_compile=True)
    def xla(ids):
        return model(ids, training=False)[:, -1]  # a sigmoid head's probability

    def bucketed_xla(batch_rows, size=256, multiple=32):
        lengths = np.array([len(r) for r in batch_rows])
        order = np.argsort(lengths, kind="stable")
        out = np.empty(len(batch_rows), np.float32)
        for start in range(0, len(batch_rows), size):
            members = order[start : start + size]
            longest = int(lengths[members].max())
            padded_width = -(-longest // multiple) * multiple
            out[members] = xla(pad_rows([batch_rows[i] for i in members], padded_width)).numpy()
        return out

    return {
        "naive: pad 500, model.predict, batch 256": lambda r: class_probabilities(
            model.predict(pad_rows(r, width), 256, verbose=0)
        )[:, -1],
        "tf.function, pad 500, batch 256": lambda r: last_class(
            np.concatenate([compiled(pad_rows(r[i : i + 256], width)).numpy() for i in range(0, len(r), 256)])
        ),
        **{f"tf.function, length-sorted, batch {b}": on_last_class(KerasScorer(model, b)) for b in (64, 128, 256, 512)},
        "XLA Keras model, length-sorted, widths to x32, batch 256": lambda r: bucketed_xla(r),
        **{
            f"compiled graph, batch {b}, {t} thread{'s' if t > 1 else ''}": on_last_class(
                CompiledScorer(graph, width, plan.outputs, b, t)
            )
            for b in (64, 128, 256, 512)
            for t in (1, 2, 4)
        },
    }


def main(
    data: Annotated[Path, typer.Option()] = Path("data/imdb/unsup.parquet"),
    bundle_path: Annotated[Path, typer.Option("--bundle")] = Path(DEFAULT_MODEL),
    reviews: Annotated[int, typer.Option()] = 5000,
    variants: Annotated[str, typer.Option(help="Semicolon-separated subset to run (all when empty).")] = "",
) -> None:
    import tensorflow as tf

    bundle = Bundle.open(bundle_path)
    model = bundle.load_model()
    texts = pq.read_table(data, columns=[TEXT]).column(TEXT).slice(0, reviews)
    rows = [r for r in bundle.encoder.encode(texts).rows() if len(r)]
    candidates = scoring_variants(model, bundle.preprocessing.max_length)
    chosen = [v.strip() for v in variants.split(";") if v.strip()] or list(candidates)
    baseline = None
    results = {}
    for name in chosen:
        fn = candidates[name]
        fn(rows)  # warm-up: tracing and every compilation the timed pass needs
        seconds, scores = timed(fn, rows)
        baseline = scores if baseline is None else baseline
        results[name] = {
            "reviews_per_second": round(len(rows) / seconds, 1),
            "seconds": round(seconds, 2),
            "max_abs_difference_to_first": float(np.abs(scores - baseline).max()),
        }
        difference = results[name]["max_abs_difference_to_first"]
        print(f"{name:48s} {len(rows) / seconds:8.0f} reviews/s  (max |diff| {difference:.1e})")
    print(
        json.dumps(
            {
                "reviews": len(rows),
                "threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    typer.run(main)
