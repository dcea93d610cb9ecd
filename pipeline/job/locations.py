"""Where a job's paths live, and whether the machines that will use them can reach them.

Two mistakes would otherwise surface late. A local input, output or model path given to a remote
runner (Dataflow) is accepted by the launcher and fails on the workers, after the job is queued and
VMs have started; it is refused here, before anything launches. A `gs://` path that cannot be
reached (no network, no such bucket, no permission, no credentials) makes the storage client retry
for minutes and end in a traceback (BENCHMARKS.md#storage-checks); here one request per
path, without retries and under one deadline, turns it into one line naming the path and the cause.

The probes read (list one object); only a real, non-dry run also writes and deletes one empty
object under the output's `_staging/`, because a job that can read but not write would otherwise
fail after scoring everything.

The checks that need neither Beam nor the model (`check_early`: the extra gs:// needs, inputs that
do not exist, an output folder that is not free) are here too, cheap to import: `reviewscore score`
runs them before Beam is imported, which takes longer than they do, and the job runs them again in
its own order (pipeline/job/scoring.py), for every door.
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.job.beam_internals import use_anonymous_storage
from pipeline.model.extras import GCP, MissingExtra, require
from schemas.output_names import (
    ERROR_FILES,
    FLAT_LAYOUT_FILES,
    REPORT_FILE,
    SCORED_FILES,
    STAGING_FOLDER,
    SUMMARY_FILE,
)

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

LOCAL_RUNNERS = {None, "DirectRunner", "direct", "PrismRunner", "prism", "InteractiveRunner"}
PROBE_SECONDS = 20.0
"""Every probe together; connection and read timeouts of each request are below it."""
REQUEST_TIMEOUT = (5.0, 15.0)
WRITE_CHECK = f"{STAGING_FOLDER}/_write_check"
GLOB_CHARS = frozenset("*?[")
OUR_FILES = (SUMMARY_FILE, REPORT_FILE, SCORED_FILES, ERROR_FILES, *FLAT_LAYOUT_FILES)
"""Every name (a pattern, relative to the output folder) a run writes there, in this layout or the flat one."""


class StorageError(ValueError):
    """A path the job needs is in the wrong place or cannot be reached (exit code 2)."""


class InputError(ValueError):
    """An INPUT argument cannot be read as reviews (exit code 2)."""


class OutputError(ValueError):
    """The output folder cannot be used (exit code 2)."""


class ShadowError(ValueError):
    """The shadow bundle (--shadow-model) cannot be read, or its classes are not the model's (exit code 2)."""


EARLY_ERRORS = (InputError, OutputError, ShadowError, MissingExtra)
"""What `check_early` raises."""


@dataclass(frozen=True)
class JobPaths:
    """The paths of a job, by the name the user gave them (CLI option or template parameter)."""

    inputs: list[str]
    output: str
    model: str
    shadow_model: str | None = None

    def named(self) -> list[tuple[str, str]]:
        shadow = [("shadow model", self.shadow_model)] if self.shadow_model else []
        return [*(("input", path) for path in self.inputs), ("output", self.output), ("model", self.model), *shadow]


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def is_glob(path: str) -> bool:
    return any(c in GLOB_CHARS for c in path)


def is_remote_runner(options: PipelineOptions) -> bool:
    from apache_beam.options.pipeline_options import StandardOptions

    return options.view_as(StandardOptions).runner not in LOCAL_RUNNERS


def check_early(paths: JobPaths, overwrite: bool) -> None:
    """The checks that need neither Beam nor the model, in the order a user reads the command: the
    extra that gs:// paths need, inputs that exist, an output folder that is free, a shadow bundle
    whose classes are the model's.

    Only local paths are looked at here (a remote one needs Beam's filesystems and a probe); the
    job checks them all again, remote ones included, before its model loads.
    """
    require_extras_for(paths)
    for path in paths.inputs:
        check_input_exists(path)
    if "://" not in paths.output:
        check_output(paths.output, overwrite)
    if paths.shadow_model:
        check_shadow_manifests(paths.model, paths.shadow_model)


def check_shadow_classes(model: str, classes: tuple[str, ...], shadow: str, shadow_classes: tuple[str, ...]) -> None:
    """ShadowError unless the shadow bundle has the model's class names, in order: each scored row
    compares the two labels, and the summary's label table crosses them."""
    from pipeline.model.labels import class_mismatch

    mismatch = class_mismatch(model, classes, shadow, shadow_classes)
    if mismatch is not None:
        raise ShadowError(mismatch)


def check_shadow_manifests(model: str, shadow: str) -> None:
    """For local bundles, from their two manifests alone (no model loads): the shadow bundle is there
    and has the model's classes. A model bundle that cannot be read is left to the job, which names it."""
    if not (is_local(model) and is_local(shadow)):
        return
    shadow_classes = _class_names(shadow, "shadow model")
    try:
        classes = _class_names(model, "model")
    except ShadowError:
        return
    check_shadow_classes(model, classes, shadow, shadow_classes)


