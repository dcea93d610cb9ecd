"""Launching the scoring job at the portable job service, the two ways it is launched for Dataflow.

- `launch_flex`: `deploy/flex_main.py` run as the Flex Template launcher runs it, in the image's
  (the worker environment's) Python, with the template parameters as `--name=value` and the runner's
  options after them. The entry point submits and returns; the job's end is read from the job service.
- `launch_cli`: `reviewscore score gs://... -- --runner=PortableRunner ...` from the development
  environment, which waits for the job and reads its `_SUMMARY.json`.

Beyond those: `launch_refused` (a wrong-typed input must stop the launch with exit code 2 and submit
nothing) and `launch_killed` (the worker pool is killed once the job has staged its first shard: while
it writes its output).
Every wait has a deadline; a failed job is reported with the last error line the job service kept,
which is where a worker's traceback ends up.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
from google.protobuf import json_format

from deploy.rehearsal.services import Processes
from schemas.output_names import STAGING_FOLDER

REPO = Path(__file__).resolve().parents[2]
FLEX_MAIN = REPO / "deploy" / "flex_main.py"
TERMINAL = {"DONE", "FAILED", "CANCELLED", "UPDATED", "DRAINED"}
SUBMIT_SECONDS = 300.0
RPC_SECONDS = 15.0
POLL_SECONDS = 0.2
"""How often the killed launch lists its output folder: a shard staged is killed within about this."""
SETTLE_SECONDS = 5.0
BOOT_FAILURE = re.compile(r"boot\[\d+\]: worker \S+: cannot start: (.+)")
ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception|Unavailable)|error)\b:? .+")


class JobService:
    """A client of Beam's Job API (the portable job service), with a deadline on every call."""

    def __init__(self, endpoint: str):
        self.channel = grpc.insecure_channel(endpoint)
        self.stub = beam_job_api_pb2_grpc.JobServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def state(self, job_id: str) -> str:
        response = self.stub.GetState(beam_job_api_pb2.GetJobStateRequest(job_id=job_id), timeout=RPC_SECONDS)
        return beam_job_api_pb2.JobState.Enum.Name(response.state)

    def job_id(self, job_name: str) -> str | None:
        """The id of the newest job launched with --job_name=job_name.

        Beam's PortableRunner names every job 'job' at the job service (portable_runner.py), so the
        name is looked up in each job's pipeline options instead.
        """
        jobs = self.stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=RPC_SECONDS).job_info
        named = [job.job_id for job in jobs if option(job.pipeline_options, "job_name") == job_name]
        return named[-1] if named else None

    def wait(self, job_id: str, deadline: float, until: set[str] = TERMINAL, broken=lambda: None) -> tuple[str, str]:
        """Poll the job's state until it is in `until`, `broken()` says why it cannot go on (a worker
        that could not start leaves the local runner waiting for ever), or the deadline passes."""
        while True:
            state = self.state(job_id)
            if state in until or time.monotonic() > deadline:
                return state, ""
            if why := broken():
                return state, why
            time.sleep(0.5)

    def errors(self, job_id: str) -> list[str]:
        """The error messages the job service kept for the job (a failed worker's traceback among them)."""
        messages = []
        request = beam_job_api_pb2.JobMessagesRequest(job_id=job_id)
        try:
            for response in self.stub.GetMessageStream(request, timeout=RPC_SECONDS):
                message = response.message_response
                if message.importance == beam_job_api_pb2.JobMessage.JOB_MESSAGE_ERROR:
                    messages.append(message.message_text)
        except grpc.RpcError:  # the stream ends at the deadline when the job is not terminal
            pass
        return messages

    def cancel(self, job_id: str) -> str:
        response = self.stub.Cancel(beam_job_api_pb2.CancelJobRequest(job_id=job_id), timeout=RPC_SECONDS)
        return beam_job_api_pb2.JobState.Enum.Name(response.state)


@dataclass(frozen=True)
class Setup:
    """What every launch needs: the processes, their environment, the services' addresses."""

    processes: Processes
    env: dict[str, str]
    work: Path
    dev_python: str
    worker_python: str
    job_endpoint: str
    pool_endpoint: str
    jobs: JobService
    timeout: float
    beam_args: tuple[str, ...] = ()

    def worker_failures(self) -> Callable[[], str]:
        """A check for workers that boot.py could not start from now on (their lines in the pool's log)."""
        log = self.processes.logs / "worker-pool.log"
        start = log.stat().st_size if log.exists() else 0

        def check() -> str:
            with open(log, "rb") as f:
                f.seek(start)
                found = BOOT_FAILURE.search(f.read().decode(errors="replace"))
            return f"a worker could not start: {found.group(1)}" if found else ""

        return check

    def portable_options(self, job_name: str) -> list[str]:
        """The runner's options: Beam's portable runner at the job service, workers from the external pool."""
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={self.job_endpoint}",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.pool_endpoint}",
            f"--job_name={job_name}",
            *self.beam_args,
        ]


