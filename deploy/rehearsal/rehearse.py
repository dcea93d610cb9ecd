"""A local rehearsal of a Dataflow Runner v2 launch: `make rehearse-dataflow` (`python -m deploy.rehearsal`).

On this machine, with loopback services only, it runs what a Dataflow launch runs, as close as one
machine allows:

1. the Cloud Storage emulator, with the input reviews and the model bundle on gs://;
2. Beam's portable job service (standing in for the Dataflow service) and an external worker pool
   in the WORKER environment's Python, whose workers are started by boot.py, a stand-in for the SDK
   container's boot: so every worker gets the job's pipeline options as on Dataflow;
3. the job launched on the same inputs (at least `--count` reviews, bad records mixed in) through
   deploy/flex_main.py exactly as the Flex Template launcher runs it (in the worker environment,
   the image's), with the nightly DAG's own template parameters (deploy/dag_policy.py: overwrite,
   on_drift, max_error_rate): first killed, its workers SIGKILLed once its first shard is staged,
   while it writes; then, on a new worker pool, launched again into the same folder, as a retry
   would; then through `reviewscore score` from the development environment; and a launch that
   must be refused (a wrong-typed input);
4. the output read back from the emulator and checked: nothing that looks complete after the
   killed run; read = scored + failed = input records after the rerun (summary and Parquet rows),
   failures by stage as planted, labels and scores against a local DirectRunner run on local
   copies of the same files, `_SUMMARY.json` and `_report.html` present, error files in `_errors/`
   as the summary lists them; and the rerun's verdict read by the DAG's gate, which must decide
   what the DAG's policy says for these inputs (policy.py);
5. one closing line with the figures, and the exit code: 0 only if every check passed.

What it cannot show: Dataflow's shuffle service and autoscaling, the real boot binary (its venv,
its restarts of a crashed SDK process), a real launcher VM, Dataflow's retries of a lost worker's
work on the others (the kill here takes every worker, and the job with them), and Dataflow's one SDK
process per vCPU with its dynamic work distribution (job_service.py makes the local runner start
`--sdk-processes` workers, one per core by default, but it splits each stage's input evenly among
them). Every process it starts is ended when it stops, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from deploy.rehearsal import checks
from deploy.rehearsal.data import Inputs, write_inputs
from deploy.rehearsal.launch import (
    REPO,
    JobService,
    Outcome,
    Setup,
    failure_reason,
    launch_cli,
    launch_flex,
    launch_killed,
    launch_refused,
    run_to_exit,
    staged_shards,
)
from deploy.rehearsal.policy import dag_parameters, policy_checks
from deploy.rehearsal.services import MetadataServer, Processes, free_port, loopback_env, wait_for_port
from deploy.rehearsal.storage import Bucket, start_emulator, wait_for_emulator
from schemas.summary import RunSummary

BOOT = Path(__file__).resolve().parent / "boot.py"
JOB_SERVICE = Path(__file__).resolve().parent / "job_service.py"
MODEL = REPO / "models" / "imdb-bilstm"
OUTPUTS = {"flex": "rehearsal/out-flex", "cli": "rehearsal/out-cli"}
CANNOT_SHOW = (
    "Dataflow's shuffle, autoscaling, the real boot binary, a real launcher VM, Dataflow's retries of a lost "
    "worker's work (here every worker dies at once), one SDK process per vCPU with Dataflow's work "
    "distribution (here the job service splits each stage evenly over --sdk-processes)"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--worker-python",
        default=sys.executable,
        help="Python of the worker environment (the image's): runs the worker pool, boot and flex_main.py.",
    )
    parser.add_argument("--reviews", type=Path, help="Parquet file with a 'text' column; default: synthetic reviews.")
    parser.add_argument("--count", type=int, default=60_000, help="Scorable reviews in the input (default 60,000).")
    parser.add_argument("--work-dir", type=Path, help="Folder for inputs, logs and the local run (kept).")
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds each launch may take (default 600).")
    parser.add_argument(
        "--sdk-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="SDK worker processes per job (--direct_num_workers; default: one per core, as Dataflow's one per vCPU).",
    )
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="OPTION",
        help="An extra Beam option for every portable launch, e.g. --beam-arg=--max_cache_memory_usage_mb=0.",
    )
    parser.add_argument(
        "--cli-arg",
        action="append",
        default=[],
        metavar="OPTION",
        help="An extra `reviewscore score` option for the development launch, e.g. --cli-arg=--engine=xla "
        "(which fails on workers without TensorFlow, and the rehearsal with it).",
    )
    return parser.parse_args(argv)


class Stopwatch:
    """Seconds per stage, in order, for the closing table."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stages: list[tuple[str, float]] = []

    def run(self, name: str, step, *args):
        """step(*args), timed and printed as one stage."""
        since = time.monotonic()
        result = step(*args)
        self.stages.append((name, time.monotonic() - since))
        print(f"  {name}: {self.stages[-1][1]:.1f} s", flush=True)
        return result

    def total(self) -> float:
        return time.monotonic() - self.started


