"""A stand-in for the SDK container's `/opt/apache/beam/boot`, for the local Dataflow rehearsal.

Why a stand-in at all: Beam's worker pool (`apache_beam.runners.worker.worker_pool_main`) started
without `--container_executable` runs each worker as `SdkHarness(control_address, worker_id=...)`
in a bare `python -c` process. That worker never calls the provision service, so it never receives
the job's pipeline options: no pickle library, no filesystem options (Cloud Storage settings), no
experiments, no log level, no runner capabilities. A Dataflow Runner v2 worker is not started that
way: the container's entrypoint, boot (sdks/python/container/boot.go), fetches the provision info
and hands the options to `sdk_worker_main` in PIPELINE_OPTIONS. With `--container_executable` the
pool runs this file instead, with boot's flags, and it does what boot does:

1. asks the provision service (gRPC, the worker id in the call's metadata, as grpcx.WriteWorkerID
   does) for the ProvisionInfo: pipeline options, the logging, artifact and control endpoints
   (which override the flags, as in boot), the status endpoint, runner capabilities, the staged
   dependencies, sibling worker ids and the job's name and id;
2. retrieves the staged artifacts into SEMI_PERSIST_DIR/staged, as boot's artifact.Materialize
   does, and looks at what boot would install from them (piputil.go): an SDK wheel or
   dataflow_python_sdk.tar, requirements.txt or any artifact with the pip-requirements role,
   extra_packages.txt, workflow.tar.gz. Our image has everything installed and the job stages no
   requirements or setup file, so boot installs nothing; an artifact that would make it install
   fails the worker here, because on Dataflow it would mean a pip install at every worker start
   (or a failure, with no network). Other artifacts (Beam always stages
   submission_environment_dependencies.txt) are only logged, as boot does;
3. checks that apache-beam is installed (boot's isPackageInstalled), sets the variables boot sets
   (WORKER_ID, PIPELINE_OPTIONS as JSON, SEMI_PERSISTENT_DIRECTORY, LOGGING_API_SERVICE_DESCRIPTOR,
   CONTROL_API_SERVICE_DESCRIPTOR, RUNNER_CAPABILITIES, STATUS_API_SERVICE_DESCRIPTOR when given,
   JOB_NAME and JOB_ID from the metadata) and replaces itself with
   `python -m apache_beam.runners.worker.sdk_worker_main`.

Deliberate differences from boot: no throw-away virtual environment per worker (boot makes one with
--system-site-packages so that installs do not touch the image; with nothing to install it sees the
same packages); `exec` rather than a supervisor that restarts a crashed SDK process up to three
times; one SDK process (boot starts one per sibling worker id; the local job service sends none, and
this refuses any); log lines go to stderr rather than the logging service. Standard output is sent
to stderr before the exec: the pool starts us with `stdout=PIPE` and never reads it, so a worker
that printed 64 KiB would block.

Run it with the worker environment's Python (the pool runs a small wrapper script that does). It
imports only the standard library, grpc, protobuf and Beam, as boot needs nothing of the job's.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

import grpc
from apache_beam.portability import common_urns
from apache_beam.portability.api import (
    beam_artifact_api_pb2,
    beam_artifact_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_provision_api_pb2_grpc,
    beam_runner_api_pb2,
    endpoints_pb2,
)
from google.protobuf import json_format, text_format

SDK_HARNESS = "apache_beam.runners.worker.sdk_worker_main"
RPC_SECONDS = 60.0
# The names boot.go and piputil.go install from (keep in sync with Beam's stager.py).
INSTALLED_NAMES = ("requirements.txt", "extra_packages.txt", "workflow.tar.gz", "dataflow_python_sdk.tar")
PIP_REQUIREMENTS_ROLE = "beam:artifact:role:pip_requirements_file:v1"
FILE_TYPE = common_urns.artifact_types.FILE.urn
STAGING_TO_ROLE = common_urns.artifact_roles.STAGING_TO.urn


class BootError(RuntimeError):
    """The worker cannot start as boot would start it."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """boot's flags (the container contract); the pool passes the five endpoints and the id."""
    parser = argparse.ArgumentParser(description="Stand-in for /opt/apache/beam/boot (see the module docstring).")
    parser.add_argument("--id", required=True)
    parser.add_argument("--logging_endpoint", default="")
    parser.add_argument("--artifact_endpoint", default="")
    parser.add_argument("--provision_endpoint", required=True)
    parser.add_argument("--control_endpoint", default="")
    parser.add_argument("--semi_persist_dir", default="/tmp")
    parser.add_argument("--worker_pool", action="store_true", help="not supported: run worker_pool_main instead")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"boot[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def provision_info(endpoint: str, worker_id: str) -> beam_provision_api_pb2.ProvisionInfo:
    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        response = stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", worker_id)], timeout=RPC_SECONDS
        )
    return response.info