def _class_names(bundle: str, name: str) -> tuple[str, ...]:
    import json

    from schemas.bundle import MANIFEST_FILE
    from schemas.manifest import read_manifest

    folder = bundle.removeprefix("file://")
    if not os.path.isdir(folder):
        raise ShadowError(f"{name} bundle {bundle} does not exist; pass a bundle folder (one with {MANIFEST_FILE})")
    try:
        with open(os.path.join(folder, MANIFEST_FILE), "rb") as f:
            manifest = read_manifest(json.loads(f.read()))
    except (OSError, ValueError) as e:  # ManifestError and JSON errors are ValueErrors
        raise ShadowError(f"{name} bundle {bundle} does not open: {_first_line(str(e))}") from None
    return tuple(manifest.class_names)


def require_extras_for(paths: JobPaths) -> None:
    """MissingExtra where a gs:// path meets an install without the gcp extra."""
    if any(path.startswith("gs://") for _, path in paths.named()):
        require(GCP)


def check_input_exists(path: str) -> None:
    """InputError for a local file or folder named outright that is not there (a glob may match nothing: later)."""
    if "://" not in path and not is_glob(path) and not os.path.exists(path):
        raise InputError(f"input {path} does not exist")


def check_output(output: str, overwrite: bool, ours: tuple[str, ...] = OUR_FILES, writer: str = "run") -> None:
    """Refuse an output that cannot be a folder, and a non-empty one without overwrite; write nothing.

    The message counts what is there and says what --overwrite would do with it: it replaces what the
    command writes (`ours`: a scoring run's OUR_FILES, or `evaluate`'s files; `writer` names it) and
    keeps anything else, so a folder of someone's own files is not called an earlier run's output.
    """
    if "://" not in output and os.path.exists(output) and not os.path.isdir(output):
        raise OutputError(f"output {output} exists and is not a folder")
    if overwrite:
        return
    existing = files_under(output)
    if not existing:
        if "://" not in output and os.path.isdir(output) and os.listdir(output):
            raise OutputError(f"output folder {output} is not empty: folders, no files; pass --overwrite to use it")
        return
    theirs = [path for path in existing if not written_by_us(output, path, ours)]
    a_writer = f"{'an' if writer[0] in 'aeiou' else 'a'} {writer}"
    if not theirs:
        raise OutputError(
            f"output folder {output} is not empty: {_files(existing)} of an earlier {writer}; "
            "pass --overwrite to replace them"
        )
    mixed = f", {len(theirs):,} of them not {a_writer}'s own" if len(theirs) < len(existing) else ""
    raise OutputError(
        f"output folder {output} is not empty: {_files(existing)}{mixed}; choose an empty folder "
        f"(--overwrite replaces only what {a_writer} wrote and keeps the rest)"
    )


def _files(paths: list[str]) -> str:
    return f"{len(paths):,} file{'' if len(paths) == 1 else 's'}"


def files_under(output: str) -> list[str]:
    """Every file below the output folder, at any depth; none where it does not exist."""
    if "://" not in output:
        return [os.path.join(root, name) for root, _, names in os.walk(output) for name in names]
    from apache_beam.io.filesystems import FileSystems

    return [m.path for m in FileSystems.match([FileSystems.join(output, "**")])[0].metadata_list]


def read_file(path: str) -> bytes:
    """A file's bytes from any Beam filesystem: how the job and the CLI open a remote bundle
    (`pipeline.model.bundle.open_bundle`)."""
    if path.startswith("gs://"):
        require(GCP)
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        return f.read()


def written_by_us(output: str, path: str, ours: tuple[str, ...] = OUR_FILES) -> bool:
    """Is this file one of the names a command writes into its output folder (`ours`: a scoring run's)?"""
    name = path.removeprefix(output.rstrip("/") + "/")
    return (ours is OUR_FILES and name.startswith(STAGING_FOLDER + "/")) or any(
        fnmatch.fnmatchcase(name, pattern) and name.count("/") == pattern.count("/") for pattern in ours
    )


def check_locations(paths: JobPaths, options: PipelineOptions, *, write: bool) -> None:
    """Refuse local paths on a remote runner, then probe every remote path; StorageError on the first problem."""
    from apache_beam.options.pipeline_options import StandardOptions

    require_extras_for(paths)
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
    too: otherwise it retries to find credentials before going anonymous anyway (BENCHMARKS.md#storage-checks).
    """
    from apache_beam.io.gcp import gcsio
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    if options.view_as(GoogleCloudOptions).no_auth:
        use_anonymous_storage()
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
