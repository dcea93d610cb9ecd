"""What the job reads of Beam that Beam does not publish, in one place, checked against the pinned
Beam by tests/test_beam_internals.py.

Beam's public API says nothing of these, yet the job needs them: a submitted job's id from a portable
runner, the graph a dry run built, anonymous access to a storage emulator, how DirectRunner names a
dead worker process and what its worker processes run, RunInference's load metric. Each is read
defensively (a missing attribute reads as "not known") so that a Beam upgrade that moves one costs a
detail, never a run; the test says which, at the upgrade.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LOAD_LATENCY_METRIC",
    "WORKER_COMMAND",
    "WORKER_EXITED",
    "described_only",
    "graph_steps",
    "submitted_job_id",
    "use_anonymous_storage",
]

WORKER_EXITED = "Worker subprocess exited"
"""How DirectRunner words a worker process's death (local_job_service.SubprocessSdkWorker.run)."""
WORKER_COMMAND = "apache_beam.runners.worker.sdk_worker_main"
"""What the command line of a DirectRunner worker process runs."""
LOAD_LATENCY_METRIC = "load_model_latency_milli_secs"
"""RunInference's distribution with one sample per model load (ml/inference/base.py, _MetricsCollector)."""


def described_only(result: Any) -> bool:
    """Did the runner only describe the job (DataflowRunner under --template_location), submitting none?"""
    return getattr(result, "has_job", True) is False


def submitted_job_id(result: Any) -> str | None:
    """The submitted job's id: DataflowPipelineResult's `job_id()`; a portable runner's result keeps it
    only as `_job_id`."""
    job_id = getattr(result, "job_id", None)
    return job_id() if callable(job_id) else getattr(result, "_job_id", None)


def graph_steps(result: Any) -> list[str]:
    """Names of every step of the job graph a runner built (DataflowRunner keeps it on a dry run)."""
    job = getattr(result, "job", None)
    if job is None:
        return []
    return sorted(t.unique_name for t in job.proto_pipeline.components.transforms.values() if t.unique_name)


def use_anonymous_storage() -> None:
    """Make Beam's GCS client skip credentials (a storage emulator): Beam caches its credentials in
    `auth._Credentials`, and `--no_auth` alone does not reach that cache."""
    from apache_beam.internal.gcp import auth

    credentials = getattr(auth, "_Credentials", None)
    if credentials is not None and hasattr(credentials, "_credentials_init"):
        with credentials._credentials_lock:
            credentials._credentials, credentials._credentials_init = None, True
