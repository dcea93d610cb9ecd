"""The Flex Template entry point run as Dataflow's template launcher runs it, not as a dry run.

The Python launcher (`/opt/google/dataflow/python_template_launcher`, FLEX_TEMPLATE_PYTHON_PY_FILE)
runs `python deploy/flex_main.py` with the template parameters as `--name=value` and the Dataflow
options alongside, among them `--template_location=gs://.../template_launches/LAUNCH/job_object`
(Google's "Troubleshoot Flex Templates", "Failed to read the job file": runner, project, job_name,
template_location and region are the launcher's and must not be changed). With --template_location,
DataflowRunner stages the pipeline, writes the job description there and submits nothing
(apache_beam/runners/dataflow/internal/apiclient.py, `create_job`); when the process exits 0 the
launcher reads that file and creates the job. A dry run (`--dry_run=True`) returns before any of
that, so it cannot see a launch fail.

Offline: every gs:// path, the staging location and the template location are on the Cloud Storage
emulator; no Dataflow API call is made with --template_location. `--no_auth` stands in for the
launcher VM's service account (without it Beam searches for credentials on Google's metadata server),
and any request that is not for the emulator goes to a closed proxy port and fails at once.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.portability.api import beam_runner_api_pb2

from tests.test_dataflow import STAGES, template_parameters

pytestmark = pytest.mark.slow  # each test launches the entry point as a program

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", reason="needs apache-beam[gcp]")

ROOT = Path(__file__).resolve().parent.parent
FLEX_MAIN = ROOT / "deploy" / "flex_main.py"
IMAGE = "europe-west1-docker.pkg.dev/demo-project/reviewscore/scorer:launch-test"
JOB_NAME = "reviewscore-20261125"


def offline_env(cloud_storage) -> dict[str, str]:
    """The emulator's environment, with every other HTTP(S) or gRPC request sent to a closed port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    proxies = {name: closed for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "grpc_proxy")}
    return {**cloud_storage.env(), **proxies, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def launcher_options(cloud_storage, staging: str, job_file: str) -> list[str]:
    """The options the launcher passes besides the template's parameters."""
    return [
        "--runner=DataflowRunner",
        "--project=demo-project",
        "--region=europe-west1",
        f"--job_name={JOB_NAME}",
        f"--staging_location={staging}",
        f"--temp_location={cloud_storage.path('tmp')}",
        f"--template_location={job_file}",
        f"--sdk_container_image={IMAGE}",
        "--machine_type=n2-standard-4",
        "--max_num_workers=10",
        "--no_auth",  # the launcher VM's service account; see the module docstring
    ]


def run_launcher(parameters: dict[str, str], cloud_storage, staging: str, job_file: str, cwd: Path):
    """deploy/flex_main.py as the launcher runs it: the template's parameters, then the launcher's options."""
    command = [
        sys.executable,
        str(FLEX_MAIN),
        *(f"--{k}={v}" for k, v in parameters.items()),
        *launcher_options(cloud_storage, staging, job_file),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=offline_env(cloud_storage))


def test_flex_template_launch_writes_the_job_for_the_launcher(remote, cloud_storage, tmp_path):
    """Every parameter of metadata.json, the launch environment's options and the launcher's own."""
    parameters = template_parameters(
        remote["input"], cloud_storage.path("launch", "scored", "2026-11-25"), remote["model"], "true"
    )
    staging = cloud_storage.path("dataflow-staging", "staging")
    job_file = f"{staging}/template_launches/2026-11-25_03_00_07-1234567890/job_object"
    done = run_launcher(parameters, cloud_storage, staging, job_file, tmp_path)

    # The launcher submits the job only when the entry point exits 0.
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome.get("job_description") == job_file, outcome

    # The job description, where the launcher reads it.
    assert cloud_storage.files(job_file.rsplit("/", 1)[0]) == [job_file]
    job = json.loads(cloud_storage.read(job_file))
    assert job["name"] == JOB_NAME and job["type"] == "JOB_TYPE_BATCH"
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["project"] == "demo-project" and options["region"] == "europe-west1"
    assert options["sdk_container_image"] == IMAGE
    (pool,) = job["environment"]["workerPools"]
    assert [image["containerImage"] for image in pool["sdkHarnessContainerImages"]] == [IMAGE]

    # Its graph: the pipeline it points to was staged, and has every stage of the scoring job.
    assert options["pipelineUrl"].startswith(staging + "/")
    with FileSystems.open(options["pipelineUrl"]) as f:
        pipeline = beam_runner_api_pb2.Pipeline.FromString(f.read())
    steps = {t.unique_name for t in pipeline.components.transforms.values()}
    for stage in STAGES:
        assert any(step == stage or step.startswith(stage + "/") for step in steps), stage
    (environment,) = pipeline.components.environments.values()
    assert beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image == IMAGE

    # The job has not run: nothing is written to the output folder (the write probe cleans up after itself).
    assert cloud_storage.files(parameters["output"]) == []


def test_a_day_with_no_reviews_is_launched_not_refused(remote, cloud_storage, tmp_path):
    """An input folder holding only the export's _SUCCESS marker: the launcher exits 0 and describes a job
    whose graph reads nothing (it then writes a zero-row output and a passing summary: test_empty_day.py)."""
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "_SUCCESS").write_bytes(b"")
    day = cloud_storage.upload(tmp_path / "day", cloud_storage.path("launch", "reviews", "empty-day"))
    parameters = template_parameters(day, cloud_storage.path("launch", "scored", "empty-day"), remote["model"], "false")
    staging = cloud_storage.path("dataflow-staging", "staging")
    job_file = f"{staging}/template_launches/2026-11-26_03_00_07-1234567891/job_object"
    done = run_launcher(parameters, cloud_storage, staging, job_file, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]).get("job_description") == job_file
    options = json.loads(cloud_storage.read(job_file))["environment"]["sdkPipelineOptions"]["options"]
    with FileSystems.open(options["pipelineUrl"]) as f:
        pipeline = beam_runner_api_pb2.Pipeline.FromString(f.read())
    steps = {t.unique_name for t in pipeline.components.transforms.values()}
    assert "Read/NoReviews" in steps and not any(step.startswith("Read/MatchTextFiles") for step in steps)
    assert any(step.startswith("WriteScored") for step in steps) and "WriteSummary" in steps
