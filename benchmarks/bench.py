"""`make bench`: the tutorials' way of scoring against the reviewscore pipeline, end to end, on one machine.

    .venv/bin/python benchmarks/bench.py --data ../shared/data/imdb/unsup.parquet --sizes 1000,10000,50000,200000

For every input size it runs, each in its own process so start-up and memory are measured whole:
  (a) naive: pandas reads the Parquet, the bundle's encoder cleans and encodes, every review is padded
      to the bundle's max_length, `model.predict(batch_size=256)` scores (the tutorials' code);
  (b) pipeline: `reviewscore score` on DirectRunner, Parquet in, Parquet out.
It reports reviews/s (wall clock of the whole process), their ratio, the largest |score difference|
and each process's peak resident memory, then start-up (10 reviews end to end) and the LSTM's
achieved arithmetic rate against the machine's peak, and what a million reviews would cost on Dataflow
at the pipeline's rate per core. Results go to --out as JSON, Markdown and a PNG.
Inputs larger than the data file repeat it with suffixed review ids (200,000 = unsup.parquet x 4).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import dataflow_cost  # benchmarks/, beside this file
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer

ROOT = Path(__file__).resolve().parent.parent
NAIVE_BATCH = 256


def naive(data: Path, bundle_path: Path, scores_out: Path) -> None:
    """The tutorials' scoring, as a user would write it around our bundle: pad everything, predict."""
    import pandas as pd

    import pipeline  # noqa: F401
    from pipeline.bundle import Bundle
    from pipeline.calibration import logits_from_outputs
    from pipeline.labels import Labels

    bundle = Bundle.open(bundle_path)
    model = bundle.load_model()
    frame = pd.read_parquet(data)
    padded = bundle.encoder.encode(frame["text"].tolist()).padded(width=bundle.preprocessing.max_length)
    outputs = model.predict(padded, batch_size=NAIVE_BATCH, verbose=0)
    probabilities = bundle.calibration.probabilities(logits_from_outputs(outputs))  # what the bundle says
    scores = Labels.of(bundle.manifest).columns(probabilities)["score"]  # the score column, as scoring writes it
    np.save(scores_out, scores.astype(np.float32))