def staged_name(artifact: beam_runner_api_pb2.ArtifactInformation) -> str:
    """The file name the launcher staged the artifact under (the staging-to role), else its path's name."""
    if artifact.role_urn == STAGING_TO_ROLE:
        return beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload).staged_name
    if artifact.type_urn == FILE_TYPE:
        return Path(beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload).path).name
    raise BootError(f"artifact of type {artifact.type_urn} has no name to stage it under")


def materialize(
    endpoint: str, worker_id: str, dependencies, folder: Path
) -> list[tuple[str, beam_runner_api_pb2.ArtifactInformation]]:
    """Fetch every staged dependency into `folder`, as boot's artifact.Materialize; (name, artifact) each.

    The pool's workers share the folder, so one at a time writes it (boot.go guards the same step
    with a lock file in worker-pool mode, multiProcessExactlyOnce).
    """
    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    with open(folder.parent / "staged.lock", "w") as lock, grpc.insecure_channel(endpoint) as channel:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stub = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(channel)
        for artifact in dependencies:
            name = staged_name(artifact)
            request = beam_artifact_api_pb2.GetArtifactRequest(artifact=artifact)
            with open(folder / name, "wb") as f:
                for chunk in stub.GetArtifact(request, metadata=[("worker_id", worker_id)], timeout=RPC_SECONDS):
                    f.write(chunk.data)
            fetched.append((name, artifact))
    return fetched


def would_install(fetched: list[tuple[str, beam_runner_api_pb2.ArtifactInformation]]) -> list[str]:
    """The artifacts from which boot would pip install something (boot.go installSetupPackages)."""
    return [
        name
        for name, artifact in fetched
        if name in INSTALLED_NAMES
        or artifact.role_urn == PIP_REQUIREMENTS_ROLE
        or (name.startswith("apache_beam") and name.endswith(".whl"))
    ]


def descriptor(url: str) -> str:
    """An ApiServiceDescriptor in protobuf text format, as boot writes it and sdk_worker_main parses it."""
    return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))


def worker_environment(
    info: beam_provision_api_pb2.ProvisionInfo, args: argparse.Namespace, base: dict[str, str]
) -> dict[str, str]:
    """The SDK harness's environment: `base` plus what boot.go sets before it starts Python."""
    logging_url = info.logging_endpoint.url or args.logging_endpoint
    control_url = info.control_endpoint.url or args.control_endpoint
    if not logging_url or not control_url:
        raise BootError("no logging or control endpoint, neither in the flags nor in the provision info")
    env = dict(base)
    env.update(
        WORKER_ID=args.id,
        PIPELINE_OPTIONS=json_format.MessageToJson(info.pipeline_options, indent=None),
        SEMI_PERSISTENT_DIRECTORY=args.semi_persist_dir,
        LOGGING_API_SERVICE_DESCRIPTOR=descriptor(logging_url),
        CONTROL_API_SERVICE_DESCRIPTOR=descriptor(control_url),
        RUNNER_CAPABILITIES=" ".join(info.runner_capabilities),
    )
    if info.HasField("status_endpoint"):
        env["STATUS_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.status_endpoint)
    for key, variable in (("job_name", "JOB_NAME"), ("job_id", "JOB_ID")):
        if key in info.metadata:
            env[variable] = info.metadata[key]
    return env


def prepare(args: argparse.Namespace) -> dict[str, str]:
    """Everything boot does before it starts Python; returns the SDK harness's environment."""
    if args.worker_pool:
        raise BootError("--worker_pool is not supported here; start worker_pool_main with --container_executable")
    started = time.monotonic()
    info = provision_info(args.provision_endpoint, args.id)
    if info.sibling_worker_ids:
        raise BootError(f"sibling workers {list(info.sibling_worker_ids)}: this stand-in starts one SDK process")
    artifact_url = info.artifact_endpoint.url or args.artifact_endpoint
    fetched = materialize(artifact_url, args.id, info.dependencies, Path(args.semi_persist_dir) / "staged")
    log(f"worker {args.id}: artifacts {[name for name, _ in fetched]}")
    installs = would_install(fetched)
    if installs:
        raise BootError(
            f"the job staged {installs}: boot would pip install them at every worker start; "
            "the image must already hold every dependency (no --requirements_file, --setup_file or --extra_package)"
        )
    try:
        importlib.metadata.version("apache-beam")
    except importlib.metadata.PackageNotFoundError:
        raise BootError("apache-beam is not installed in the worker environment") from None
    options = json.loads(json_format.MessageToJson(info.pipeline_options))
    log(f"worker {args.id}: {len(options)} pipeline options, ready in {time.monotonic() - started:.1f} s")
    return worker_environment(info, args, dict(os.environ))


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        env = prepare(args)
    except (BootError, grpc.RpcError, OSError) as e:
        log(f"worker {args.id}: cannot start: {e}")
        sys.exit(1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # see the module docstring: nobody reads our stdout
    os.execve(sys.executable, [sys.executable, "-m", SDK_HARNESS], env)


if __name__ == "__main__":
    main(sys.argv[1:])
