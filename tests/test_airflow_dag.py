"""The Airflow DAG (deploy/airflow_dag.py), checked in two environments.

The dev environment has reviewscore and no Airflow: the DAG's launch body, evaluated from the file's
own syntax tree and rendered for one day, must name only template parameters (deploy/metadata.json)
with values they accept, and must launch the Flex Template entry point (a dry run, as Dataflow's
launcher runs it).

The pinned Airflow environment (deploy/airflow-requirements.txt; `deploy/check_airflow_dag.sh`
builds it and runs this file there) has Airflow and the Google provider and no reviewscore, only the
summary reader shipped beside the DAG (schemas/summary.py as `reviewscore_summary`): the DAG
file is parsed by a real DagBag, the scheduler's own timetable says which run comes at 2026-11-26
03:00 UTC, each task's templates are rendered by the task runner for that run, the launch body is
checked against the Dataflow API's discovery document, and the gate runs through a real GCSHook
against a Cloud Storage emulator. That environment runs pytest with --noconftest (tests/conftest.py
imports reviewscore), so this file starts its own emulator.

Each half is skipped where its packages are missing.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAG_FILE = ROOT / "deploy" / "airflow_dag.py"
SUMMARY_READER = ROOT / "schemas" / "summary.py"
SHIPPED_READER = "reviewscore_summary"
"""The name the summary reader has beside the DAG, in Airflow's dags/ folder (make dag-files)."""
METADATA = ROOT / "deploy" / "metadata.json"
DAY = "2026-11-25"
"""The day the run of 2026-11-26 03:00 UTC scores."""
IMAGE = "europe-west1-docker.pkg.dev/demo-project/reviewscore/scorer:test"
"""The reference an image built by deploy/Dockerfile carries (REVIEWSCORE_IMAGE)."""


def _installed(distribution: str) -> bool:
    """Installed into this interpreter (not merely found as the checkout's egg-info on sys.path)."""
    return any(importlib.metadata.distributions(name=distribution, path=[sysconfig.get_path("purelib")]))


HAS_AIRFLOW = importlib.util.find_spec("airflow") is not None
needs_airflow = pytest.mark.skipif(
    not HAS_AIRFLOW, reason="needs Airflow: deploy/check_airflow_dag.sh runs it in the pinned Airflow environment"
)
needs_reviewscore = pytest.mark.skipif(not _installed("reviewscore"), reason="needs reviewscore (make install)")
if HAS_AIRFLOW:  # before Airflow is first imported: no ~/airflow, no example DAGs
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


# ---------------------------------------------------------------------------------------------------
# Without Airflow: the DAG file's own syntax tree.


def dag_constants(source: str) -> dict:
    """The DAG file's upper-case module constants (plain literals and f-strings over earlier ones)."""
    constants: dict = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            value = eval(compile(ast.Expression(node.value), "airflow_dag.py", "eval"), {}, constants)
            for target in node.targets:
                constants[target.id] = value
    return constants


def rendered_launch_body(source: str, day: str) -> dict:
    """Evaluate the DAG file's operator `body` over its constants, then render the day as Airflow would.

    Airflow is not installed here; the body is plain Python literals and f-strings over the
    constants, so it is evaluated from the file's own syntax tree rather than copied into the test.
    The only templates it may use are the data interval's first day, `{{ data_interval_start | ds }}`
    and `| ds_nodash`; the Airflow environment renders them with Airflow itself.
    """
    tree = ast.parse(source)
    bodies = [
        keyword.value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "DataflowStartFlexTemplateOperator"
        for keyword in call.keywords
        if keyword.arg == "body"
    ]
    assert len(bodies) == 1, "the DAG launches one Flex Template"
    body = eval(compile(ast.Expression(bodies[0]), "airflow_dag.py", "eval"), {}, dag_constants(source))
    filters = {"ds": day, "ds_nodash": day.replace("-", "")}
    text = re.sub(r"\{\{\s*data_interval_start\s*\|\s*(ds|ds_nodash)\s*\}\}", lambda m: filters[m[1]], json.dumps(body))
    assert "{{" not in text, f"a template variable this test does not render: {text}"
    return json.loads(text)


