"""A run's lineage: the pieces the launch records and the summary step completes.

`pipeline/job/scoring.py` builds the run's `schemas.summary.Lineage` once, at launch, from the job and the
opened bundle; it rides into every output file's Parquet metadata and, as plain data, to the summary
step (`pipeline/job/summarize.py`), which finishes it with `finished_lineage` when the run
ends. The versions in it are of the environment that took them: in the files' metadata the launching
one, in _SUMMARY.json the one the summary step runs in, which is the scoring workers' (the same
process locally, the job's image on a remote runner).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import platform
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pipeline
from pipeline.job.locations import LOCAL_RUNNERS
from schemas.bundle import MANIFEST_FILE
from schemas.summary import Lineage

DEFAULT_RUNNER = "DirectRunner"
"""Beam's runner when the job names none."""
JOB_ID_VARIABLE = "JOB_ID"
"""Set in a remote runner's worker environment by Beam's worker boot, from the runner's provisioning
metadata (Dataflow's job id). Read only on remote runners: locally it would be whatever the user's
shell holds."""


def utc_iso(seconds: float) -> str:
    """A time.time() value as UTC ISO 8601, to the millisecond (2026-01-31T03:00:00.000Z)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def manifest_sha256(bundle_path: str | Path) -> str:
    """sha256 of a local bundle's manifest.json bytes, which pins every other file by its own checksum."""
    return hashlib.sha256((Path(bundle_path) / MANIFEST_FILE).read_bytes()).hexdigest()


def environment_versions(engines: Iterable[str] = ()) -> dict[str, str]:
    """This environment's reviewscore, apache-beam, python and pyarrow, and the library of each engine
    named (onnxruntime, tensorflow) that is installed here."""
    return {
        "reviewscore": pipeline.__version__,
        "apache-beam": library_version("apache-beam", "apache_beam") or "unknown",
        "python": platform.python_version(),
        "pyarrow": library_version("pyarrow", "pyarrow") or "unknown",
        **engine_libraries(engines),
    }


def engine_libraries(engines: Iterable[str]) -> dict[str, str]:
    """The installed version of the library each named engine imports, by its import name."""
    from pipeline.model.engines.registry import ENGINES

    found = {}
    for name in engines:
        module = ENGINES[name].module if name in ENGINES else None
        version = library_version(module.name, module.name) if module else None
        if module and version:
            found[module.name] = version
    return found


def library_version(distribution: str, module: str) -> str | None:
    """A package's version: from its module where already imported (no import is paid for), else from
    the installed distribution's metadata, under its own name or any distribution providing `module`
    (onnxruntime-gpu, tensorflow-cpu)."""
    version = getattr(sys.modules.get(module), "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    for name in importlib.metadata.packages_distributions().get(module, ()):  # reads every package's metadata
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return None


def finished_lineage(lineage: Lineage, engines: Iterable[str], finished: float) -> Lineage:
    """The launch's lineage completed when the run ends: this environment's versions with the libraries
    of the engines that scored, the job's id on a remote runner, the finishing time."""
    job_id = lineage.job_id
    if job_id is None and lineage.runner not in LOCAL_RUNNERS:
        job_id = os.environ.get(JOB_ID_VARIABLE) or None
    versions = {**lineage.versions, **environment_versions(engines)}
    return lineage.model_copy(update={"versions": versions, "job_id": job_id, "finished": utc_iso(finished)})