def tensorflow_note(python: str) -> str:
    """Whether the worker environment has TensorFlow: the default image has none, and jobs must not need it."""
    probe = "import importlib.util; print(importlib.util.find_spec('tensorflow') is not None)"
    try:
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run it: {e}"
    if found == "True":
        return "WITH TensorFlow, unlike the default image: use deploy/worker_env.py's environment"
    return "no TensorFlow, like the default image" if found == "False" else "cannot tell whether it has TensorFlow"


def boot_wrapper(work: Path, worker_python: str) -> Path:
    """The worker pool's --container_executable: boot.py run by the worker environment's Python."""
    semi = work / "worker-semi-persistent"
    semi.mkdir(parents=True, exist_ok=True)
    path = work / "boot"
    command = shlex.join([worker_python, str(BOOT), f"--semi_persist_dir={semi}"])
    path.write_text(f'#!/bin/sh\n# The worker container entrypoint of the rehearsal.\nexec {command} "$@"\n')
    path.chmod(0o755)
    return path


def start_pool(processes: Processes, env: dict[str, str], work: Path, worker_python: str):
    """The external worker pool (its workers start through boot.py); (the process, its port)."""
    port = free_port()
    pool_cwd = work / "worker-cwd"  # an empty folder: the workers import the job's code from their environment
    pool_cwd.mkdir(parents=True, exist_ok=True)
    boot = boot_wrapper(work, worker_python)
    pool_argv = [worker_python, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port", str(port)]
    return processes.start("worker-pool", [*pool_argv, "--container_executable", str(boot)], env, pool_cwd), port


def start_services(processes: Processes, env: dict[str, str], work: Path, worker_python: str) -> tuple[str, str]:
    """The job service and the worker pool; their endpoints, once both listen."""
    job_port = free_port()
    staging = work / "job-staging"
    staging.mkdir(parents=True, exist_ok=True)
    job_service = processes.start(
        "job-service",
        [sys.executable, str(JOB_SERVICE), "--port", str(job_port), "--staging_dir", str(staging)],
        env,
        work,
    )
    pool, pool_port = start_pool(processes, env, work, worker_python)
    wait_for_port(job_port, job_service, "the job service")
    wait_for_port(pool_port, pool, "the worker pool")
    return f"localhost:{job_port}", f"localhost:{pool_port}"


def restart_pool(setup: Setup) -> Setup:
    """A new worker pool after the killed launch took the old one down (its log kept aside)."""
    setup.processes.stop("worker-pool")  # already gone unless the killed launch never got that far
    logs = setup.processes.logs
    if (logs / "worker-pool.log").exists():
        (logs / "worker-pool.log").replace(logs / "worker-pool-killed.log")
    pool, port = start_pool(setup.processes, setup.env, setup.work, setup.worker_python)
    wait_for_port(port, pool, "the worker pool")
    return replace(setup, pool_endpoint=f"localhost:{port}")


def run_local(setup: Setup, inputs: Inputs, out: Path) -> Outcome:
    """The reference: `reviewscore score` on local copies of the inputs, on DirectRunner."""
    reviewscore = str(Path(setup.dev_python).parent / "reviewscore")
    argv = [reviewscore, "score", f"{inputs.folder}/", "--output", str(out), "--model", str(MODEL), "--overwrite"]
    started = time.monotonic()
    code, text, _ = run_to_exit(setup, "local", argv, setup.timeout)
    outcome = Outcome("local", code == 0, time.monotonic() - started, f"exit {code}")
    if code != 0:
        outcome.reason = f"exit code {code}: {failure_reason([text])}"
    return outcome


def template_parameters(bucket: Bucket, output: str, inputs: str | None = None) -> dict[str, str]:
    """The DAG's parameters for the rehearsal's bucket: its inputs (or `inputs`), `output` and model."""
    model = bucket.path("rehearsal", "models", "imdb-bilstm")
    return dag_parameters(inputs or bucket.path("rehearsal", "reviews") + "/", output, model)


def read_gcs(bucket: Bucket, prefix: str) -> checks.Output:
    names = bucket.names(prefix)
    return checks.read_output(names, lambda name: bucket.read(f"{prefix}/{name}"))


def launch_checks(outcome: Outcome, output: checks.Output | None, inputs: Inputs, reference: checks.Output):
    """The checks of one launch: it succeeded, its counts hold, it agrees with the local run."""
    results = [checks.Check(f"{outcome.name}: job {outcome.state or 'not submitted'}", outcome.ok, outcome.reason)]
    if not outcome.ok or output is None:
        return results, float("nan"), None
    found, max_diff, mismatches = checks.compare(outcome.name, output, reference)
    return results + checks.check_counts(outcome.name, output, inputs) + found, max_diff, mismatches


def killed_checks(outcome: Outcome, rerun: checks.Output | None) -> list[checks.Check]:
    """Killed while it wrote (a shard staged, the job RUNNING), it left nothing a reader takes for a
    result; and the rerun into its folder (`rerun`, when it succeeded) left none of its shards behind."""
    complete = checks.looks_complete(outcome.details.get("output_after", []))
    staged = outcome.details.get("staged_when_killed", [])
    left = staged_shards(rerun.names) if rerun else []
    cleared = checks.Check("flex: the rerun left no staged shard behind", not left, f"left {left[:3]}" if left else "")
    return [
        checks.Check(
            "killed: workers killed while shards were being written",
            outcome.ok,
            outcome.reason or f"{len(staged)} staged, {outcome.details.get('killed_after_seconds')} s in",
        ),
        checks.Check(
            "killed: nothing looks complete", outcome.ok and not complete, f"found {complete}" if complete else ""
        ),
    ] + ([cleared] if rerun else [])


def kill_statement(killed: Outcome | None, failed: list[checks.Check]) -> str:
    """The closing line's account of the killed launch and the rerun over its folder."""
    if killed is None:
        return "not run"
    broken = [c for c in failed if c.name.startswith(("killed", "flex"))]
    if broken:
        return "FAILED: " + "; ".join(f"{c.name} ({c.detail})" for c in broken)
    staged = len(killed.details.get("staged_when_killed", []))
    return (
        f"workers killed {killed.details.get('killed_after_seconds')} s in with {staged} shard(s) staged, "
        "nothing looked complete, and the rerun with overwrite scored every row"
    )


def closing_line(
    inputs: Inputs,
    results: dict[str, Outcome],
    summaries: dict[str, RunSummary | None],
    figures: dict,
    failed: list[checks.Check],
    total,
) -> str:
    flex = summaries.get("flex") or summaries.get("cli")
    walls = ", ".join(f"{name} {outcome.wall:.1f} s" for name, outcome in results.items())
    engines = ", ".join(f"{name} {s.engine}" for name, s in summaries.items() if s)
    kill = kill_statement(results.get("killed"), failed)
    named = "; ".join(f"{c.name}{': ' + c.detail if c.detail else ''}" for c in failed[:3])
    verdict = f"FAIL ({len(failed)} checks failed: {named})" if failed else "PASS"
    return (
        f"rehearse-dataflow {verdict}: {inputs.records:,} reviews, {flex.records_scored if flex else 0:,} scored, "
        f"{flex.records_failed if flex else 0:,} failed; vs the local run ({figures['compared']} of 2 launches): "
        f"max |score diff| {figures['max_diff']:.1e}, label mismatches {figures['mismatches']}; wall {walls}; "
        f"engines {engines}; killed run: {kill}; {figures['policy']}; total {total:.0f} s. "
        f"Not rehearsed: {CANNOT_SHOW}."
    )


def start(args: argparse.Namespace, work: Path, stack: ExitStack) -> tuple[Setup, Bucket]:
    """The emulator, the metadata stand-in, the job service and the worker pool, all ended with `stack`."""
    processes = stack.enter_context(Processes(work / "logs"))
    metadata = stack.enter_context(MetadataServer())
    bucket = Bucket(f"http://127.0.0.1:{free_port()}")
    env = loopback_env(dict(os.environ), bucket.url, metadata.address, work / "gcloud")
    emulator = start_emulator(processes, env, work, bucket)
    job_endpoint, pool_endpoint = start_services(processes, env, work, args.worker_python)
    wait_for_emulator(bucket, emulator)
    jobs = stack.enter_context(contextlib.closing(JobService(job_endpoint)))
    beam_args = (f"--direct_num_workers={args.sdk_processes}", *args.beam_arg)
    setup = Setup(
        processes=processes,
        env=env,
        work=work,
        dev_python=sys.executable,
        worker_python=args.worker_python,
        job_endpoint=job_endpoint,
        pool_endpoint=pool_endpoint,
        jobs=jobs,
        timeout=args.timeout,
        beam_args=beam_args,
    )
    return setup, bucket


def upload(bucket: Bucket, inputs: Inputs) -> None:
    bucket.upload(inputs.folder, "rehearsal/reviews")
    bucket.upload(inputs.wrong_typed, "rehearsal/refused/wrong-typed.parquet")
    bucket.upload(MODEL, "rehearsal/models/imdb-bilstm")


def launch_all(args, setup: Setup, bucket: Bucket, inputs: Inputs, watch: Stopwatch) -> dict[str, Outcome]:
    """The local reference run; the killed launch and its rerun into the same folder; the development
    launch; the refused launch; in that order."""
    results: dict[str, Outcome] = {}
    results["local"] = watch.run("local DirectRunner run", run_local, setup, inputs, setup.work / "local-output")
    flex = template_parameters(bucket, bucket.path(OUTPUTS["flex"]))
    results["killed"] = watch.run(
        "launch through flex_main.py, killed while it writes",
        launch_killed,
        setup,
        flex,
        lambda: bucket.names(OUTPUTS["flex"]),
    )
    setup = watch.run("worker pool restarted", restart_pool, setup)
    results["flex"] = watch.run("rerun through flex_main.py into the killed run's folder", launch_flex, setup, flex)
    cli = template_parameters(bucket, bucket.path(OUTPUTS["cli"]))
    results["cli"] = watch.run(
        "launch through reviewscore score", launch_cli, setup, cli["input"], cli["output"], cli["model"], args.cli_arg
    )
    wrong_typed = f"{flex['input']},{bucket.path('rehearsal', 'refused', 'wrong-typed.parquet')}"
    refused = template_parameters(bucket, bucket.path("rehearsal", "out-refused"), wrong_typed)
    results["refused"] = watch.run(
        "launch with a wrong-typed input", launch_refused, setup, refused, "wrong-typed.parquet"
    )
    return results


def rehearse(args: argparse.Namespace, work: Path, stack: ExitStack, watch: Stopwatch) -> tuple[list, str]:
    """Run every stage; the failed checks and the closing line."""
    setup, bucket = watch.run("services up (emulator, metadata, job service, worker pool)", start, args, work, stack)
    inputs = watch.run("inputs written", write_inputs, work / "inputs" / "reviews", args.count, args.reviews)
    watch.run("inputs and model uploaded to gs://", upload, bucket, inputs)
    results = launch_all(args, setup, bucket, inputs, watch)
    all_checks, summaries, figures = watch.run("output read back and checked", evaluate, bucket, work, inputs, results)
    failed = [c for c in all_checks if not c.ok]
    report(all_checks, results)
    return failed, closing_line(inputs, results, summaries, figures, failed, watch.total())


def evaluate(bucket: Bucket, work: Path, inputs: Inputs, results: dict[str, Outcome]):
    """Every check; the summaries of the runs and the figures of the closing line."""
    local_ok = results["local"].ok
    reference = checks.local_output(work / "local-output") if local_ok else None
    all_checks = [checks.Check("local: DirectRunner run", local_ok, results["local"].reason)]
    summaries = {"local": reference.summary if reference else None}
    if reference is not None:
        all_checks += checks.check_counts("local", reference, inputs)
    diffs, mismatches, outputs = [], [], {}
    for name, prefix in OUTPUTS.items():
        output = outputs[name] = read_gcs(bucket, prefix) if results[name].ok else None
        summaries[name] = output.summary if output else None
        found, max_diff, mismatch = launch_checks(results[name], output, inputs, reference or output)
        all_checks += found
        diffs.append(max_diff)
        mismatches.append(mismatch)
    all_checks.append(checks.Check("refused: wrong-typed input refused with exit 2", results["refused"].ok))
    all_checks += killed_checks(results["killed"], outputs["flex"])
    judged, statement = policy_checks("flex", summaries["flex"], inputs) if results["flex"].ok else ([], "not judged")
    all_checks += judged
    compared = [(d, m) for d, m in zip(diffs, mismatches, strict=True) if m is not None]
    figures = {
        "max_diff": max((d for d, _ in compared), default=float("nan")),
        "mismatches": sum(m for _, m in compared) if compared else None,
        "compared": len(compared),
        "policy": statement,
    }
    return all_checks, summaries, figures


def report(all_checks: list[checks.Check], results: dict[str, Outcome]) -> None:
    for outcome in results.values():
        extra = f" (submitted in {outcome.submit_seconds:.1f} s)" if outcome.submit_seconds else ""
        print(f"{outcome.name}: {outcome.state} in {outcome.wall:.1f} s{extra} {outcome.reason}".rstrip(), flush=True)
        for key, value in outcome.details.items():
            print(f"    {key}: {value}")
    for check in all_checks:
        print(f"  [{'ok' if check.ok else 'FAILED'}] {check.name}{': ' + check.detail if check.detail else ''}")


def interrupt(*_) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)  # clean up as on Ctrl-C
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="reviewscore-rehearsal-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    note = tensorflow_note(args.worker_python)
    print(f"rehearsal in {work}; worker Python {args.worker_python} ({note})", flush=True)
    failed: list = [checks.Check("rehearsal", False, "interrupted")]
    try:
        with ExitStack() as stack:
            failed, line = rehearse(args, work, stack, watch)
    except KeyboardInterrupt:
        line = f"rehearse-dataflow INTERRUPTED after {watch.total():.0f} s; every process it started was ended"
    except Exception as e:  # a service that did not start, a bucket that did not answer: still one closing line
        traceback.print_exc()
        line = f"rehearse-dataflow FAIL after {watch.total():.0f} s: {type(e).__name__}: {e}"
    if failed:
        print(f"logs and inputs kept in {work}", flush=True)
    elif args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
