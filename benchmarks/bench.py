"""`make bench`: the tutorials' way of scoring against the reviewscore pipeline and its engines, on one machine.

    .venv/bin/python benchmarks/bench.py --data data/imdb/unsup.parquet --sizes 1000,10000,50000,200000

For every input size it runs, each in its own process so start-up and memory are measured whole:
  (a) naive: pandas reads the Parquet, the bundle's encoder cleans and encodes, every review is padded
      to the bundle's max_length, `model.predict(batch_size=256)` scores (the tutorials' code);
  (b) pipeline: `reviewscore score` on DirectRunner, Parquet in, Parquet out (engine 'auto').
It reports reviews/s (wall clock of the whole process), their ratio, the largest |score difference|
and each process's peak resident memory. Then, on the --compare-size reviews, in one run:
  - the tutorial way alone: `model.predict` on the ids padded to max_length, batch 256, cleaning and
    reading not counted, best of 2;
  - each engine alone (onnx, xla, keras): its load (import, compile) and its scoring of the encoded
    ids, timed apart, with the executed GFLOP/s against the machine's peak;
  - end to end against both: the ratios the README promises;
and start-up: `reviewscore --help`, the README's 12-review quick start, 10 reviews of Parquet.
A challenger's cost: the --shadow-size reviews (default --compare-size) plainly and with --shadow-model,
in turns; the challenger is --shadow-bundle, or a copy of the bundle itself (same network, same cost).
A new bundle's cost against the one it replaces (--previous-bundle): the --previous-size reviews
(default --compare-size), a default run with each, in turns.
It ends with what a million reviews would cost on Dataflow at the pipeline's rate per core.
Results go to --out as JSON, Markdown and a PNG.
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

from pipeline.job.options import DEFAULT_MODEL
from pipeline.model.calibration import logit
from pipeline.model.native_log import quiet_tensorflow
from schemas.output import REVIEW_ID, SCORE, SCORED_PREFIX, TEXT

ROOT = Path(__file__).resolve().parent.parent
NAIVE_BATCH = 256


def logits_from_outputs(outputs: np.ndarray) -> np.ndarray:
    """Logits from a bare Keras model's outputs (the tutorials' `model.predict`): a sigmoid head's
    log-odds, or a softmax head's log-probabilities (the logits up to a constant per row, which the
    softmax ignores)."""
    p = np.asarray(outputs, dtype=np.float64)
    if p.ndim == 1 or p.shape[1] == 1:
        return logit(p)
    with np.errstate(divide="ignore"):
        return np.log(p)


def naive(data: Path, bundle_path: Path, scores_out: Path) -> None:
    """The tutorials' scoring, as a user would write it around our bundle: pad everything, predict."""
    import pandas as pd

    import pipeline  # noqa: F401
    from pipeline.model.bundle import Bundle
    from pipeline.model.labels import Labels

    bundle = Bundle.open(bundle_path)
    model = bundle.load_model()
    frame = pd.read_parquet(data)
    padded = bundle.encoder.encode(frame[TEXT].tolist()).padded(width=bundle.preprocessing.max_length)
    outputs = model.predict(padded, batch_size=NAIVE_BATCH, verbose=0)
    probabilities = bundle.calibration.probabilities(logits_from_outputs(outputs))  # what the bundle says
    scores = Labels.of(bundle.manifest).columns(probabilities)[SCORE]  # the score column, as scoring writes it
    np.save(scores_out, scores.to_numpy().astype(np.float32))


def tutorial(data: Path, bundle_path: Path, result: Path) -> None:
    """The tutorials' `model.predict` alone, on ids padded to max_length: best of 2, nothing else timed."""
    import pipeline.model.layers  # noqa: F401
    from pipeline.model.bundle import Bundle

    bundle = Bundle.open(bundle_path)
    model = bundle.load_model()
    texts = pq.read_table(data, columns=[TEXT]).column(TEXT)
    padded = bundle.encoder.encode(texts).padded(width=bundle.preprocessing.max_length)
    times = []
    for _ in range(2):
        started = time.perf_counter()
        model.predict(padded, batch_size=NAIVE_BATCH, verbose=0)
        times.append(time.perf_counter() - started)
    result.write_text(json.dumps({"seconds": min(times), "runs_seconds": times, "reviews": len(padded)}))