# The launch body's environment keys (Dataflow's FlexTemplateRuntimeEnvironment) and the Beam option each becomes.
DAG_ENVIRONMENT_TO_OPTION = {
    "tempLocation": "temp_location",
    "stagingLocation": "staging_location",
    "sdkContainerImage": "sdk_container_image",
    "maxWorkers": "max_num_workers",
    "numWorkers": "num_workers",
    "machineType": "machine_type",
    "serviceAccountEmail": "service_account_email",
    "additionalExperiments": "experiments",
}
# DataflowStartFlexTemplateOperator sends `body` as the request body of projects.locations.flexTemplates.launch.
LAUNCH_PARAMETER_KEYS = {"jobName", "containerSpecGcsPath", "parameters", "environment"}


def test_the_dag_passes_template_parameters_the_template_accepts():
    """Every parameter the DAG passes is one of metadata.json's (all of `score`'s options, generated), with a
    value its regexes accept; the required ones are all there; and the launch body has the operator's shape."""
    body = rendered_launch_body(DAG_FILE.read_text(), DAY)
    assert list(body) == ["launchParameter"]
    launch_parameter = body["launchParameter"]
    assert set(launch_parameter) <= LAUNCH_PARAMETER_KEYS, set(launch_parameter) - LAUNCH_PARAMETER_KEYS
    assert launch_parameter["containerSpecGcsPath"].startswith("gs://")
    assert launch_parameter["jobName"] == f"reviewscore-{DAY.replace('-', '')}"
    environment = launch_parameter["environment"]
    assert set(environment) <= set(DAG_ENVIRONMENT_TO_OPTION), set(environment) - set(DAG_ENVIRONMENT_TO_OPTION)
    assert "sdkContainerImage" not in environment, "the image names itself; a tag in the DAG goes stale"

    metadata = {p["name"]: p for p in json.loads(METADATA.read_text())["parameters"]}
    parameters = launch_parameter["parameters"]
    assert set(parameters) <= set(metadata), f"not template parameters: {sorted(set(parameters) - set(metadata))}"
    for name, value in parameters.items():
        assert isinstance(value, str), f"{name}: template parameters are strings, not {value!r}"
        for regex in metadata[name].get("regexes", []):
            assert re.fullmatch(regex, value), f"{name}={value!r} does not match {regex}"
    required = {name for name, p in metadata.items() if not p.get("isOptional")}
    assert required <= set(parameters), f"required parameters missing: {sorted(required - set(parameters))}"
    assert parameters["input"] == f"gs://my-bucket/reviews/{DAY}/"
    assert parameters["output"] == f"gs://my-bucket/scored/{DAY}/"
    assert (parameters["on_drift"], parameters["max_error_rate"], parameters["overwrite"]) == ("fail", "0.01", "true")


def top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_dag_reads_summaries_with_the_reader_shipped_beside_it():
    """The DAG imports nothing of reviewscore but schemas/summary.py under its shipped name, which needs only
    the standard library (Airflow's environment has no reviewscore); the deploy target and the Airflow check
    both ship it under that name."""
    imported = top_level_imports(DAG_FILE)
    assert SHIPPED_READER in imported
    assert not imported & {"pipeline", "schemas", "training", "deploy"}, imported
    assert imported - {SHIPPED_READER} <= {"__future__", "airflow", "datetime", "google", "logging", "pendulum"}
    reader_imports = top_level_imports(SUMMARY_READER)
    assert reader_imports <= set(sys.stdlib_module_names) | {"__future__"}, reader_imports
    shipped = f"schemas/summary.py $(DAGS)/{SHIPPED_READER}.py"
    assert f"cp {shipped}" in (ROOT / "Makefile").read_text()
    check = (ROOT / "deploy" / "check_airflow_dag.sh").read_text()
    assert f'cp schemas/summary.py "$home/dags/{SHIPPED_READER}.py"' in check and "PYTHONPATH=$home/dags" in check


@needs_reviewscore
def test_the_gate_fixtures_are_summaries_the_job_could_write():
    """The summaries the gate is tested with below are read by the job's own reader: a fixture that drifted
    from the contract fails here, where reviewscore is installed, not only in the Airflow environment."""
    from schemas.summary import RunSummary, SummaryError

    summaries = [passing_summary()]
    for change, _ in GATE_FAILURES:
        summaries.append(passing_summary())
        change(summaries[-1])
    assert GATE_FAILURES[-1][0] is not_a_summary
    broken = summaries.pop(-1)
    for summary in summaries:
        assert RunSummary.from_dict(summary).to_dict() == summary
    with pytest.raises(SummaryError, match="lacks 'records_read'"):
        RunSummary.from_dict(broken)


