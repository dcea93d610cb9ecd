"""The pieces of the Dataflow rehearsal (deploy/rehearsal/), each on its own and fast.

The whole rehearsal (`make rehearse-dataflow`: emulator, job service, worker pool, three launches)
takes minutes and runs as its own make target; here: the inputs and what they promise, the boot
stand-in against an in-process provision and artifact service (and sdk_worker_main reading what it
sets), the metadata stand-in against google-auth, process-group clean-up, the read-back checks,
the poll that times the kill (the first staged shard), and the DAG's policy: read from the DAG's own
module, and the gate's decision checked against what the policy says for the data.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.portability import common_urns
from apache_beam.portability.api import (
    beam_artifact_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_provision_api_pb2_grpc,
    beam_runner_api_pb2,
    endpoints_pb2,
)
from apache_beam.runners.portability.artifact_service import ArtifactRetrievalService
from google.protobuf import struct_pb2, text_format

from deploy import dag_policy
from deploy.rehearsal import boot, checks, data
from deploy.rehearsal.launch import TERMINAL, failure_reason, option, staged_shards, wait_for_staged
from deploy.rehearsal.policy import policy_checks
from deploy.rehearsal.rehearse import template_parameters
from deploy.rehearsal.services import MetadataServer, Processes, loopback_env
from deploy.rehearsal.storage import Bucket
from pipeline.job.verdict import RunPolicy, judge
from schemas.output_names import ERROR_FILES, REPORT_FILE, SUMMARY_FILE
from schemas.summary import Drift, DriftCheck, RunSummary

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return data.write_inputs(tmp_path_factory.mktemp("rehearsal") / "reviews", count=2_500)


def test_inputs_hold_the_records_and_failures_they_promise(inputs):
    parquet = sorted(inputs.folder.glob("*.parquet"))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parquet)
    files = list((inputs.folder / "txt").glob("*.txt"))
    assert rows + len(files) == inputs.records
    assert inputs.scored == 2_500
    assert inputs.failures == {"read": 40 + 500, "decode": 2, "preprocess": 80 + 2}
    texts = pa.concat_tables(pq.read_table(p) for p in parquet if p.name.startswith("part-")).column("text")
    assert texts.null_count == data.NULL_TEXTS
    assert pq.read_schema(inputs.wrong_typed).field("text").type == pa.int64()


def test_the_damaged_file_loses_exactly_one_row_group(inputs):
    damaged = pq.ParquetFile(inputs.folder / data.CORRUPT_FILE)
    assert damaged.metadata.num_rows == data.CORRUPT_ROWS  # the footer reads: the launch accepts the file
    with pytest.raises(OSError):
        damaged.read_row_group(data.CORRUPT_GROUP)
    assert damaged.read_row_group(0).num_rows == data.CORRUPT_GROUP_ROWS


def test_inputs_are_deterministic(inputs, tmp_path):
    again = data.write_inputs(tmp_path / "reviews", count=2_500)
    for path in sorted(inputs.folder.rglob("*")):
        if path.is_file():
            assert (again.folder / path.relative_to(inputs.folder)).read_bytes() == path.read_bytes(), path


def test_real_reviews_are_cycled_to_the_count(tmp_path):
    source = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"text": ["a fine film indeed", None, "", "a dull film overall"]}), source)
    assert data.real_texts(source, 5) == ["a fine film indeed", "a dull film overall"] * 2 + ["a fine film indeed"]


class Provision(beam_provision_api_pb2_grpc.ProvisionServiceServicer):
    def __init__(self, info):
        self.info = info
        self.asked_by = []

    def GetProvisionInfo(self, request, context):
        self.asked_by.append(dict(context.invocation_metadata()).get("worker_id"))
        return beam_provision_api_pb2.GetProvisionInfoResponse(info=self.info)


def file_artifact(path: Path, role: str | None = None) -> beam_runner_api_pb2.ArtifactInformation:
    return beam_runner_api_pb2.ArtifactInformation(
        type_urn=common_urns.artifact_types.FILE.urn,
        type_payload=beam_runner_api_pb2.ArtifactFilePayload(path=str(path)).SerializeToString(),
        role_urn=role or common_urns.artifact_roles.STAGING_TO.urn,
        role_payload=beam_runner_api_pb2.ArtifactStagingToRolePayload(staged_name=path.name).SerializeToString(),
    )


@pytest.fixture
def runner_services(tmp_path):
    """A provision and artifact service like the ones Beam's FnApiRunner serves on its control port."""
    staged = tmp_path / "job-staging" / "submission_environment_dependencies.txt"
    staged.parent.mkdir()
    staged.write_text("apache-beam==2.77.0\n")
    options = struct_pb2.Struct()
    options.update({"beam:option:job_name:v1": "rehearsal-test", "beam:option:pickle_library:v1": "cloudpickle"})
    info = beam_provision_api_pb2.ProvisionInfo(
        pipeline_options=options,
        logging_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:1"),
        control_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:2"),
        status_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:3"),
        dependencies=[file_artifact(staged)],
        runner_capabilities=["beam:protocol:multimap_keys_values_side_input:v1"],
        metadata={"job_name": "rehearsal-test", "job_id": "job-1"},
    )
    server = grpc.server(futures.ThreadPoolExecutor(4))
    provision = Provision(info)
    beam_provision_api_pb2_grpc.add_ProvisionServiceServicer_to_server(provision, server)
    artifacts = ArtifactRetrievalService(FileSystems.open)  # as FnApiRunner serves them
    beam_artifact_api_pb2_grpc.add_ArtifactRetrievalServiceServicer_to_server(artifacts, server)
    port = server.add_insecure_port("127.0.0.1:0")
    info.artifact_endpoint.url = f"127.0.0.1:{port}"
    server.start()
    try:
        yield provision, f"127.0.0.1:{port}"
    finally:
        server.stop(0)


