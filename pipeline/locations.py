"""Where a job's paths live, and whether the machines that will use them can reach them.

Two mistakes would otherwise surface late. A local input, output or model path given to a remote
runner (Dataflow) is accepted by the launcher and fails on the workers, after the job is queued and
VMs have started; it is refused here, before anything launches. A `gs://` path that cannot be
reached (no network, no such bucket, no permission, no credentials) makes the storage client retry
for minutes and end in a traceback (BENCHMARKS.md, "Storage checks at launch"); here one request per
path, without retries and under one deadline, turns it into one line naming the path and the cause.

The probes read (list one object); only a real, non-dry run also writes and deletes one empty
object under the output's `_staging/`, because a job that can read but not write would otherwise
fail after scoring everything.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from schemas.output import STAGING_FOLDER

LOCAL_RUNNERS = {None, "DirectRunner", "direct", "PrismRunner", "prism", "InteractiveRunner"}
PROBE_SECONDS = 20.0
"""Every probe together; connection and read timeouts of each request are below it."""
REQUEST_TIMEOUT = (5.0, 15.0)
WRITE_CHECK = f"{STAGING_FOLDER}/_write_check"


class StorageError(ValueError):
    """A path the job needs is in the wrong place or cannot be reached (exit code 2)."""


@dataclass(frozen=True)
class JobPaths:
    """The paths of a job, by the name the user gave them (CLI option or template parameter)."""

    inputs: list[str]
    output: str
    model: str

    def named(self) -> list[tuple[str, str]]:
        return [*(("input", path) for path in self.inputs), ("output", self.output), ("model", self.model)]


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def is_remote_runner(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner not in LOCAL_RUNNERS


def check_locations(paths: JobPaths, options: PipelineOptions, *, write: bool) -> None:
    """Refuse local paths on a remote runner, then probe every remote path; StorageError on the first problem."""
    runner = options.view_as(StandardOptions).runner
    if is_remote_runner(options):
        for name, path in paths.named():
            if is_local(path):
                raise StorageError(
                    f"--runner {runner} runs on remote workers, which cannot read the local {name} {path}; "
                    f"copy it to Cloud Storage (gcloud storage cp -r {path} gs://BUCKET/...) and pass the gs:// path"
                )
    remote = [(name, path) for name, path in paths.named() if not is_local(path)]
    if remote:
        probe(remote, options, write_to=paths.output if write and not is_local(paths.output) else None)


def probe(named_paths: list[tuple[str, str]], options: PipelineOptions, write_to: str | None = None) -> None:
    """Reach every path at once, with no retries, and fail with the first problem found.

    Daemon threads rather than an executor: a probe stuck past the deadline must not hold up the
    exit that follows the error (an executor's threads are joined at interpreter exit).
    """
    client = _gcs_client(options) if any(path.startswith("gs://") for _, path in named_paths) else None
    checks = [(name, path, False) for name, path in named_paths]
    if write_to:
        checks.append(("output", write_to, True))
    answers: dict[int, str | None] = {}

    def run(index: int, path: str, write: bool) -> None:
        try:
            answers[index] = _probe_one(path, write, client)
        except Exception as e:  # anything unforeseen is still an answer, not a silent thread death
            answers[index] = _first_line(str(e)) or type(e).__name__

    threads = [
        threading.Thread(target=run, args=(i, path, write), daemon=True) for i, (_, path, write) in enumerate(checks)
    ]
    deadline = time.monotonic() + PROBE_SECONDS
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for index, (name, path, _) in enumerate(checks):  # in the user's order: the message names the first bad path
        if index not in answers:
            raise StorageError(f"cannot reach {name} {path}: no answer within {PROBE_SECONDS:.0f} s")
        if answers[index]:
            raise StorageError(f"cannot use {name} {path}: {answers[index]}")


def _probe_one(path: str, write: bool, client) -> str | None:
    if path.startswith("gs://"):
        return _probe_gcs(path, write, client)
    return _probe_filesystem(path)


def _probe_gcs(path: str, write: bool, client) -> str | None:
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    bucket, _, prefix = path.removeprefix("gs://").partition("/")
    try:
        for _ in client.list_blobs(bucket, prefix=prefix, max_results=1, timeout=REQUEST_TIMEOUT, retry=None):
            break
        if write:
            blob = client.bucket(bucket).blob(f"{prefix.rstrip('/')}/{WRITE_CHECK}".lstrip("/"))
            blob.upload_from_string(b"", timeout=REQUEST_TIMEOUT, retry=None)
            blob.delete(timeout=REQUEST_TIMEOUT, retry=None)
    except api.NotFound:
        return f"bucket gs://{bucket} does not exist"
    except (api.Forbidden, api.Unauthorized) as e:
        return f"permission denied ({'writing' if write else 'listing'} gs://{bucket}: {_first_line(e.message)})"
    except api.GoogleAPICallError as e:
        return f"storage answered {e.code}: {_first_line(e.message)}"
    except (auth.TransportError, OSError) as e:  # requests' ConnectionError and Timeout are OSErrors
        return f"cannot connect to Cloud Storage ({_connection_cause(e)})"
    except auth.GoogleAuthError as e:
        return f"credentials refused ({_first_line(str(e))})"
    return None


def _probe_filesystem(path: str) -> str | None:
    """Other Beam filesystems (s3://, azfs://, hdfs://): a listing, bounded by the common deadline."""
    from apache_beam.io.filesystems import FileSystems

    try:
        FileSystems.match([FileSystems.join(path.rstrip("/"), "*")], limits=[1])
    except Exception as e:
        return _first_line(str(e)) or type(e).__name__
    return None


def _gcs_client(options: PipelineOptions):
    """A storage client as Beam's GCS filesystem would build it, without Beam's credential retries.

    With --no_auth the client is anonymous, and Beam's filesystem in this process is made anonymous
    too: otherwise it retries to find credentials before going anonymous anyway (BENCHMARKS.md,
    "Storage checks at launch").
    """
    from apache_beam.io.gcp import gcsio

    if options.view_as(GoogleCloudOptions).no_auth:
        _use_anonymous_storage()
        return gcsio.create_storage_client(options, use_credentials=False)
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise StorageError(
            "no Google Cloud credentials found for the gs:// paths: run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    return gcsio.create_storage_client(options)


def _use_anonymous_storage() -> None:
    from apache_beam.internal.gcp import auth

    credentials = getattr(auth, "_Credentials", None)
    if credentials is not None and hasattr(credentials, "_credentials_init"):
        with credentials._credentials_lock:
            credentials._credentials, credentials._credentials_init = None, True


def _connection_cause(error: Exception) -> str:
    """The reason under urllib3's wrappers ("Max retries exceeded ... Caused by ..."), or the first line."""
    text = str(error)
    for reason in (
        r"Failed to resolve '[^']+' \([^)]*\)",
        r"Connection refused",
        r"Network is unreachable",
        r"timed out",
    ):
        found = re.search(reason, text)
        if found:
            return found.group(0)
    return _first_line(text)


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