@needs_reviewscore
def test_airflow_dag_parameters_launch_the_entry_point(request, tmp_path):
    """The DAG's `body`, rendered for one day, fed to the entry point the way Dataflow's launcher does (a dry
    run). The DAG names no worker image; the image's own REVIEWSCORE_IMAGE stands in for it."""
    from google.cloud import storage

    from tests.test_dataflow import launch

    # Fixtures of tests/conftest.py, which the Airflow environment does not load: asked for once not skipped.
    cloud_storage, tiny_bundle = request.getfixturevalue("cloud_storage"), request.getfixturevalue("tiny_bundle")

    body = rendered_launch_body(DAG_FILE.read_text(), DAY)
    launch_parameter = body["launchParameter"]
    parameters, environment = launch_parameter["parameters"], launch_parameter["environment"]
    # Stage what the DAG expects to find on the day: the model and that day's reviews, in its bucket,
    # with the upstream's completion marker (not a review: only *.txt and *.parquet are read).
    bucket = re.match(r"gs://([^/]+)/", parameters["model"]).group(1)
    client = storage.Client.create_anonymous_client()
    if not client.bucket(bucket).exists():
        client.create_bucket(bucket)
    cloud_storage.upload(tiny_bundle.path, parameters["model"].rstrip("/"))
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "r1.txt").write_text("a superb and charming film", encoding="utf-8")
    (tmp_path / "day" / "_SUCCESS").write_text("", encoding="utf-8")
    cloud_storage.upload(tmp_path / "day", parameters["input"].rstrip("/"))

    dataflow_options = [f"--{DAG_ENVIRONMENT_TO_OPTION[key]}={value}" for key, value in environment.items()]
    beam_args = [*dataflow_options, "--runner=DataflowRunner", "--dry_run=True", "--no_auth",
                 "--project=demo-project", "--region=europe-west1"]  # fmt: skip
    done = launch(parameters, beam_args, {**cloud_storage.env(), "REVIEWSCORE_IMAGE": IMAGE}, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["dry_run"] is True


# ---------------------------------------------------------------------------------------------------
# With Airflow (deploy/check_airflow_dag.sh): the DAG as Airflow parses, schedules and renders it.


@pytest.fixture(scope="module")
def dag():
    """The DAG file as Airflow's DagBag parses it."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}, bag.import_errors
    assert list(bag.dags) == ["reviewscore_nightly"]
    return bag.dags["reviewscore_nightly"]


def scheduler_view(dag):
    """The DAG as the scheduler holds it (serialized and back), with the scheduler's own timetable."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def rendered_tasks(dag, *, run_id: str, logical_date, data_interval, run_after, run_type: str) -> dict:
    """Each task's templated fields as the task runner renders them for a DagRun (the execution API's model)."""
    import copy
    import uuid

    from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    run = DagRun(
        dag_id=dag.dag_id, run_id=run_id, logical_date=logical_date,
        data_interval_start=data_interval and data_interval.start,
        data_interval_end=data_interval and data_interval.end,
        run_after=run_after, start_date=run_after, end_date=None, run_type=run_type, state="running",
        consumed_asset_events=[], partition_key=None,
    )  # fmt: skip
    rendered = {}
    for original in dag.tasks:
        task = copy.deepcopy(original)  # rendering replaces the fields in place
        ti = RuntimeTaskInstance.model_construct(
            id=uuid.uuid4(), task_id=task.task_id, dag_id=dag.dag_id, run_id=run_id, try_number=1,
            dag_version_id=uuid.uuid4(), map_index=-1, task=task, start_date=run_after, max_tries=task.retries,
            _ti_context_from_server=TIRunContext(dag_run=run, max_tries=task.retries),
        )  # fmt: skip
        ti.render_templates()
        rendered[task.task_id] = {field: getattr(ti.task, field) for field in task.template_fields}
    return rendered


@pytest.fixture(scope="module")
def scheduled_run(dag):
    """The scheduler's next run after the interval that started 2026-11-24 03:00 UTC, and its tasks rendered."""
    import pendulum
    from airflow.timetables.base import DagRunInfo
    from airflow.utils.types import DagRunType

    scheduler_dag = scheduler_view(dag)
    previous_start = pendulum.datetime(2026, 11, 24, 3, tz="UTC")
    previous = DagRunInfo.interval(previous_start, previous_start.add(days=1))
    info = scheduler_dag.next_dagrun_info(last_automated_run_info=previous, restricted=False)
    run_id = scheduler_dag.timetable.generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=info.run_after, data_interval=info.data_interval
    )
    rendered = rendered_tasks(
        dag, run_id=run_id, logical_date=info.logical_date, data_interval=info.data_interval,
        run_after=info.run_after, run_type="scheduled",
    )  # fmt: skip
    return info, rendered


