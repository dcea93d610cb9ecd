"""Integrated gradients on real reviews: reviews/s and completeness error per number of steps
(BENCHMARKS.md#occlusion-vs-ig).

    python benchmarks/attribution_cost.py --reviews 64 --steps 8,16,32,64 [--batch-size 32] [--cut 0]

Encodes the first --reviews reviews of --data with the bundle, scores them with onnx (reviews/s
printed for comparison), then attributes each towards its predicted class with
IntegratedGradients at each step count (after one warm-up call, which compiles) and prints the
rate and the completeness error's mean, 95th percentile and maximum (--steps "" skips them).
--cut N keeps only each review's first N tokens. --occlusion also times leave-one-word-out on the
onnx engine (--threads of them), both ways: re-scoring each word's review and reusing the full pass
(BENCHMARKS.md#occlusion-cost), in CPU seconds and reviews/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow.parquet as pq

from pipeline.job.options import DEFAULT_MODEL
from pipeline.model.bundle import open_bundle
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.calibrated import bundle_scorer
from pipeline.model.engines.plan import plan_model
from pipeline.model.explain.integrated_gradients import IntegratedGradients
from pipeline.model.explain.occlusion import Occlusion
from pipeline.model.labels import Labels
from schemas.output import TEXT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/imdb/unsup.parquet")
    parser.add_argument("--bundle", default=DEFAULT_MODEL)
    parser.add_argument("--reviews", type=int, default=64)
    parser.add_argument("--steps", default="8,16,32,64")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cut", type=int, default=0)
    parser.add_argument("--occlusion", action="store_true", help="Also time occlusion on the onnx engine.")
    parser.add_argument("--threads", type=int, default=0, help="onnx threads (0: one per core).")
    args = parser.parse_args()

    bundle = open_bundle(args.bundle)
    texts = pq.read_table(args.data, columns=[TEXT]).column(TEXT)[: args.reviews]
    encoded, words = bundle.encoder.encode_words(texts)
    rows = encoded.rows()
    if args.cut:
        rows, words = [r[: args.cut] for r in rows], [w[: args.cut] for w in words]
    scorer = bundle_scorer(bundle, ScorerSettings(engine="onnx", threads=args.threads))
    predicted = Labels.of(bundle.manifest).predicted(scorer(rows))
    started = time.perf_counter()
    scorer(rows)
    print(f"onnx scoring: {len(rows) / (time.perf_counter() - started):.0f} reviews/s")
    if args.occlusion:
        print(f"{np.mean([len(r) for r in rows]):.1f} tokens per review")
        for way, occlusion in (
            ("re-scoring", Occlusion(scorer.logits)),
            ("reusing the full pass", Occlusion(scorer.logits, scorer.recurrence, reuse_from_tokens=0)),
        ):
            occlusion(rows[:1], predicted[:1], words=words[:1])
            started, cpu = time.perf_counter(), time.process_time()
            occlusion(rows, predicted, words=words)
            print(
                f"occlusion (onnx), {way}: {len(rows) / (time.perf_counter() - started):.1f} reviews/s, "
                f"{time.process_time() - cpu:.2f} CPU s"
            )
    if not args.steps:
        return
    plan = plan_model(bundle.load_model())
    for steps in map(int, args.steps.split(",")):
        explain = IntegratedGradients(plan, bundle.preprocessing.max_length, steps=steps, batch_size=args.batch_size)
        explain(rows[:1], predicted[:1])  # compile
        started = time.perf_counter()
        error = explain(rows, predicted).completeness_error
        rate = len(rows) / (time.perf_counter() - started)
        print(
            f"steps {steps}: {rate:.1f} reviews/s; completeness error mean {error.mean():.4f}, "
            f"p95 {np.quantile(error, 0.95):.4f}, max {error.max():.4f}"
        )


if __name__ == "__main__":
    main()