def run_measured(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak resident memory (largest process of the tree that was waited for)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return {"wall_seconds": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def make_input(data: Path, size: int, folder: Path) -> Path:
    path = folder / f"reviews-{size}.parquet"
    if path.exists():
        return path
    source = pq.read_table(data, columns=["review_id", "text"])
    parts, copy = [], 0
    while sum(p.num_rows for p in parts) < size:
        part = source.slice(0, size - sum(p.num_rows for p in parts))
        if copy:
            ids = pc.binary_join_element_wise(part.column("review_id"), pa.scalar(f"#{copy}"), "")
            part = part.set_column(0, "review_id", ids)
        parts.append(part)
        copy += 1
    pq.write_table(pa.concat_tables(parts), path)
    return path


def score_pipeline(path: Path, bundle: Path, out: Path, beam_args: list[str]) -> dict[str, float]:
    command = [str(ROOT / ".venv/bin/reviewscore"), "score", str(path), "--output", str(out), "--model", str(bundle),
               "--overwrite"]  # fmt: skip
    if beam_args:
        command += ["--", *beam_args]
    return run_measured(command)


def median_run(runs: list[dict[str, float]], size: int) -> dict[str, Any]:
    """The run with the median wall time, plus every run's wall time and the range of rates."""
    ordered = sorted(runs, key=lambda r: r["wall_seconds"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["reviews_per_second"] = size / median["wall_seconds"]
    median["runs_wall_seconds"] = [round(r["wall_seconds"], 2) for r in runs]
    median["reviews_per_second_range"] = [size / ordered[-1]["wall_seconds"], size / ordered[0]["wall_seconds"]]
    return median


def max_difference(naive_scores: Path, data: Path, out: Path) -> float:
    ids = pq.read_table(data, columns=["review_id"]).column("review_id").to_pylist()
    expected = dict(zip(ids, np.load(naive_scores).tolist(), strict=True))
    scored = pa.concat_tables(pq.read_table(f, columns=["review_id", "score"]) for f in sorted(out.glob("scored-*")))
    got = dict(zip(scored.column("review_id").to_pylist(), scored.column("score").to_pylist(), strict=True))
    if set(got) != set(expected):
        raise SystemExit(f"pipeline scored {len(got)} reviews, naive {len(expected)}: the sets differ")
    return max(abs(got[k] - expected[k]) for k in expected)


def flops_per_token(bundle_path: Path) -> tuple[float, float, str]:
    """FLOPs per token of the model's LSTMs (2 x multiply-adds; an LSTM's kernels hold its 4 gates),
    the share the scoring engine executes, and the engine's name.

    The compiled engine folds each input projection into a lookup table, so per token it executes
    only the recurrent products; the model's count is the honest measure of work done for the user.
    """
    import pipeline  # noqa: F401
    from pipeline.bundle import Bundle
    from pipeline.recurrent_graph import UnsupportedModel, plan_model

    model = Bundle.open(bundle_path).load_model()
    inputs = recurrent_macs = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.__class__.__name__ == "LSTMCell":
            inputs += layer.kernel.shape[0] * layer.kernel.shape[1]
            recurrent_macs += layer.recurrent_kernel.shape[0] * layer.recurrent_kernel.shape[1]
    try:
        plan_model(model)
        executed, engine = 2.0 * recurrent_macs, "xla"
    except UnsupportedModel:
        executed, engine = 2.0 * (inputs + recurrent_macs), "keras"
    return 2.0 * (inputs + recurrent_macs), executed, engine


def tokens_scored(path: Path, bundle_path: Path) -> tuple[int, int]:
    """Real tokens the pipeline feeds the model, and what padding everything to max_length costs."""
    from pipeline.bundle import Bundle

    bundle = Bundle.open(bundle_path)
    lengths = bundle.encoder.encode(pq.read_table(path, columns=["text"]).column("text")).lengths
    lengths = lengths[lengths > 0]
    return int(lengths.sum()), len(lengths) * bundle.preprocessing.max_length


def peak_flops() -> tuple[float, str]:
    """fp32 peak of this machine from /proc/cpuinfo: cores x clock x FLOPs per cycle (AVX2+FMA: 32)."""
    info = Path("/proc/cpuinfo").read_text()
    mhz = float(next(line.split(":")[1] for line in info.splitlines() if line.startswith("cpu MHz")))
    model = next(line.split(":")[1].strip() for line in info.splitlines() if line.startswith("model name"))
    flags = next(line for line in info.splitlines() if line.startswith("flags"))
    per_cycle = 64 if "avx512f" in flags else 32 if ("avx2" in flags and "fma" in flags) else 8
    cores = os.cpu_count() or 1
    return cores * mhz * 1e6 * per_cycle, f"{model}, {cores} cores at {mhz:.0f} MHz, {per_cycle} fp32 FLOP/cycle/core"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("naive", "naive (pad to 500, predict)"), ("pipeline", "reviewscore pipeline")):
        measured = [r for r in results if key in r]  # --skip-naive-above leaves sizes without a naive run
        sizes = [r["reviews"] for r in measured]
        left.plot(sizes, [r[key]["reviews_per_second"] for r in measured], "o-", label=label)
        right.plot(sizes, [r[key]["peak_rss_mb"] for r in measured], "o-", label=label)
    for ax, ylabel in ((left, "reviews/s (whole process)"), (right, "peak resident memory (MB)")):
        ax.set_xscale("log")
        ax.set_xlabel("reviews")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_ylim(bottom=0)
    fig.suptitle("Scoring throughput and memory against input size")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def render(report: dict[str, Any]) -> str:
    """The results as Markdown tables, for BENCHMARKS.md."""

    def rate(run: dict[str, Any] | None) -> str:
        if not run:
            return "-"
        text = f"{run['reviews_per_second']:,.0f} ({run['wall_seconds']:.1f} s)"
        if len(run.get("runs_wall_seconds", [])) > 1:
            low, high = run["reviews_per_second_range"]
            text += f", range {low:,.0f}-{high:,.0f}"
        return text

    def memory(run: dict[str, float] | None) -> str:
        return f"{run['peak_rss_mb']:,.0f} MB" if run else "-"

    repeat = report.get("repeat", 1)
    lines = [
        f"Each figure is the median of {repeat} runs (range: slowest to fastest)." if repeat > 1 else "One run each.",
        "",
        "| reviews | naive reviews/s (wall) | pipeline reviews/s (wall) | speed-up | max abs score diff "
        "| naive peak RSS | pipeline peak RSS |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        naive_run, pipeline_run = r.get("naive"), r["pipeline"]
        speedup = f"{r['speedup']:.2f}x" if naive_run else "-"
        difference = f"{r['max_abs_score_difference']:.1e}" if naive_run else "-"
        lines.append(
            f"| {r['reviews']:,} | {rate(naive_run)} | {rate(pipeline_run)} | {speedup} | {difference} "
            f"| {memory(naive_run)} | {memory(pipeline_run)} |"
        )
    startup = report["startup_10_reviews"]
    e = report["efficiency"]
    lines += [
        "",
        f"Start-up, 10 reviews end to end: {startup['wall_seconds']:.1f} s, peak RSS {startup['peak_rss_mb']:,.0f} MB.",
        "",
        f"Machine: {e['machine']}; fp32 peak {e['peak_gflops']:.0f} GFLOP/s. Model: {e['flops_per_token']:,.0f} "
        "FLOP per token (2 x multiply-adds of the LSTM kernels).",
        f"Pipeline: {e['pipeline_gflops_real_tokens']:.1f} GFLOP/s of the model's work on real tokens "
        f"({100 * e['pipeline_gflops_real_tokens'] / e['peak_gflops']:.0f} % of peak), whole process; "
        f"its {e['engine']} engine executes {e['executed_flops_per_token']:,.0f} FLOP per token, "
        f"{e['pipeline_executed_gflops']:.1f} GFLOP/s "
        f"({100 * e['pipeline_executed_gflops'] / e['peak_gflops']:.0f} % of peak).",
    ]
    if "naive_gflops_padded_tokens" in e:
        lines.append(
            f"Naive: {e['naive_gflops_padded_tokens']:.1f} GFLOP/s counting padded tokens "
            f"({100 * e['naive_gflops_padded_tokens'] / e['peak_gflops']:.0f} % of peak), "
            f"{e['naive_gflops_real_tokens']:.1f} GFLOP/s of useful work on real tokens."
        )
    if "cores" in report:
        lines += ["", "Dataflow cost per million reviews at this rate (benchmarks/dataflow_cost.py):", ""]
        lines.append(dataflow_cost.from_bench(report).rstrip("\n"))
    return "\n".join(lines) + "\n"


def main(
    data: Annotated[Path, typer.Option(help="Parquet with review_id and text (unsup.parquet).")] = Path(
        "../shared/data/imdb/unsup.parquet"
    ),
    bundle: Annotated[Path, typer.Option(help="Model bundle.")] = Path("models/imdb-bilstm"),
    sizes: Annotated[str, typer.Option(help="Comma-separated input sizes.")] = "1000,10000,50000,200000",
    out: Annotated[Path, typer.Option(help="Folder for inputs, outputs and results.")] = Path("bench-results"),
    beam_args: Annotated[str, typer.Option(help="Extra Beam options for the pipeline runs.")] = "",
    skip_naive_above: Annotated[int, typer.Option(help="Skip the naive run above this size (0: never).")] = 0,
    repeat: Annotated[
        int, typer.Option(min=1, help="Runs of each variant per size, interleaved; the median is reported.")
    ] = 1,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    inputs = out / "inputs"
    inputs.mkdir(exist_ok=True)
    extra = beam_args.split()
    results = []
    for size in [int(s) for s in sizes.split(",")]:
        path = make_input(data, size, inputs)
        row: dict[str, Any] = {"reviews": size}
        scores = out / f"naive-{size}.npy"
        scored = out / f"scored-{size}"
        runs: dict[str, list[dict[str, float]]] = {"naive": [], "pipeline": []}
        for _ in range(repeat):  # interleaved, so a slow spell of the machine hits both variants
            if not skip_naive_above or size <= skip_naive_above:
                runs["naive"].append(
                    run_measured([sys.executable, __file__, "naive", str(path), str(bundle), str(scores)])
                )
            runs["pipeline"].append(score_pipeline(path, bundle, scored, extra))
        for variant, measured in runs.items():
            if measured:
                row[variant] = median_run(measured, size)
        if "naive" in row:
            row["speedup"] = row["pipeline"]["reviews_per_second"] / row["naive"]["reviews_per_second"]
            row["max_abs_score_difference"] = max_difference(scores, path, scored)
        shutil.rmtree(scored)
        results.append(row)
        print(json.dumps(row), flush=True)

    startup_input = make_input(data, 10, inputs)
    startup = score_pipeline(startup_input, bundle, out / "scored-startup", extra)

    largest = max(results, key=lambda r: r["reviews"])
    real_tokens, padded_tokens = tokens_scored(make_input(data, largest["reviews"], inputs), bundle)
    per_token, executed_per_token, engine = flops_per_token(bundle)
    peak, machine = peak_flops()
    efficiency = {
        "flops_per_token": per_token,
        "engine": engine,
        "executed_flops_per_token": executed_per_token,
        "machine": machine,
        "peak_gflops": peak / 1e9,
        "pipeline_gflops_real_tokens": real_tokens * per_token / largest["pipeline"]["wall_seconds"] / 1e9,
        "pipeline_executed_gflops": real_tokens * executed_per_token / largest["pipeline"]["wall_seconds"] / 1e9,
    }
    if "naive" in largest:
        efficiency["naive_gflops_padded_tokens"] = padded_tokens * per_token / largest["naive"]["wall_seconds"] / 1e9
        efficiency["naive_gflops_real_tokens"] = real_tokens * per_token / largest["naive"]["wall_seconds"] / 1e9
    report = {
        "machine": machine,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cores": len(os.sched_getaffinity(0)),
        "beam_args": extra,
        "repeat": repeat,
        "results": results,
        "startup_10_reviews": startup,
        "efficiency": efficiency,
        "tokens": {"real": real_tokens, "padded_to_max_length": padded_tokens, "reviews": largest["reviews"]},
    }
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text(render(report))
    plot(results, out / "scaling.png")
    print(json.dumps({"startup_10_reviews": startup, "efficiency": efficiency}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "render":
        print(render(json.loads(Path(sys.argv[2]).read_text())), end="")
    elif len(sys.argv) > 1 and sys.argv[1] == "naive":
        naive(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        typer.run(main)