def assert_scores_day(rendered: dict, day: str) -> None:
    assert rendered["wait_for_reviews"]["bucket"] == "my-bucket"
    assert rendered["wait_for_reviews"]["object"] == f"reviews/{day}/_SUCCESS"
    parameters = rendered["score_reviews"]["body"]["launchParameter"]["parameters"]
    assert parameters["input"] == f"gs://my-bucket/reviews/{day}/"
    assert parameters["output"] == f"gs://my-bucket/scored/{day}/"
    assert rendered["score_reviews"]["body"]["launchParameter"]["jobName"] == f"reviewscore-{day.replace('-', '')}"
    assert rendered["check_run"]["op_kwargs"] == {"day": day}


@needs_airflow
def test_the_dag_parses_with_one_run_at_a_time_and_retries(dag):
    from airflow.sdk.bases.sensor import BaseSensorOperator
    from airflow.timetables.interval import CronDataIntervalTimetable

    assert dag.max_active_runs == 1 and dag.catchup is False
    assert {task.task_id: task.downstream_task_ids for task in dag.tasks} == {
        "wait_for_reviews": {"score_reviews"}, "score_reviews": {"check_run"}, "check_run": set(),
    }  # fmt: skip
    for task in dag.tasks:
        assert task.retries >= 1 and task.retry_delay.total_seconds() >= 60, task.task_id
    timetable = scheduler_view(dag).timetable
    assert isinstance(timetable, CronDataIntervalTimetable), type(timetable)  # not the trigger timetable
    assert timetable.summary == "0 3 * * *"

    sensor = dag.get_task("wait_for_reviews")
    assert isinstance(sensor, BaseSensorOperator) and sensor.mode == "reschedule"
    assert 60 <= sensor.poke_interval <= 30 * 60 and 3600 <= sensor.timeout < 24 * 3600  # gives up before the next day
    assert dag.get_task("score_reviews").wait_until_finished is True


@needs_airflow
def test_the_run_at_3_am_scores_the_previous_day(scheduled_run):
    """The scheduler's next run after the 2026-11-24 interval starts at 2026-11-26 03:00 UTC and, rendered by the
    task runner, waits for, scores and checks 2026-11-25, through the one connection."""
    import pendulum

    info, rendered = scheduled_run
    assert info.run_after == pendulum.datetime(2026, 11, 26, 3, tz="UTC")
    assert info.data_interval.start == pendulum.datetime(2026, 11, 25, 3, tz="UTC")
    assert_scores_day(rendered, DAY)
    assert (rendered["score_reviews"]["project_id"], rendered["score_reviews"]["location"]) == (
        "my-project", "europe-west1",
    )  # fmt: skip
    assert rendered["wait_for_reviews"]["google_cloud_conn_id"] == "google_cloud_default"
    assert rendered["score_reviews"]["gcp_conn_id"] == "google_cloud_default"


@needs_airflow
def test_a_run_triggered_by_hand_scores_the_last_complete_day(dag):
    """Triggered at 10:00 with that logical date (as the API infers its interval), `ds` would be the trigger's own
    day; the DAG scores the last complete interval's day instead."""
    import pendulum

    logical_date = pendulum.datetime(2026, 11, 26, 10, tz="UTC")
    interval = scheduler_view(dag).timetable.infer_manual_data_interval(run_after=logical_date)
    rendered = rendered_tasks(
        dag, run_id="manual__2026-11-26T10:00:00+00:00", logical_date=logical_date, data_interval=interval,
        run_after=logical_date, run_type="manual",
    )  # fmt: skip
    assert_scores_day(rendered, DAY)