def engine_alone(data: Path, bundle_path: Path, engine: str, result: Path, logits_out: Path) -> None:
    """One engine on the encoded reviews: its load (imports included) and its scoring, timed apart."""
    from pipeline.model.bundle import Bundle
    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.engines.calibrated import bundle_scorer

    bundle = Bundle.open(bundle_path)
    rows = bundle.encoder.encode(pq.read_table(data, columns=[TEXT]).column(TEXT)).rows()
    rows = [r for r in rows if len(r)]
    started = time.perf_counter()
    scorer = bundle_scorer(bundle, ScorerSettings(engine=engine))
    loaded = time.perf_counter()
    logits = scorer.logits(rows)
    scored = time.perf_counter()
    np.save(logits_out, logits)
    result.write_text(
        json.dumps({"load_seconds": loaded - started, "score_seconds": scored - loaded, "reviews": len(rows)})
    )


def run_measured(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak resident memory of the command's process.

    The peak is the process's own VmHWM, read from /proc every 50 ms while it runs. Not ru_maxrss:
    Linux starts a spawned child's ru_maxrss at its parent's peak (it is kept across exec), so a
    benchmark process that once held a large input would inflate every later measurement.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    peak_kb = 0
    while process.poll() is None:
        peak_kb = max(peak_kb, _high_water_kb(process.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return {"wall_seconds": wall, "peak_rss_mb": peak_kb / 1024}


def _high_water_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # exited between poll() and the read
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def make_input(data: Path, size: int, folder: Path) -> Path:
    path = folder / f"reviews-{size}.parquet"
    if path.exists():
        return path
    source = pq.read_table(data, columns=[REVIEW_ID, TEXT])
    parts, copy = [], 0
    while sum(p.num_rows for p in parts) < size:
        part = source.slice(0, size - sum(p.num_rows for p in parts))
        if copy:
            ids = pc.binary_join_element_wise(part.column(REVIEW_ID), pa.scalar(f"#{copy}"), "")
            part = part.set_column(0, REVIEW_ID, ids)
        parts.append(part)
        copy += 1
    pq.write_table(pa.concat_tables(parts), path)
    return path


def score_pipeline(
    path: Path, bundle: Path, out: Path, beam_args: list[str], options: tuple[str, ...] = ()
) -> dict[str, float]:
    command = [str(ROOT / ".venv/bin/reviewscore"), "score", str(path), "--output", str(out), "--model", str(bundle),
               "--overwrite", *options]  # fmt: skip
    if beam_args:
        command += ["--", *beam_args]
    return run_measured(command)


EXPLAIN_K = 5
NO_EXPLANATIONS = ("--explain-sample", "0")


def measure_explain(data, inputs, bundle, out, extra, size: int, methods: list[str], repeat: int) -> dict | None:
    """The same reviews end to end without any explanation and with `--explain 5`, each method,
    interleaved `repeat` times; the medians."""
    if not size:
        return None
    path = make_input(data, size, inputs)
    variants = {"plain": NO_EXPLANATIONS, **{m: ("--explain", str(EXPLAIN_K), "--explain-method", m) for m in methods}}
    runs = interleaved(path, bundle, out / "scored-explain", extra, variants, repeat, size)
    shutil.rmtree(out / "scored-explain")
    return {
        "reviews": size,
        "top_k": EXPLAIN_K,
        "runs": runs,
        "slowdown": {m: runs[m]["wall_seconds"] / runs["plain"]["wall_seconds"] for m in methods},
    }


def measure_sample(data, inputs, bundle, out, extra, size: int, repeat: int) -> dict[str, Any] | None:
    """What the default sampled explanations cost a run: `size` reviews end to end with the default
    `--explain-sample` against `--explain-sample 0`, interleaved `repeat` times; the medians."""
    if not size:
        return None
    path = make_input(data, size, inputs)
    variants = {"no explanations": NO_EXPLANATIONS, "default sample": ()}
    runs = interleaved(path, bundle, out / "scored-sample", extra, variants, repeat, size)
    summary = json.loads(next((out / "scored-sample").glob("_SUMMARY.json")).read_text())
    shutil.rmtree(out / "scored-sample")
    explained = summary.get("explanations") or {}
    return {
        "reviews": size,
        "explained": explained.get("reviews", 0),
        "runs": runs,
        "extra": runs["default sample"]["wall_seconds"] / runs["no explanations"]["wall_seconds"] - 1,
    }


def measure_shadow(data, inputs, bundle, out, extra, size: int, repeat: int, challenger: Path | None) -> dict | None:
    """What a challenger costs a run: `size` reviews end to end plainly and with `--shadow-model`,
    interleaved `repeat` times; the medians. Without a challenger a copy of the bundle itself shadows
    it: the shadow's cost is its network's, so any challenger of the same architecture costs the same."""
    if not size:
        return None
    path = make_input(data, size, inputs)
    if challenger is None:
        challenger = out / "shadow-bundle"
        shutil.rmtree(challenger, ignore_errors=True)
        shutil.copytree(bundle, challenger)
    variants = {"plain": (), "shadowed": ("--shadow-model", str(challenger))}
    runs = interleaved(path, bundle, out / "scored-shadow", extra, variants, repeat, size)
    summary = json.loads((out / "scored-shadow" / "_SUMMARY.json").read_text())
    shutil.rmtree(out / "scored-shadow")
    copy = challenger == out / "shadow-bundle"
    if copy:
        shutil.rmtree(challenger)
    shadow = summary.get("shadow") or {}
    return {
        "reviews": size,
        "challenger": shadow.get("model", {}),
        "challenger_is_copy": copy,
        "agreement": shadow.get("agreement"),
        "runs": runs,
        "ratio": runs["shadowed"]["wall_seconds"] / runs["plain"]["wall_seconds"],
    }


def measure_previous(data, inputs, bundle, out, extra, size: int, repeat: int, previous: Path | None) -> dict | None:
    """What a new bundle costs against the one it replaces: `size` reviews end to end (a default run)
    with each, interleaved `repeat` times; the medians and the ratio."""
    if not size or previous is None:
        return None
    path = make_input(data, size, inputs)
    bundles = {"bundle": bundle, "previous": previous}
    variants = {name: () for name in bundles}
    runs = interleaved(path, bundle, out / "scored-previous", extra, variants, repeat, size, bundles)
    shutil.rmtree(out / "scored-previous")
    versions = {name: json.loads((b / "manifest.json").read_text())["version"] for name, b in bundles.items()}
    return {
        "reviews": size,
        "versions": versions,
        "runs": runs,
        "ratio": runs["bundle"]["wall_seconds"] / runs["previous"]["wall_seconds"],
    }


def interleaved(
    path,
    bundle,
    folder,
    extra,
    variants: dict[str, tuple[str, ...]],
    repeat: int,
    size: int,
    bundles: dict[str, Path] | None = None,
) -> dict:
    """Each variant's options run `repeat` times, the variants taking turns; the median run of each.
    `bundles` names a variant's own bundle where it is not `bundle`."""
    done: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, options in variants.items():
            done[name].append(score_pipeline(path, (bundles or {}).get(name, bundle), folder, extra, options))
    return {name: median_run(runs, size) for name, runs in done.items()}


def median_run(runs: list[dict[str, float]], size: int) -> dict[str, Any]:
    """The run with the median wall time, plus every run's wall time and the range of rates."""
    ordered = sorted(runs, key=lambda r: r["wall_seconds"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["reviews_per_second"] = size / median["wall_seconds"]
    median["runs_wall_seconds"] = [round(r["wall_seconds"], 2) for r in runs]
    median["reviews_per_second_range"] = [size / ordered[-1]["wall_seconds"], size / ordered[0]["wall_seconds"]]
    return median


def max_difference(naive_scores: Path, data: Path, out: Path) -> float:
    ids = pq.read_table(data, columns=[REVIEW_ID]).column(REVIEW_ID).to_pylist()
    expected = dict(zip(ids, np.load(naive_scores).tolist(), strict=True))
    files = sorted(out.glob(f"{SCORED_PREFIX}-*"))
    scored = pa.concat_tables(pq.read_table(f, columns=[REVIEW_ID, SCORE]) for f in files)
    got = dict(zip(scored.column(REVIEW_ID).to_pylist(), scored.column(SCORE).to_pylist(), strict=True))
    if set(got) != set(expected):
        raise SystemExit(f"pipeline scored {len(got)} reviews, naive {len(expected)}: the sets differ")
    return max(abs(got[k] - expected[k]) for k in expected)


def flops_per_token(bundle_path: Path) -> tuple[float, dict[str, float]]:
    """FLOPs per token of the model's LSTMs (2 x multiply-adds; an LSTM's kernels hold its 4 gates),
    and what each engine executes per token.

    The xla and onnx engines fold each input projection into a lookup table, so per token they
    execute only the recurrent products; keras runs the input projection too. The model's count is
    the honest measure of work done for the user.
    """
    import pipeline.model.layers  # noqa: F401
    from pipeline.model.bundle import Bundle

    model = Bundle.open(bundle_path).load_model()
    inputs = recurrent_macs = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.__class__.__name__ == "LSTMCell":
            inputs += layer.kernel.shape[0] * layer.kernel.shape[1]
            recurrent_macs += layer.recurrent_kernel.shape[0] * layer.recurrent_kernel.shape[1]
    full = 2.0 * (inputs + recurrent_macs)
    return full, {"xla": 2.0 * recurrent_macs, "onnx": 2.0 * recurrent_macs, "keras": full}


def compare(
    path: Path,
    bundle: Path,
    out: Path,
    end_to_end: dict[str, Any],
    engines: list[str],
    executed: dict[str, float],
    peak: float,
) -> dict[str, Any]:
    """Tutorial way (best of 2), each engine alone, and end to end, on the same reviews."""
    real_tokens, _ = tokens_scored(path, bundle)
    tutorial_json = out / "tutorial.json"
    process = run_measured([sys.executable, __file__, "tutorial", str(path), str(bundle), str(tutorial_json)])
    tutorial_run = {**json.loads(tutorial_json.read_text()), "peak_rss_mb": process["peak_rss_mb"]}
    tutorial_run["reviews_per_second"] = tutorial_run["reviews"] / tutorial_run["seconds"]
    alone: dict[str, dict[str, Any]] = {}
    logits = {}
    for engine in engines:
        result, saved = out / f"engine-{engine}.json", out / f"logits-{engine}.npy"
        process = run_measured(
            [sys.executable, __file__, "engine", str(path), str(bundle), engine, str(result), str(saved)]
        )
        run = {**json.loads(result.read_text()), "process_seconds": process["wall_seconds"]}
        run["peak_rss_mb"] = process["peak_rss_mb"]
        run["reviews_per_second"] = run["reviews"] / run["score_seconds"]
        run["executed_gflops"] = real_tokens * executed[engine] / run["score_seconds"] / 1e9
        run["percent_of_peak"] = 100 * run["executed_gflops"] * 1e9 / peak
        alone[engine] = run
        logits[engine] = np.load(saved)
    reference = "keras" if "keras" in logits else engines[0]
    for engine in engines:
        alone[engine]["max_abs_logit_difference_to_" + reference] = float(
            np.abs(logits[engine] - logits[reference]).max()
        )
    fastest = max(alone, key=lambda e: alone[e]["reviews_per_second"])
    e2e = end_to_end["pipeline"]["reviews_per_second"]
    return {
        "reviews": end_to_end["reviews"],
        "tutorial": tutorial_run,
        "engines": alone,
        "fastest_engine": fastest,
        "end_to_end": end_to_end["pipeline"],
        "end_to_end_vs_tutorial": e2e / tutorial_run["reviews_per_second"],
        "end_to_end_vs_fastest_engine": e2e / alone[fastest]["reviews_per_second"],
    }


def engine_for(bundle_path: Path, reviews: int) -> str:
    """The engine `auto` chose for a job of this size (the pipeline runs ran with `auto`)."""
    from pipeline.model.bundle import Bundle
    from pipeline.model.engines.choice import choose_engine

    return choose_engine("auto", Bundle.open(bundle_path).manifest.files, reviews)[0]


def tokens_scored(path: Path, bundle_path: Path) -> tuple[int, int]:
    """Real tokens the pipeline feeds the model, and what padding everything to max_length costs."""
    from pipeline.model.bundle import Bundle

    bundle = Bundle.open(bundle_path)
    real = rows = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=50_000, columns=[TEXT]):
        lengths = bundle.encoder.encode(batch.column(TEXT)).lengths
        real, rows = real + int(lengths.sum()), rows + int((lengths > 0).sum())
    return real, rows * bundle.preprocessing.max_length


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


def _rate(run: dict[str, Any] | None) -> str:
    if not run:
        return "-"
    text = f"{run['reviews_per_second']:,.0f} ({run['wall_seconds']:.1f} s)"
    if len(run.get("runs_wall_seconds", [])) > 1:
        low, high = run["reviews_per_second_range"]
        text += f", range {low:,.0f}-{high:,.0f}"
    return text


def _memory(run: dict[str, float] | None) -> str:
    return f"{run['peak_rss_mb']:,.0f} MB" if run else "-"


def render_sizes(report: dict[str, Any]) -> list[str]:
    """The naive script against the pipeline at every input size, then start-up."""
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
            f"| {r['reviews']:,} | {_rate(naive_run)} | {_rate(pipeline_run)} | {speedup} | {difference} "
            f"| {_memory(naive_run)} | {_memory(pipeline_run)} |"
        )
    startup = report["startup_10_reviews"]
    return [
        *lines,
        "",
        f"Start-up: `reviewscore --help` {report['help_seconds']:.2f} s (best of 3); the README quick start "
        f"(12 review files) {report['quick_start']['wall_seconds']:.1f} s, peak RSS "
        f"{report['quick_start']['peak_rss_mb']:,.0f} MB; 10 reviews of Parquet {startup['wall_seconds']:.1f} s, "
        f"peak RSS {startup['peak_rss_mb']:,.0f} MB.",
    ]


def render_comparison(c: dict[str, Any]) -> list[str]:
    """The tutorial way, each engine alone and end to end, on the same reviews."""
    t = c["tutorial"]
    lines = [
        "",
        f"On the same {c['reviews']:,} reviews:",
        "",
        "| what | load s | scoring s | reviews/s | GFLOP/s executed (% of peak) | max abs logit diff | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| tutorial way: `model.predict`, padded to 500, batch 256, best of 2 | - | {t['seconds']:.1f} "
        f"| {t['reviews_per_second']:,.0f} | - | - | {t['peak_rss_mb']:,.0f} MB |",
    ]
    for name, run in c["engines"].items():
        difference = next(v for k, v in run.items() if k.startswith("max_abs_logit_difference"))
        lines.append(
            f"| engine {name} alone | {run['load_seconds']:.1f} | {run['score_seconds']:.1f} "
            f"| {run['reviews_per_second']:,.0f} | {run['executed_gflops']:.1f} ({run['percent_of_peak']:.0f} %) "
            f"| {difference:.1e} | {run['peak_rss_mb']:,.0f} MB |"
        )
    end = c["end_to_end"]
    return [
        *lines,
        f"| end to end: `reviewscore score`, Parquet in and out | - | {end['wall_seconds']:.1f} (whole process) "
        f"| {end['reviews_per_second']:,.0f} | - | - | {end['peak_rss_mb']:,.0f} MB |",
        "",
        f"End to end = **{c['end_to_end_vs_tutorial']:.2f}x** the tutorial way and "
        f"**{100 * c['end_to_end_vs_fastest_engine']:.0f} %** of the fastest engine alone "
        f"({c['fastest_engine']}). Logit differences are to the keras engine.",
    ]


def render_sample(x: dict[str, Any]) -> list[str]:
    off, on = x["runs"]["no explanations"], x["runs"]["default sample"]
    return [
        "",
        f"The default sampled explanations, {x['reviews']:,} reviews end to end ({x['explained']:,} explained): "
        f"{on['wall_seconds']:.1f} s against {off['wall_seconds']:.1f} s with `--explain-sample 0`, "
        f"**{100 * x['extra']:+.1f} %**.",
    ]


def render_shadow(x: dict[str, Any]) -> list[str]:
    """The challenger's cost as one line; a copy of the bundle is named as such, since its agreement is 1."""
    plain, shadowed = x["runs"]["plain"], x["runs"]["shadowed"]
    model = x["challenger"]
    who = (
        "a copy of the bundle itself (the same network, so the cost of any challenger of its architecture)"
        if x["challenger_is_copy"]
        else f"{model.get('name', '?')} {model.get('version', '?')}"
    )
    return [
        "",
        f"A challenger, {x['reviews']:,} reviews end to end, `--shadow-model` set to {who}: "
        f"{shadowed['wall_seconds']:.1f} s against {plain['wall_seconds']:.1f} s plain "
        f"(runs: {shadowed['runs_wall_seconds']} and {plain['runs_wall_seconds']}), **{x['ratio']:.2f}x**; "
        f"agreement {x['agreement']}.",
    ]


def render_previous(x: dict[str, Any]) -> list[str]:
    """The bundle against the one it replaces, as one line."""
    new, old = x["runs"]["bundle"], x["runs"]["previous"]
    return [
        "",
        f"Against the previous bundle, {x['reviews']:,} reviews end to end (a default run), in turns: "
        f"{x['versions']['bundle']} {new['wall_seconds']:.1f} s (runs: {new['runs_wall_seconds']}), "
        f"{x['versions']['previous']} {old['wall_seconds']:.1f} s (runs: {old['runs_wall_seconds']}), "
        f"**{x['ratio']:.2f}x**.",
    ]


def render_explain(x: dict[str, Any]) -> list[str]:
    return [
        "",
        f"Explanations, {x['reviews']:,} reviews end to end (`reviewscore score`, whole process): without "
        f"`--explain` {x['runs']['plain']['reviews_per_second']:,.0f} reviews/s "
        f"({x['runs']['plain']['wall_seconds']:.1f} s); "
        + "; ".join(
            f"`--explain {x['top_k']} --explain-method {m}` {x['runs'][m]['reviews_per_second']:,.1f} reviews/s "
            f"({x['runs'][m]['wall_seconds']:.1f} s, **{slow:.1f}x** slower)"
            for m, slow in x["slowdown"].items()
        )
        + ".",
    ]


def render_efficiency(e: dict[str, Any]) -> list[str]:
    """FLOPs executed against the machine's peak."""
    lines = [
        "",
        f"Machine: {e['machine']}; fp32 peak {e['peak_gflops']:.0f} GFLOP/s. Model: {e['flops_per_token']:,.0f} "
        "FLOP per token (2 x multiply-adds of the LSTM kernels); executed per token: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in e["executed_flops_per_token"].items())
        + ".",
        f"Pipeline, largest run: its {e['pipeline_engine']} engine executed {e['pipeline_executed_gflops']:.1f} "
        f"GFLOP/s on real tokens ({100 * e['pipeline_executed_gflops'] / e['peak_gflops']:.0f} % of peak), "
        "whole process.",
    ]
    if "naive_gflops_padded_tokens" in e:
        lines.append(
            f"Naive: {e['naive_gflops_padded_tokens']:.1f} GFLOP/s counting padded tokens "
            f"({100 * e['naive_gflops_padded_tokens'] / e['peak_gflops']:.0f} % of peak), "
            f"{e['naive_gflops_real_tokens']:.1f} GFLOP/s of useful work on real tokens."
        )
    return lines


def render(report: dict[str, Any]) -> str:
    """The results as Markdown tables, for BENCHMARKS.md."""
    lines = render_sizes(report)
    if report.get("comparison"):
        lines += render_comparison(report["comparison"])
    if report.get("explain"):
        lines += render_explain(report["explain"])
    if report.get("sample"):
        lines += render_sample(report["sample"])
    if report.get("shadow"):
        lines += render_shadow(report["shadow"])
    if report.get("previous"):
        lines += render_previous(report["previous"])
    lines += render_efficiency(report["efficiency"])
    if "cores" in report:
        lines += ["", "Dataflow cost per million reviews at this rate (benchmarks/dataflow_cost.py):", ""]
        lines.append(dataflow_cost.from_bench(report).rstrip("\n"))
    return "\n".join(lines) + "\n"


def measure_size(
    data: Path, inputs: Path, bundle: Path, out: Path, extra: list[str], size: int, repeat: int, skip_naive_above: int
) -> dict[str, Any]:
    """The naive script and the pipeline on `size` reviews, `repeat` times each, and how far their scores differ."""
    path = make_input(data, size, inputs)
    row: dict[str, Any] = {"reviews": size}
    scores = out / f"naive-{size}.npy"
    scored = out / f"scored-{size}"
    runs: dict[str, list[dict[str, float]]] = {"naive": [], "pipeline": []}
    for _ in range(repeat):  # interleaved, so a slow spell of the machine hits both variants
        if not skip_naive_above or size <= skip_naive_above:
            runs["naive"].append(run_measured([sys.executable, __file__, "naive", str(path), str(bundle), str(scores)]))
        runs["pipeline"].append(score_pipeline(path, bundle, scored, extra))
    for variant, measured in runs.items():
        if measured:
            row[variant] = median_run(measured, size)
    if "naive" in row:
        row["speedup"] = row["pipeline"]["reviews_per_second"] / row["naive"]["reviews_per_second"]
        row["max_abs_score_difference"] = max_difference(scores, path, scored)
    shutil.rmtree(scored)
    return row


def measure_startup(data: Path, inputs: Path, bundle: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    """10 reviews of Parquet, `reviewscore --help` (best of 3) and the README's quick start."""
    startup = score_pipeline(make_input(data, 10, inputs), bundle, out / "scored-startup", extra)
    reviewscore = str(ROOT / ".venv/bin/reviewscore")
    help_runs = [run_measured([reviewscore, "--help"]) for _ in range(3)]
    quick_start = run_measured(
        [reviewscore, "score", str(ROOT / "examples/reviews"), "--output", str(out / "quickstart"), "--model",
         str(bundle), "--overwrite"]
    )  # fmt: skip
    return {
        "startup_10_reviews": startup,
        "help_seconds": min(r["wall_seconds"] for r in help_runs),
        "quick_start": quick_start,
    }


def measure_efficiency(
    path: Path, bundle: Path, largest: dict[str, Any], peak: float, machine: str
) -> tuple[dict[str, Any], dict[str, int]]:
    """FLOPs executed per second by the largest run's pipeline (and naive script), and the tokens they scored."""
    real_tokens, padded_tokens = tokens_scored(path, bundle)
    per_token, executed = flops_per_token(bundle)
    largest_engine = engine_for(bundle, largest["reviews"])
    efficiency = {
        "flops_per_token": per_token,
        "executed_flops_per_token": executed,
        "machine": machine,
        "peak_gflops": peak / 1e9,
        "pipeline_engine": largest_engine,
        "pipeline_executed_gflops": real_tokens * executed[largest_engine] / largest["pipeline"]["wall_seconds"] / 1e9,
    }
    if "naive" in largest:
        efficiency["naive_gflops_padded_tokens"] = padded_tokens * per_token / largest["naive"]["wall_seconds"] / 1e9
        efficiency["naive_gflops_real_tokens"] = real_tokens * per_token / largest["naive"]["wall_seconds"] / 1e9
    tokens = {"real": real_tokens, "padded_to_max_length": padded_tokens, "reviews": largest["reviews"]}
    return efficiency, tokens


def main(
    data: Annotated[Path, typer.Option(help="Parquet with review_id and text (unsup.parquet).")] = Path(
        "data/imdb/unsup.parquet"
    ),
    bundle: Annotated[Path, typer.Option(help="Model bundle.")] = Path(DEFAULT_MODEL),
    sizes: Annotated[str, typer.Option(help="Comma-separated input sizes.")] = "1000,10000,50000,200000",
    out: Annotated[Path, typer.Option(help="Folder for inputs, outputs and results.")] = Path("bench-results"),
    beam_args: Annotated[str, typer.Option(help="Extra Beam options for the pipeline runs.")] = "",
    skip_naive_above: Annotated[int, typer.Option(help="Skip the naive run above this size (0: never).")] = 0,
    repeat: Annotated[
        int, typer.Option(min=1, help="Runs of each variant per size, interleaved; the median is reported.")
    ] = 1,
    compare_size: Annotated[
        int, typer.Option(help="Size (one of --sizes) for the tutorial way, each engine alone and the ratios.")
    ] = 50000,
    engines: Annotated[str, typer.Option(help="Engines to measure alone.")] = "onnx,xla,keras",
    explain_size: Annotated[int, typer.Option(help="Reviews scored with and without --explain (0: skip).")] = 5000,
    explain_methods: Annotated[
        str, typer.Option(help="Comma-separated --explain-method values to measure.")
    ] = "occlusion",
    sample_size: Annotated[
        int, typer.Option(help="Reviews scored with the default --explain-sample and without (0: skip).")
    ] = 50000,
    shadow_size: Annotated[
        int | None, typer.Option(help="Reviews scored plain and shadowed (0: skip; default: --compare-size).")
    ] = None,
    shadow_bundle: Annotated[
        Path | None, typer.Option(help="The challenger for --shadow-model (default: a copy of --bundle, same cost).")
    ] = None,
    previous_bundle: Annotated[
        Path | None, typer.Option(help="The bundle --bundle replaces: both score the same reviews, in turns.")
    ] = None,
    previous_size: Annotated[
        int | None, typer.Option(help="Reviews scored with each bundle (0: skip; default: --compare-size).")
    ] = None,
) -> None:
    quiet_tensorflow()  # the tutorial's way and the engines alone load TensorFlow in this process
    out.mkdir(parents=True, exist_ok=True)
    inputs = out / "inputs"
    inputs.mkdir(exist_ok=True)
    extra = beam_args.split()
    results = []
    for size in [int(s) for s in sizes.split(",")]:
        results.append(measure_size(data, inputs, bundle, out, extra, size, repeat, skip_naive_above))
        print(json.dumps(results[-1]), flush=True)
    startup = measure_startup(data, inputs, bundle, out, extra)
    explained = measure_explain(data, inputs, bundle, out, extra, explain_size, explain_methods.split(","), repeat)
    sampled = measure_sample(data, inputs, bundle, out, extra, sample_size, repeat)
    shadow_size = compare_size if shadow_size is None else shadow_size  # the ratio at the size the README's are
    shadowed = measure_shadow(data, inputs, bundle, out, extra, shadow_size, repeat, shadow_bundle)
    previous_size = compare_size if previous_size is None else previous_size
    previous = measure_previous(data, inputs, bundle, out, extra, previous_size, repeat, previous_bundle)

    largest = max(results, key=lambda r: r["reviews"])
    peak, machine = peak_flops()
    largest_input = make_input(data, largest["reviews"], inputs)
    efficiency, tokens = measure_efficiency(largest_input, bundle, largest, peak, machine)
    compared = next((r for r in results if r["reviews"] == compare_size), None)
    comparison = (
        compare(
            make_input(data, compare_size, inputs), bundle, out, compared, engines.split(","),
            efficiency["executed_flops_per_token"], peak,
        )
        if compared
        else None
    )  # fmt: skip
    report = {
        "machine": machine,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cores": len(os.sched_getaffinity(0)),
        "beam_args": extra,
        "repeat": repeat,
        "results": results,
        **startup,
        "comparison": comparison,
        "explain": explained,
        "sample": sampled,
        "shadow": shadowed,
        "previous": previous,
        "efficiency": efficiency,
        "tokens": tokens,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text(render(report))
    plot(results, out / "scaling.png")
    print(json.dumps({"startup_10_reviews": startup["startup_10_reviews"], "efficiency": efficiency}, indent=2))
    if shadowed:
        print("\n".join(render_shadow(shadowed)).strip())
    if previous:
        print("\n".join(render_previous(previous)).strip())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "render":
        print(render(json.loads(Path(sys.argv[2]).read_text())), end="")
    elif len(sys.argv) > 1 and sys.argv[1] == "tutorial":
        tutorial(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "engine":
        engine_alone(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], Path(sys.argv[5]), Path(sys.argv[6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "naive":
        naive(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        typer.run(main)