@dataclass
class Outcome:
    name: str
    ok: bool
    wall: float
    """Seconds from the launch command's start to the job's end (or to the failure)."""
    state: str = ""
    reason: str = ""
    job_id: str | None = None
    submit_seconds: float | None = None
    details: dict = field(default_factory=dict)


def option(options, name: str):
    """A pipeline option from the Struct a job service keeps (keys beam:option:NAME:v1)."""
    values = json_format.MessageToDict(options)
    return values.get(f"beam:option:{name}:v1", values.get(name))


def failure_reason(texts: list[str]) -> str:
    """The last line that names an error (a traceback's last line, or a launcher's 'error: ...')."""
    lines = [line.strip() for text in texts for line in text.splitlines() if ERROR_LINE.match(line)]
    if lines:
        return lines[-1][:400]
    tail = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    return tail[-1][:400] if tail else "no error message"


def flex_command(setup: Setup, parameters: dict[str, str], job_name: str) -> list[str]:
    """deploy/flex_main.py as the template launcher runs it: parameters as --name=value, then the runner's options."""
    return [
        setup.worker_python,
        str(FLEX_MAIN),
        *(f"--{name}={value}" for name, value in parameters.items()),
        *setup.portable_options(job_name),
    ]


def run_to_exit(
    setup: Setup, name: str, argv: list[str], seconds: float, broken=lambda: ""
) -> tuple[int | None, str, str]:
    """Run a launcher to its exit, the deadline or `broken()`'s reason; (exit code or None, output, reason)."""
    process = setup.processes.start(name, argv, setup.env, setup.work)
    deadline = time.monotonic() + seconds
    code, why = None, ""
    while time.monotonic() < deadline and not why:
        try:
            code = process.wait(0.5)
            break
        except subprocess.TimeoutExpired:
            why = broken()
    setup.processes.stop(name)
    return code, (setup.processes.logs / f"{name}.log").read_text(errors="replace"), why


def submitted_job_id(output: str) -> str | None:
    """The job id from the entry point's last JSON line ({"submitted": true, "job_id": ...})."""
    for line in reversed(output.splitlines()):
        try:
            outcome = json.loads(line)
        except ValueError:
            continue
        if isinstance(outcome, dict) and outcome.get("job_id"):
            return outcome["job_id"]
    return None


def submit_flex(setup: Setup, name: str, parameters: dict[str, str]) -> Outcome:
    """Run the entry point to its exit; a successful submission carries the job id."""
    started = time.monotonic()
    code, output, _ = run_to_exit(setup, name, flex_command(setup, parameters, f"reviewscore-{name}"), SUBMIT_SECONDS)
    submitted = time.monotonic() - started
    # flex_main prints {"submitted": true, "job_id": ...}; under PortableRunner its job_id is null
    # (pipeline/job/scoring.py `launched` asks the result for job_id(), which Beam's portable result lacks).
    job_id = (submitted_job_id(output) or setup.jobs.job_id(f"reviewscore-{name}")) if code == 0 else None
    if job_id is None:
        why = "did not return" if code is None else f"exited with code {code}"
        return Outcome(name, False, submitted, reason=f"entry point {why}: {failure_reason([output])}")
    return Outcome(name, True, submitted, "SUBMITTED", job_id=job_id, submit_seconds=submitted)


def finish(setup: Setup, outcome: Outcome, started: float, broken) -> Outcome:
    """Wait for the submitted job's end; DONE is a success, anything else a failure with its reason."""
    state, why = setup.jobs.wait(outcome.job_id, started + setup.timeout, broken=broken)
    outcome.wall = time.monotonic() - started
    outcome.state = state
    outcome.ok = state == "DONE"
    if why:
        outcome.reason = why
    elif state not in TERMINAL:
        outcome.reason = f"job still {state} after {setup.timeout:.0f} s"
    elif not outcome.ok:
        outcome.reason = f"job {state}: {failure_reason(setup.jobs.errors(outcome.job_id))}"
    return outcome


def launch_flex(setup: Setup, parameters: dict[str, str]) -> Outcome:
    started, broken = time.monotonic(), setup.worker_failures()
    outcome = submit_flex(setup, "flex", parameters)
    return finish(setup, outcome, started, broken) if outcome.ok else outcome