@needs_airflow
def test_a_run_without_a_logical_date_fails_instead_of_guessing_a_day(dag):
    """Airflow 3 can trigger a run with no logical date, hence no data interval: no day to score."""
    import jinja2
    import pendulum

    now = pendulum.datetime(2026, 11, 26, 10, tz="UTC")
    with pytest.raises(jinja2.UndefinedError, match="data_interval_start"):
        rendered_tasks(
            dag, run_id="manual__2026-11-26T10:00:00+00:00", logical_date=None, data_interval=None,
            run_after=now, run_type="manual",
        )  # fmt: skip


@needs_airflow
def test_the_launch_body_is_a_valid_flex_template_launch_request(scheduled_run):
    """The rendered body against the Dataflow API's own schema (the discovery document bundled with the client
    library, which DataflowHook builds its client from): every key is a field of LaunchFlexTemplateRequest, with a
    value of that field's type."""
    import googleapiclient

    _, rendered = scheduled_run
    documents = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
    discovery = json.loads((documents / "dataflow.v1b3.json").read_text())
    launch = discovery["resources"]["projects"]["resources"]["locations"]["resources"]["flexTemplates"]["methods"]
    schemas = discovery["schemas"]
    python_types = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}

    def check(value, schema, where):
        if "$ref" in schema:
            schema = schemas[schema["$ref"]]
        assert isinstance(value, python_types[schema.get("type", "object")]), (where, value)
        if isinstance(value, dict) and "properties" in schema:
            for key, item in value.items():
                assert key in schema["properties"], f"{where}.{key} is not a field of the request"
                check(item, schema["properties"][key], f"{where}.{key}")

    body = rendered["score_reviews"]["body"]
    check(body, launch["launch"]["request"], "body")
    # The dev suite's rendering from the syntax tree, which it feeds to the entry point, is Airflow's.
    assert body == rendered_launch_body(DAG_FILE.read_text(), DAY)
    assert all(isinstance(v, str) for v in body["launchParameter"]["parameters"].values())  # map<string, string>


def _port_listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def gcs_connection():
    """A Cloud Storage emulator on loopback, and the DAG's connection (google_cloud_default) as an anonymous
    Google Cloud connection in Airflow's environment-variable form, so GCSHook needs no credentials."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not _port_listening(port):
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the Cloud Storage emulator did not start")
        time.sleep(0.1)
    connection = json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}})
    patched = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": connection}
    previous = {name: os.environ.get(name) for name in patched}
    os.environ.update(patched)
    try:
        from google.cloud import storage

        yield storage.Client.create_anonymous_client().create_bucket("my-bucket")
    finally:
        server.kill()
        server.wait()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def gate(dag):
    """The callable the DAG's check_run task runs."""
    return dag.get_task("check_run").python_callable


def passing_summary() -> dict:
    """A day's _SUMMARY.json as the job writes it (schemas/summary.py), of a run that passed this DAG's policy."""
    day = f"gs://my-bucket/scored/{DAY}"
    return {
        "records_read": 1000, "records_scored": 990, "records_failed": 10,
        "failed_by_stage": {"decode": 4, "preprocess": 6}, "accounting_ok": True,
        "label_counts": {"negative": 412, "positive": 578}, "model_version": "2.0.0",
        "engine": "onnx", "engines": {"onnx": {"reviews": 990, "why": ["asked for"]}},
        "wall_seconds": 312.5, "reviews_per_second": 3.2,
        "scored_files": [f"{day}/scored-00000-of-00001.parquet"],
        "error_files": [f"{day}/_errors/errors-00000-of-00001.parquet"],
        "lineage": {
            "inputs": {"given": [f"gs://my-bucket/reviews/{DAY}/"], "patterns": [f"gs://my-bucket/reviews/{DAY}/**.txt",
                       f"gs://my-bucket/reviews/{DAY}/**.parquet"], "text_files": 1000, "parquet_files": [],
                       "records": 1000},
            "model": {"location": "gs://my-bucket/models/imdb-bilstm/", "name": "imdb-bilstm", "version": "2.0.0",
                      "manifest_sha256": "0" * 64},
            "options": {"on_drift": "fail", "max_error_rate": 0.01, "overwrite": True},
            "versions": {"reviewscore": "0.1.0", "apache-beam": "2.77.0", "python": "3.11.7", "pyarrow": "25.0.1",
                         "onnxruntime": "1.32.0"},
            "runner": "DataflowRunner", "job_id": "2026-01-01_03_00_00-1", "started": f"{DAY}T03:00:00.000Z",
            "finished": f"{DAY}T03:05:12.500Z",
        },
        "drift": {"detected": False, "status": "no drift", "checks": []},
        "verdict": {"passed": True, "problems": [], "error_rate": 0.01, "max_error_rate": 0.01, "on_drift": "fail"},
        "report": f"{day}/_report.html",
    }  # fmt: skip