@pytest.mark.slow
def test_boot_sets_what_boot_go_sets_from_the_provision_info(runner_services, tmp_path):
    provision, endpoint = runner_services
    semi = tmp_path / "semi"
    args = boot.parse_args(["--id=worker_7", f"--provision_endpoint={endpoint}", f"--semi_persist_dir={semi}"])
    env = boot.prepare(args)

    assert provision.asked_by == ["worker_7"]
    assert (semi / "staged" / "submission_environment_dependencies.txt").read_text() == "apache-beam==2.77.0\n"
    assert env["WORKER_ID"] == "worker_7" and env["SEMI_PERSISTENT_DIRECTORY"] == str(semi)
    assert json.loads(env["PIPELINE_OPTIONS"])["beam:option:job_name:v1"] == "rehearsal-test"
    for variable, url in (("LOGGING", "localhost:1"), ("CONTROL", "localhost:2"), ("STATUS", "localhost:3")):
        parsed = text_format.Parse(env[f"{variable}_API_SERVICE_DESCRIPTOR"], endpoints_pb2.ApiServiceDescriptor())
        assert parsed.url == url
    assert env["RUNNER_CAPABILITIES"] == "beam:protocol:multimap_keys_values_side_input:v1"
    assert (env["JOB_NAME"], env["JOB_ID"]) == ("rehearsal-test", "job-1")

    # sdk_worker_main reads them as it would in the container (dry run: no harness is started; the
    # logging endpoint is left out so that no log stream is opened to a port nobody serves).
    harness_env = {k: v for k, v in env.items() if k != "LOGGING_API_SERVICE_DESCRIPTOR"}
    check = (
        "import os, logging; from apache_beam.runners.worker import sdk_worker_main as m; "
        "m.create_harness(os.environ, dry_run=True); "
        "from apache_beam.internal import pickler; assert pickler.is_currently_cloudpickle()"
    )
    done = subprocess.run([sys.executable, "-c", check], env=harness_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_boot_refuses_what_would_be_installed_at_every_worker_start(tmp_path):
    names = ["requirements.txt", "workflow.tar.gz", "apache_beam-2.77.0-cp311-cp311-manylinux.whl", "deps.txt"]
    fetched = [(name, file_artifact(tmp_path / name)) for name in names]
    fetched.append(("extra.txt", file_artifact(tmp_path / "extra.txt", boot.PIP_REQUIREMENTS_ROLE)))
    assert boot.would_install(fetched) == [*names[:3], "extra.txt"]
    assert boot.would_install([("submission_environment_dependencies.txt", file_artifact(tmp_path / "s"))]) == []


def test_metadata_stand_in_gives_google_auth_credentials(tmp_path):
    """google-auth reads GCE_METADATA_HOST when imported, so it is asked in a fresh process."""
    script = (
        "import google.auth, google.auth.transport.requests as r; "
        "creds, project = google.auth.default(); creds.refresh(r.Request()); print(project, creds.token)"
    )
    with MetadataServer() as metadata:
        env = loopback_env(dict(os.environ), "http://127.0.0.1:9", metadata.address, tmp_path / "gcloud")
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["rehearsal-project", "rehearsal-token"]


def test_stopping_a_process_ends_its_whole_group(tmp_path):
    processes = Processes(tmp_path / "logs")
    leader = processes.start("sleepers", ["sh", "-c", "sleep 60 & echo $! > child; wait"], dict(os.environ), tmp_path)
    deadline = time.monotonic() + 10
    while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int((tmp_path / "child").read_text())
    processes.stop_all()
    assert leader.poll() is not None
    deadline = time.monotonic() + 5  # a signal to a group is delivered asynchronously
    while running(child):
        assert time.monotonic() < deadline, "the leader's child outlived it"
        time.sleep(0.05)


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan waits for the container's init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_only_published_names_look_complete():
    names = ["_staging/beam-temp-x/scored-a.parquet", "_staging/_write_check", "scored-00000-of-00001.parquet"]
    assert checks.looks_complete(names) == ["scored-00000-of-00001.parquet"]
    assert checks.looks_complete(names[:2]) == []
    assert checks.looks_complete([SUMMARY_FILE, REPORT_FILE]) == [SUMMARY_FILE, REPORT_FILE]
    errors = ["_errors/errors-00000-of-00001.parquet", "errors-00000-of-00001.parquet", "a/scored-0.parquet"]
    assert checks.looks_complete(errors) == ["_errors/errors-00000-of-00001.parquet"]  # only where they belong


def output(ids, labels, scores, errors=()) -> checks.Output:
    scored = pa.table({"review_id": ids, "predicted_label": labels, "score": pa.array(scores, pa.float32())})
    error_table = pa.table({"review_id": [e[0] for e in errors], "stage": [e[1] for e in errors]})
    return checks.Output([], None, scored, error_table)


def test_compare_joins_on_review_id():
    ours = output(["a", "b", "c"], ["positive", "negative", "positive"], [0.9, 0.1, 0.8], [("d", "read")])
    same = output(["c", "a", "b"], ["positive", "positive", "negative"], [0.8, 0.9, 0.1], [("d", "read")])
    found, max_diff, mismatches = checks.compare("x", ours, same)
    assert all(c.ok for c in found) and max_diff == 0 and mismatches == 0

    other = output(["a", "b", "c"], ["positive", "positive", "positive"], [0.9, 0.6, 0.80002], [("e", "read")])
    found, max_diff, mismatches = checks.compare("x", ours, other)
    assert [c.ok for c in found] == [True, False, False, False]
    assert mismatches == 1 and max_diff == pytest.approx(0.5)


def test_failure_reason_is_the_last_error_line():
    traceback = "Traceback (most recent call last):\n  File x\nRuntimeError: wrapped\n  more\nEngineUnavailable: no tf"
    assert failure_reason([traceback]) == "EngineUnavailable: no tf"
    assert failure_reason(["noise", "error: input gs://b/x does not exist"]) == "error: input gs://b/x does not exist"
    assert failure_reason(["just a line"]) == "just a line"


def test_job_name_is_read_from_the_pipeline_options():
    options = struct_pb2.Struct()
    options.update({"beam:option:job_name:v1": "reviewscore-flex"})
    assert option(options, "job_name") == "reviewscore-flex"
    assert option(struct_pb2.Struct(), "job_name") is None


def test_counts_are_checked_on_the_summary_as_the_job_wrote_it(tmp_path):
    """The folder's _SUMMARY.json is read with the job's own reader; its counts must agree with the inputs
    and with the published Parquet rows."""
    from schemas.summary import Drift, RunSummary, summary_to_json

    summary = RunSummary(
        records_read=3, records_scored=2, records_failed=1, failed_by_stage={"read": 1}, accounting_ok=True,
        label_counts={"negative": 1, "positive": 1}, model_version="1.0.0", engine="onnx", engines={},
        wall_seconds=1.0, reviews_per_second=2.0, scored_files=(),
        error_files=("out/_errors/errors-00000-of-00001.parquet",),
        drift=Drift(detected=False, status="no_profile", reason="no profile"),
    )  # fmt: skip
    pq.write_table(
        pa.table({"review_id": ["a", "b"], "predicted_label": ["positive", "negative"], "score": [0.9, 0.1]}),
        tmp_path / "scored-00000-of-00001.parquet",
    )
    (tmp_path / "_errors").mkdir()
    pq.write_table(
        pa.table({"review_id": ["c"], "stage": ["read"]}), tmp_path / "_errors/errors-00000-of-00001.parquet"
    )
    (tmp_path / REPORT_FILE).write_text("<html></html>")
    (tmp_path / "_SUMMARY.json").write_text(summary_to_json(summary))
    inputs = data.Inputs(tmp_path, tmp_path / "wrong.parquet", records=3, failures={"read": 1})

    out = checks.local_output(tmp_path)
    assert out.summary == summary
    assert all(check.ok for check in checks.check_counts("local", out, inputs))
    more = data.Inputs(tmp_path, tmp_path / "wrong.parquet", records=4, failures={"read": 2})
    failed = [check.name for check in checks.check_counts("local", out, more) if not check.ok]
    assert failed == [
        "local: summary read = scored + failed = input records",
        "local: Parquet rows scored + errors = input records",
        "local: failures by stage",
    ]
    unlisted = checks.Output(out.names, out.summary.model_copy(update={"error_files": ()}), out.scored, out.errors)
    failed = [check.name for check in checks.check_counts("local", unlisted, inputs) if not check.ok]
    assert failed == [f"local: {ERROR_FILES} only where records failed, as the summary lists them"]


def test_staged_shards_are_parquet_files_under_staging_and_nothing_else():
    names = [
        "_staging/_write_check",  # the launch's write check passes through _staging/ before anything is scored
        "_staging/beam-temp-scored-1a/7f.scored.parquet",
        "_staging/scored-00000-of-00002.parquet",
        "scored-00001-of-00002.parquet",
        "_errors/errors-00000-of-00001.parquet",
    ]
    assert staged_shards(names) == names[1:3]
    assert staged_shards(names[:1] + names[3:]) == []


def test_the_kill_waits_for_the_first_staged_shard():
    """The listing grows as a job's would: empty, the write check, then a shard; the wait returns at the shard."""
    listings = iter([[], ["_staging/_write_check"], ["_staging/beam-temp-x/a.parquet", "_staging/beam-temp-x/b"]])
    looked = []

    def look():
        looked.append(next(listings))
        return looked[-1]

    staged, why = wait_for_staged(look, lambda: "RUNNING", deadline=time.monotonic() + 60)
    assert (staged, why) == (["_staging/beam-temp-x/a.parquet"], "")
    assert len(looked) == 3


def test_the_kill_wait_gives_up_when_the_job_ends_or_the_deadline_passes():
    staged, why = wait_for_staged(lambda: ["_staging/_write_check"], lambda: "DONE", deadline=time.monotonic() + 60)
    assert staged == [] and "DONE" in why
    assert "DONE" in TERMINAL
    staged, why = wait_for_staged(lambda: [], lambda: "RUNNING", deadline=time.monotonic() - 1)
    assert staged == [] and "deadline" in why and "RUNNING" in why


def test_the_rehearsal_launches_with_the_dags_own_parameters():
    """The rehearsal's template parameters are what deploy/dag_policy.py gives the DAG for the same
    locations, and the DAG builds its launch from that module as make dag-files ships it."""
    bucket = Bucket("http://127.0.0.1:9")
    output = bucket.path("rehearsal", "out-flex")
    parameters = template_parameters(bucket, output)
    assert parameters == dag_policy.launch_parameters(parameters["input"], output, parameters["model"])
    assert {name: parameters[name] for name in ("on_drift", "max_error_rate", "overwrite")} == {
        "on_drift": dag_policy.ON_DRIFT,
        "max_error_rate": dag_policy.MAX_ERROR_RATE,
        "overwrite": "true",
    }
    dag = ast.parse((ROOT / "deploy" / "airflow_dag.py").read_text())
    imported = {
        alias.name for node in ast.walk(dag) if isinstance(node, ast.ImportFrom) and node.module == "reviewscore_policy"
        for alias in node.names
    }  # fmt: skip
    called = {node.func.id for node in ast.walk(dag) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"launch_parameters", "gate_problems"} <= imported & called
    assert "cp deploy/dag_policy.py $(DAGS)/reviewscore_policy.py" in (ROOT / "Makefile").read_text()


def judged(read: int, failed: int, drifted: bool = False, policy: RunPolicy | None = None) -> RunSummary:
    """A summary with the verdict the job's own judge gives it (by the DAG's policy unless `policy`)."""
    check = DriftCheck(name="predicted_labels", what="labels", statistic="psi", value=0.4 if drifted else 0.01,
                       threshold=0.2, drifted=drifted, verdict="drifted")  # fmt: skip
    summary = RunSummary(
        records_read=read, records_scored=read - failed, records_failed=failed, failed_by_stage={"read": failed},
        accounting_ok=True, label_counts={}, model_version="1.0.0", engine="onnx", engines={}, wall_seconds=1.0,
        reviews_per_second=1.0, scored_files=(), error_files=(),
        drift=Drift(detected=drifted, status="drifted" if drifted else "ok", checks=(check,)),
    )  # fmt: skip
    dags = RunPolicy(float(dag_policy.MAX_ERROR_RATE), dag_policy.ON_DRIFT)
    return summary.model_copy(update={"verdict": judge(summary, policy or dags)})


@pytest.mark.parametrize(
    ("failed", "drifted", "passes"),
    [(5, False, True), (20, False, False), (5, True, False), (20, True, False)],
    ids=["under-the-rate", "over-the-rate", "drifted", "both"],
)
def test_the_gate_decides_what_the_dags_policy_says(tmp_path, failed, drifted, passes):
    """1,000 records: 5 failed is under the DAG's 1 %, 20 above; drift fails the day under on_drift=fail."""
    inputs = data.Inputs(tmp_path, tmp_path / "wrong.parquet", records=1_000, failures={"read": failed})
    found, statement = policy_checks("flex", judged(1_000, failed, drifted), inputs)
    assert [check.ok for check in found] == [True, True, True], found
    assert f"{failed} of 1,000 records failed" in statement
    assert ("the gate passes the day" in statement) == passes


def test_a_verdict_by_another_policy_or_the_wrong_decision_fails_the_checks(tmp_path):
    inputs = data.Inputs(tmp_path, tmp_path / "wrong.parquet", records=1_000, failures={"read": 20})
    warned = judged(1_000, 20, policy=RunPolicy(None, "warn"))  # passed, by a policy the DAG did not give
    assert [check.ok for check in policy_checks("flex", warned, inputs)[0]] == [False, True, False]
    fewer = data.Inputs(tmp_path, tmp_path / "wrong.parquet", records=1_000, failures={"read": 5})
    assert [check.ok for check in policy_checks("flex", judged(1_000, 20), fewer)[0]] == [True, False, False]
    assert [check.ok for check in policy_checks("flex", None, inputs)[0]] == [False]