def launch_cli(setup: Setup, inputs: str, output: str, model: str, extra: list[str] = ()) -> Outcome:
    """`reviewscore score` in the development environment, waiting for the job like a user would."""
    reviewscore = str(Path(setup.dev_python).parent / "reviewscore")
    argv = [reviewscore, "score", inputs, "--output", output, "--model", model, *extra, "--"]
    argv += setup.portable_options("reviewscore-cli")
    started = time.monotonic()
    code, text, why = run_to_exit(setup, "cli", argv, setup.timeout, setup.worker_failures())
    wall = time.monotonic() - started
    job_id = setup.jobs.job_id("reviewscore-cli")
    state = setup.jobs.state(job_id) if job_id else "NOT SUBMITTED"
    outcome = Outcome("cli", code == 0 and state == "DONE", wall, state, job_id=job_id)
    if why:
        outcome.reason = why
    elif code is None:
        outcome.reason = f"reviewscore score did not finish within {setup.timeout:.0f} s (job {state})"
    elif not outcome.ok:
        errors = setup.jobs.errors(job_id) if state == "FAILED" else []
        outcome.reason = f"exit code {code}, job {state}: {failure_reason(errors or [text])}"
    return outcome


def launch_refused(setup: Setup, parameters: dict[str, str], bad_file: str) -> Outcome:
    """A launch with a wrong-typed input: one 'error:' line naming the file, exit code 2, no job submitted."""
    started = time.monotonic()
    argv = flex_command(setup, parameters, "reviewscore-refused")
    code, output, _ = run_to_exit(setup, "refused", argv, SUBMIT_SECONDS)
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    named = bool(errors) and bad_file.rsplit("/", 1)[-1] in errors[-1]
    submitted = setup.jobs.job_id("reviewscore-refused") is not None
    ok = code == 2 and named and not submitted and "Traceback" not in output
    reason = "" if ok else f"exit code {code}, submitted {submitted}, last line: {failure_reason([output])}"
    return Outcome("refused", ok, time.monotonic() - started, f"exit {code}", reason, details={"error": errors[-1:]})


def staged_shards(names: list[str]) -> list[str]:
    """The shards a job has begun to write, among an output folder's names: Parquet files under
    _staging/ (Beam's temporary files and finished shards not yet published). The launch's write
    check, which also passes through _staging/, is not one."""
    return [name for name in names if name.startswith(f"{STAGING_FOLDER}/") and name.endswith(".parquet")]


def wait_for_staged(look: Callable[[], list[str]], state: Callable[[], str], deadline: float) -> tuple[list[str], str]:
    """Poll the output folder (`look()`) until a shard is staged: (the staged shards, ""), or ([], why
    not) once the job (`state()`) has ended or the deadline has passed without one."""
    while True:
        if staged := staged_shards(look()):
            return staged, ""
        if (now := state()) in TERMINAL:
            return [], f"the job ended ({now}) before any shard was staged"
        if time.monotonic() > deadline:
            return [], f"no shard staged under {STAGING_FOLDER}/ before the deadline (job {now})"
        time.sleep(POLL_SECONDS)


def launch_killed(setup: Setup, parameters: dict[str, str], look: Callable[[], list[str]]) -> Outcome:
    """Submit, wait until the job has staged its first shard, then kill the worker pool with its workers.

    `look()` lists what the output folder holds; it is polled, so the workers die while shards are
    being written rather than before anything was. The pool, its boot processes and SDK workers are
    one process group, so SIGKILL takes them all at once, as a lost VM would. The local job service
    only marks a cancelled job CANCELLED and lets it run on (local_job_service.py, BeamJob.cancel:
    "TODO(robertwb): Actually cancel"), so killing the workers is what stops the job here.
    """
    started = time.monotonic()
    outcome = submit_flex(setup, "killed", parameters)
    if not outcome.ok:
        return outcome
    staged, why = wait_for_staged(look, lambda: setup.jobs.state(outcome.job_id), started + setup.timeout)
    before_kill = setup.jobs.state(outcome.job_id)
    setup.processes.stop("worker-pool", signal.SIGKILL)
    killed_at = time.monotonic() - started
    cancelled = setup.jobs.cancel(outcome.job_id)
    time.sleep(SETTLE_SECONDS)  # anything still on its way to the bucket lands now
    after = look()
    outcome.wall = time.monotonic() - started
    outcome.state = f"killed while {before_kill}, then {setup.jobs.state(outcome.job_id)}"
    outcome.details = {
        "killed_after_seconds": round(killed_at, 1),
        "staged_when_killed": staged,
        "cancel_answer": cancelled,
        "output_after": after,
    }
    outcome.ok = bool(staged) and before_kill == "RUNNING"
    if why:
        outcome.reason = why
    elif not outcome.ok:
        outcome.reason = f"the job was {before_kill} when killed, not RUNNING: the kill came too late"
    return outcome