def drift_check(name: str, drifted: bool) -> dict:
    verdict = "drifted" if drifted else "ok"
    return {"name": name, "what": name, "statistic": "population stability index", "value": 0.3 if drifted else 0.1,
            "threshold": 0.25, "drifted": drifted, "verdict": verdict}  # fmt: skip


def drifted(summary):
    checks = [drift_check("scores", True), drift_check("length", True), drift_check("words", False)]
    summary["drift"] = {"detected": True, "status": "drift", "checks": checks}
    summary["verdict"].update(passed=False, problems=["drift detected (scores, length) with --on-drift fail"])


def too_many_failures(summary):
    summary.update(records_scored=975, records_failed=25)
    summary["verdict"].update(
        passed=False, error_rate=0.025, problems=["2.50% of records failed, above --max-error-rate 1.00%"]
    )


def records_lost(summary):
    """Records lost between read and written, and a verdict that (wrongly) passed anyway: the gate counts too."""
    summary.update(records_scored=900)


def no_verdict(summary):
    del summary["verdict"]


def judged_leniently(summary):
    summary["verdict"].update(on_drift="warn", max_error_rate=None)


def not_a_summary(summary):
    del summary["records_read"]


GATE_FAILURES = [
    (drifted, r"drift detected \(scores, length\)"),
    (too_many_failures, r"2\.50% of records failed, above --max-error-rate 1\.00%"),
    (records_lost, r"records read \(1,000\) differ from scored \+ failed \(910\)"),
    (no_verdict, r"the summary has no verdict"),
    (judged_leniently, r"judged with on_drift=warn, max_error_rate=None, not this DAG's on_drift=fail"),
    (not_a_summary, r"_SUMMARY\.json is not a run summary: _SUMMARY\.json lacks 'records_read'"),
]


@needs_airflow
@pytest.mark.parametrize(("change", "message"), GATE_FAILURES, ids=lambda v: getattr(v, "__name__", "message"))
def test_the_gate_fails_the_day_when_the_run_did_not_pass(dag, gcs_connection, change, message):
    from airflow.sdk.exceptions import AirflowFailException

    summary = passing_summary()
    change(summary)
    gcs_connection.blob(f"scored/{DAY}/_SUMMARY.json").upload_from_string(json.dumps(summary))
    with pytest.raises(AirflowFailException, match=message) as failed:
        gate(dag)(DAY)
    assert f"gs://my-bucket/scored/{DAY}/_SUMMARY.json" in str(failed.value)
    if summary.get("verdict") and not summary["verdict"]["passed"]:
        assert f"see gs://my-bucket/scored/{DAY}/_report.html" in str(failed.value)


@needs_airflow
def test_the_gate_passes_a_day_that_passed_with_one_line(dag, gcs_connection, caplog):
    gcs_connection.blob(f"scored/{DAY}/_SUMMARY.json").upload_from_string(json.dumps(passing_summary()))
    logger = gate(dag).__module__
    with caplog.at_level("INFO", logger=logger):
        gate(dag)(DAY)
    lines = [record.getMessage() for record in caplog.records if record.name == logger]
    assert lines == [f"{DAY} passed: 990 reviews scored, 10 failed (1.00%, at most 1.00% allowed); drift: no drift"]


@needs_airflow
def test_the_gate_fails_a_day_without_a_summary(dag, gcs_connection):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"scored/2026-11-24/_SUMMARY\.json does not exist"):
        gate(dag)("2026-11-24")
