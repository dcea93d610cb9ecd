"""The Airflow DAG (deploy/airflow_dag.py), checked in the dev environment and in the pinned Airflow ones.

The dev environment has reviewscore and no Airflow: the launch request the DAG sends for one day
(deploy/dag_launch.py's, with deploy/dag_policy.py's parameters, the modules the DAG imports) must name
only template parameters (deploy/metadata.json) with values they accept, and must launch the Flex
Template entry point (a dry run, as Dataflow's launcher runs it); the settings refuse placeholders.

The pinned Airflow environments (Airflow 2: deploy/airflow2-requirements.txt, Airflow 3:
deploy/airflow-requirements.txt; `deploy/check_airflow_dag.sh` runs this file in each, with
`[operators] default_deferrable` False and True) have Airflow and the Google provider and no
reviewscore, only the dags/ folder `make dag-files` ships (REVIEWSCORE_DAGS): the DAG file is parsed by
a real DagBag, the scheduler's own timetable says which run comes at 2026-11-26 03:00 UTC, each task's
templates are rendered for that run (by the task runner on Airflow 3), the launch request is checked
against the Dataflow API's discovery document and equals the dev half's, the input sensor and the gate
run through real GCS hooks against a Cloud Storage emulator, and the job sensor and the launch are run
against a stand-in for the Dataflow API (no emulator exists for it). That environment runs pytest
with --noconftest (tests/conftest.py imports reviewscore), so this file starts its own emulator.

Each half is skipped where its packages are missing.
"""

from __future__ import annotations

import copy
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
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {
    "reviewscore_summary": ROOT / "schemas" / "summary.py",
    "reviewscore_policy": ROOT / "deploy" / "dag_policy.py",
    "reviewscore_launch": ROOT / "deploy" / "dag_launch.py",
}
"""The modules the DAG imports from Airflow's dags/ folder, under their shipped names (make dag-files)."""
SHIPPED_DAG = "reviewscore_nightly.py"
DAGS = os.environ.get("REVIEWSCORE_DAGS")
"""The dags/ folder `make dag-files` filled (set by deploy/check_airflow_dag.sh)."""
DAG_FILE = Path(DAGS) / SHIPPED_DAG if DAGS else ROOT / "deploy" / "airflow_dag.py"
METADATA = ROOT / "deploy" / "metadata.json"
DAY = "2026-11-25"
"""The day the run of 2026-11-26 03:00 UTC scores."""
IMAGE = "europe-west1-docker.pkg.dev/demo-project/reviewscore/scorer:test"
"""The image a template spec names (defaultEnvironment.sdkContainerImage), which the launcher passes on."""
VARIABLES = {"project": "demo-project", "region": "europe-west1", "bucket": "demo-bucket"}
"""The Airflow Variables this file sets (reviewscore_NAME), as a deployment would."""
BUCKET = VARIABLES["bucket"]


def _installed(distribution: str) -> bool:
    """Installed into this interpreter (not merely found as the checkout's egg-info on sys.path)."""
    return any(importlib.metadata.distributions(name=distribution, path=[sysconfig.get_path("purelib")]))


HAS_AIRFLOW = importlib.util.find_spec("airflow") is not None
AIRFLOW_3 = HAS_AIRFLOW and int(importlib.metadata.version("apache-airflow").split(".")[0]) >= 3
DEFERRABLE = os.environ.get("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False").lower() == "true"
_skip_without_airflow = pytest.mark.skipif(
    not HAS_AIRFLOW, reason="needs Airflow: deploy/check_airflow_dag.sh runs it in the pinned Airflow environments"
)


def needs_airflow(test):
    """Marked `airflow` (so `-m airflow` selects it) and skipped where Airflow is not installed."""
    return pytest.mark.airflow(_skip_without_airflow(test))


needs_reviewscore = pytest.mark.skipif(not _installed("reviewscore"), reason="needs reviewscore (make install)")
if HAS_AIRFLOW:  # before Airflow is first imported: no ~/airflow, no example DAGs, the deployment's Variables
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    for _name, _value in VARIABLES.items():
        os.environ[f"AIRFLOW_VAR_REVIEWSCORE_{_name.upper()}"] = _value


def shipped_modules():
    """The DAG's modules as Airflow imports them from dags/ (on sys.path here: the dev suite adds the checkout's)."""
    if DAGS is None:
        for name, path in SHIPPED.items():
            if name not in sys.modules:
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
    import reviewscore_launch
    import reviewscore_policy

    return reviewscore_launch, reviewscore_policy


def day_request(day: str, **variables: str) -> dict:
    """The launch request the DAG sends for one day, with the Variables of this file (and any others given)."""
    launch, policy = shipped_modules()
    values = {f"reviewscore_{name}": value for name, value in {**VARIABLES, **variables}.items()}
    settings = launch.read_settings(values.get)
    parameters = policy.launch_parameters(
        *launch.day_locations(settings, day), settings.shadow_model, settings.max_disagreement
    )
    return launch.launch_request(settings, f"reviewscore-{day.replace('-', '')}", parameters)


# ---------------------------------------------------------------------------------------------------
# Without Airflow: the launch request and the settings.

# The launch body's environment keys (Dataflow's FlexTemplateRuntimeEnvironment) and the Beam option each becomes.
DAG_ENVIRONMENT_TO_OPTION = {
    "tempLocation": "temp_location",
    "stagingLocation": "staging_location",
    "sdkContainerImage": "sdk_container_image",
    "maxWorkers": "max_num_workers",
    "numWorkers": "num_workers",
    "machineType": "machine_type",
    "serviceAccountEmail": "service_account_email",
    "network": "network",
    "subnetwork": "subnetwork",
    "additionalExperiments": "experiments",
}
# DataflowStartFlexTemplateOperator sends `body` as the request body of projects.locations.flexTemplates.launch.
LAUNCH_PARAMETER_KEYS = {"jobName", "containerSpecGcsPath", "parameters", "environment"}
NETWORK = {"network": "reviewscore-vpc", "subnetwork": "regions/europe-west1/subnetworks/reviewscore"}


def test_the_dag_passes_template_parameters_the_template_accepts():
    """Every parameter the DAG passes is one of metadata.json's (all of `score`'s options, generated), with a
    value its regexes accept; the required ones are all there; and the launch body has the operator's shape,
    with the staging and temp locations in the deployment's bucket."""
    body = day_request(DAY)
    assert list(body) == ["launchParameter"]
    launch_parameter = body["launchParameter"]
    assert set(launch_parameter) <= LAUNCH_PARAMETER_KEYS, set(launch_parameter) - LAUNCH_PARAMETER_KEYS
    assert launch_parameter["containerSpecGcsPath"] == f"gs://{BUCKET}/templates/reviewscore.json"
    assert launch_parameter["jobName"] == f"reviewscore-{DAY.replace('-', '')}"
    environment = launch_parameter["environment"]
    assert set(environment) <= set(DAG_ENVIRONMENT_TO_OPTION), set(environment) - set(DAG_ENVIRONMENT_TO_OPTION)
    assert "sdkContainerImage" not in environment, "the template names the image; one in the DAG goes stale"
    assert environment["stagingLocation"] == f"gs://{BUCKET}/staging"
    assert environment["tempLocation"] == f"gs://{BUCKET}/tmp"
    assert environment["serviceAccountEmail"] == "reviewscore@demo-project.iam.gserviceaccount.com"
    assert "network" not in environment and "subnetwork" not in environment  # Dataflow's default unless set
    assert day_request(DAY, **NETWORK)["launchParameter"]["environment"].items() >= NETWORK.items()

    metadata = {p["name"]: p for p in json.loads(METADATA.read_text())["parameters"]}
    parameters = launch_parameter["parameters"]
    assert set(parameters) <= set(metadata), f"not template parameters: {sorted(set(parameters) - set(metadata))}"
    for name, value in parameters.items():
        assert isinstance(value, str), f"{name}: template parameters are strings, not {value!r}"
        for regex in metadata[name].get("regexes", []):
            assert re.fullmatch(regex, value), f"{name}={value!r} does not match {regex}"
    required = {name for name, p in metadata.items() if not p.get("isOptional")}
    assert required <= set(parameters), f"required parameters missing: {sorted(required - set(parameters))}"
    assert parameters["input"] == f"gs://{BUCKET}/reviews/{DAY}/"
    assert parameters["output"] == f"gs://{BUCKET}/scored/{DAY}/"
    assert (parameters["on_drift"], parameters["max_error_rate"], parameters["overwrite"]) == ("fail", "0.01", "true")


@pytest.mark.parametrize(
    ("variables", "refused", "fix"),
    [
        ({"project": "my-project"}, "reviewscore_project", "placeholder"),
        ({"bucket": "my-bucket"}, "reviewscore_bucket", "placeholder"),
        ({"region": ""}, "reviewscore_region", "not set"),
        ({"bucket": "gs://demo-bucket"}, "reviewscore_bucket", "without gs://"),
        ({"temp_location": "/tmp/x"}, "reviewscore_temp_location", "gs://"),
        ({"subnetwork": "reviewscore"}, "reviewscore_subnetwork", "regions/REGION/subnetworks/NAME"),
        ({"shadow_model": "models/imdb-bilstm"}, "reviewscore_shadow_model", "gs://"),
        ({"max_disagreement": "0.02"}, "reviewscore_max_disagreement", "reviewscore_shadow_model"),
        (
            {"shadow_model": f"gs://{BUCKET}/models/next/", "max_disagreement": "2"},
            "reviewscore_max_disagreement",
            "a share from 0 to 1",
        ),
    ],
)
def test_settings_left_at_a_placeholder_or_malformed_are_refused_naming_the_variable(variables, refused, fix):
    launch, _ = shipped_modules()
    with pytest.raises(launch.SettingsError) as error:
        day_request(DAY, **variables)
    message = str(error.value)
    assert refused in message and fix in message and "\n" not in message, message


def top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast_walk(path):
        if type(node).__name__ == "Import":
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif type(node).__name__ == "ImportFrom" and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def ast_parse(path: Path):
    import ast

    return ast.parse(path.read_text())


def ast_walk(path: Path):
    import ast

    return ast.walk(ast_parse(path))


def test_the_dag_imports_only_what_is_shipped_beside_it():
    """The DAG imports nothing of reviewscore but the modules shipped beside it, which need only the standard
    library, pydantic (one of Airflow's own dependencies; Airflow's environment has no reviewscore) and each
    other; `make dag-files` ships each under the name the DAG imports, and the Airflow check loads the folder
    that target fills. The summary's models are imported by the gate's task, not when the file is parsed."""
    imported = top_level_imports(ROOT / "deploy" / "airflow_dag.py")
    assert set(SHIPPED) <= imported
    assert not imported & {"pipeline", "schemas", "training", "deploy"}, imported
    assert imported - set(SHIPPED) <= {"__future__", "airflow", "datetime", "google", "googleapiclient", "logging",
                                       "pendulum"}  # fmt: skip
    for path in SHIPPED.values():
        assert top_level_imports(path) <= set(sys.stdlib_module_names) | {"__future__", "pydantic"} | set(SHIPPED), path
    parsed = ast_parse(ROOT / "deploy" / "airflow_dag.py").body
    at_parse_time = {node.module for node in parsed if type(node).__name__ == "ImportFrom"}
    assert "reviewscore_summary" not in at_parse_time
    makefile = (ROOT / "Makefile").read_text()
    assert f"cp deploy/airflow_dag.py $(DAGS)/{SHIPPED_DAG}" in makefile
    for name, path in SHIPPED.items():
        assert f"cp {path.relative_to(ROOT)} $(DAGS)/{name}.py" in makefile
    check = (ROOT / "deploy" / "check_airflow_dag.sh").read_text()
    assert 'make -s dag-files DAGS="$home/dags"' in check and "REVIEWSCORE_DAGS=$home/dags" in check


@needs_reviewscore
def test_the_gate_fixtures_are_summaries_the_job_could_write():
    """The summaries the gate is tested with below are read by the job's own reader: a fixture that drifted
    from the contract fails here, where reviewscore is installed, not only in the Airflow environment."""
    from schemas.summary import RunSummary, SummaryError, summary_from_json

    summaries = [passing_summary(), empty_day_summary()]
    for change, _ in GATE_FAILURES:
        summaries.append(passing_summary())
        change(summaries[-1])
    assert GATE_FAILURES[-1][0] is not_a_summary
    broken = summaries.pop(-1)
    for summary in summaries:
        assert RunSummary.model_validate(summary).model_dump(mode="json") == summary
    with pytest.raises(SummaryError, match="lacks 'records_read'"):
        summary_from_json(json.dumps(broken))


@needs_reviewscore
@pytest.mark.emulator  # its Cloud Storage emulator is asked for inside the test, not as an argument
@pytest.mark.slow
def test_airflow_dag_parameters_launch_the_entry_point(request, tmp_path):
    """The DAG's launch request for one day, with a network and subnetwork, fed to the entry point the way
    Dataflow's launcher does (a dry run). The template's image comes as the launcher passes it on."""
    from google.cloud import storage

    from tests.test_dataflow import launch

    # Fixtures of tests/conftest.py, which the Airflow environment does not load: asked for once not skipped.
    cloud_storage, tiny_bundle = request.getfixturevalue("cloud_storage"), request.getfixturevalue("tiny_bundle")

    launch_parameter = day_request(DAY, **NETWORK)["launchParameter"]
    parameters, environment = launch_parameter["parameters"], launch_parameter["environment"]
    # Stage what the DAG expects to find on the day: the model and that day's reviews, in its bucket,
    # with the upstream's completion marker (not a review: only *.txt and *.parquet are read).
    client = storage.Client.create_anonymous_client()
    if not client.bucket(BUCKET).exists():
        client.create_bucket(BUCKET)
    cloud_storage.upload(tiny_bundle.path, parameters["model"].rstrip("/"))
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "r1.txt").write_text("a superb and charming film", encoding="utf-8")
    (tmp_path / "day" / "_SUCCESS").write_text("", encoding="utf-8")
    cloud_storage.upload(tmp_path / "day", parameters["input"].rstrip("/"))

    dataflow_options = [f"--{DAG_ENVIRONMENT_TO_OPTION[key]}={value}" for key, value in environment.items()]
    beam_args = [*dataflow_options, "--runner=DataflowRunner", "--dry_run=True", "--no_auth",
                 "--project=demo-project", "--region=europe-west1"]  # fmt: skip
    done = launch(parameters, [*beam_args, f"--sdk_container_image={IMAGE}"], cloud_storage.env(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["dry_run"] is True


# ---------------------------------------------------------------------------------------------------
# With Airflow (deploy/check_airflow_dag.sh): the DAG as Airflow parses, schedules and renders it.


def dag_bag(path: Path):
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=str(path))


@pytest.fixture(scope="module")
def dag():
    """The DAG file as Airflow's DagBag parses it."""
    bag = dag_bag(DAG_FILE)
    assert bag.import_errors == {}, bag.import_errors
    assert list(bag.dags) == ["reviewscore_nightly"]
    return bag.dags["reviewscore_nightly"]


def scheduler_view(dag):
    """The DAG as the scheduler holds it (serialized and back), with the scheduler's own timetable."""
    if AIRFLOW_3:
        from airflow.serialization.serialized_objects import DagSerialization
    else:
        from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


RENDERED = ("wait_for_reviews", "score_reviews", "check_run")
"""The tasks whose templates name the day (the others' name the launch's XCom, which needs a running task)."""


def rendered_tasks(dag, *, run_id: str, logical_date, data_interval, run_after, run_type: str) -> dict:
    """Each task's templated fields rendered for a DagRun: by the task runner on Airflow 3 (the execution
    API's model of the run); on Airflow 2, by the DAG's own Jinja environment with the run's data interval
    (its full context needs a metadata database)."""
    rendered = {}
    for task_id in RENDERED:
        task = copy.deepcopy(dag.get_task(task_id))  # rendering replaces the fields in place
        if AIRFLOW_3:
            task = _render_airflow_3(task, dag, run_id, logical_date, data_interval, run_after, run_type)
        else:
            context = {"data_interval_start": data_interval.start, "data_interval_end": data_interval.end}
            task.render_template_fields(context)
        rendered[task_id] = {field: getattr(task, field) for field in task.template_fields}
    return rendered


def _render_airflow_3(task, dag, run_id, logical_date, data_interval, run_after, run_type):
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
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(), task_id=task.task_id, dag_id=dag.dag_id, run_id=run_id, try_number=1,
        dag_version_id=uuid.uuid4(), map_index=-1, task=task, start_date=run_after, max_tries=task.retries,
        _ti_context_from_server=TIRunContext(dag_run=run, max_tries=task.retries),
    )  # fmt: skip
    ti.render_templates()
    return ti.task


@pytest.fixture(scope="module")
def scheduled_run(dag):
    """The scheduler's next run after the interval that started 2026-11-24 03:00 UTC, and its tasks rendered."""
    import pendulum
    from airflow.timetables.base import DagRunInfo

    scheduler_dag = scheduler_view(dag)
    previous_start = pendulum.datetime(2026, 11, 24, 3, tz="UTC")
    previous = DagRunInfo.interval(previous_start, previous_start.add(days=1))
    if AIRFLOW_3:
        info = scheduler_dag.next_dagrun_info(last_automated_run_info=previous, restricted=False)
    else:
        info = scheduler_dag.next_dagrun_info(last_automated_dagrun=previous.data_interval, restricted=False)
    rendered = rendered_tasks(
        dag, run_id="scheduled__2026-11-25T03:00:00+00:00", logical_date=info.logical_date,
        data_interval=info.data_interval, run_after=info.run_after, run_type="scheduled",
    )  # fmt: skip
    return info, rendered


def assert_scores_day(rendered: dict, day: str) -> None:
    assert rendered["wait_for_reviews"]["bucket"] == BUCKET
    assert rendered["wait_for_reviews"]["object"] == f"reviews/{day}/_SUCCESS"
    assert rendered["score_reviews"]["body"] == day_request(day)
    assert rendered["check_run"]["op_kwargs"] == {"day": day}


@needs_airflow
def test_the_dag_parses_with_one_run_at_a_time_timeouts_and_retries(dag):
    """One run at a time that ends before the next is due; every task bounded in time and retried; the waits
    deferrable exactly when `[operators] default_deferrable` says so, else rescheduled; the launch never waits."""
    from airflow.timetables.interval import CronDataIntervalTimetable

    assert dag.max_active_runs == 1 and dag.catchup is False
    assert {task.task_id: task.downstream_task_ids for task in dag.tasks} == {
        "wait_for_reviews": {"score_reviews"}, "score_reviews": {"wait_for_job"},
        "wait_for_job": {"check_run", "cancel_unfinished_job"}, "check_run": set(), "cancel_unfinished_job": set(),
    }  # fmt: skip
    for task in dag.tasks:
        assert task.retries >= 1 and task.retry_delay.total_seconds() >= 60, task.task_id
        assert task.execution_timeout is not None, f"{task.task_id} has no execution_timeout"
    longest = sum((task.execution_timeout for task in dag.tasks), timedelta())
    assert longest < dag.dagrun_timeout < timedelta(days=1)
    timetable = scheduler_view(dag).timetable
    assert isinstance(timetable, CronDataIntervalTimetable), type(timetable)  # not the trigger timetable
    assert timetable.summary == "0 3 * * *"

    for sensor_id in ("wait_for_reviews", "wait_for_job"):
        sensor = dag.get_task(sensor_id)
        assert sensor.deferrable is DEFERRABLE and sensor.mode == "reschedule", sensor_id
        assert sensor.timeout <= sensor.execution_timeout.total_seconds() < 24 * 3600, sensor_id
        assert 60 <= sensor.poke_interval <= 30 * 60, sensor_id
    launch = dag.get_task("score_reviews")
    assert (launch.deferrable, launch.wait_until_finished, launch.append_job_name) == (False, False, True)
    assert dag.get_task("wait_for_job").expected_statuses == {"JOB_STATE_DONE"}
    assert dag.get_task("cancel_unfinished_job").trigger_rule == "one_failed"


@needs_airflow
@pytest.mark.parametrize(
    ("value", "fix"), [("my-project", "placeholder"), ("", "not set")], ids=["placeholder", "unset"]
)
def test_a_placeholder_left_in_a_variable_is_the_dags_one_import_error(monkeypatch, value, fix):
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWSCORE_PROJECT", value)
    bag = dag_bag(DAG_FILE)
    assert list(bag.dags) == [] and list(bag.import_errors) == [str(DAG_FILE)]
    last_line = bag.import_errors[str(DAG_FILE)].strip().splitlines()[-1]
    assert "set the Airflow Variable reviewscore_project" in last_line and fix in last_line, last_line


@needs_airflow
def test_the_run_at_3_am_scores_the_previous_day(scheduled_run, dag):
    """The scheduler's next run after the 2026-11-24 interval starts at 2026-11-26 03:00 UTC and, rendered,
    waits for, scores and checks 2026-11-25 with the dev half's launch request, through the one connection."""
    import pendulum

    info, rendered = scheduled_run
    assert info.run_after == pendulum.datetime(2026, 11, 26, 3, tz="UTC")
    assert info.data_interval.start == pendulum.datetime(2026, 11, 25, 3, tz="UTC")
    assert_scores_day(rendered, DAY)
    assert (rendered["score_reviews"]["project_id"], rendered["score_reviews"]["location"]) == (
        "demo-project", "europe-west1",
    )  # fmt: skip
    job = dag.get_task("wait_for_job")
    assert (job.project_id, job.location) == ("demo-project", "europe-west1")
    assert job.job_id == "{{ ti.xcom_pull(task_ids='score_reviews', key='job_id') }}"  # what the launch pushes
    assert rendered["wait_for_reviews"]["google_cloud_conn_id"] == "google_cloud_default"
    assert rendered["score_reviews"]["gcp_conn_id"] == job.gcp_conn_id == "google_cloud_default"


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
@pytest.mark.skipif(not AIRFLOW_3, reason="Airflow 2 has no run without a logical date")
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

    for body in (rendered["score_reviews"]["body"], day_request(DAY, **NETWORK)):
        check(body, launch["launch"]["request"], "body")
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

        yield storage.Client.create_anonymous_client().create_bucket(BUCKET)
    finally:
        server.kill()
        server.wait()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def airflow_exceptions():
    """The module whose AirflowFailException the task runner treats as final: the task SDK's on Airflow 3."""
    if AIRFLOW_3:
        import airflow.sdk.exceptions as exceptions
    else:
        import airflow.exceptions as exceptions
    return exceptions


def gate(dag):
    """The callable the DAG's check_run task runs."""
    return dag.get_task("check_run").python_callable


def passing_summary() -> dict:
    """A day's _SUMMARY.json as the job writes it (schemas/summary.py), of a run that passed this DAG's policy."""
    day = f"gs://{BUCKET}/scored/{DAY}"
    return {
        "records_read": 1000, "records_scored": 990, "records_failed": 10,
        "failed_by_stage": {"decode": 4, "preprocess": 6}, "accounting_ok": True,
        "label_counts": {"negative": 412, "positive": 578}, "model_version": "2.0.0",
        "engine": "onnx", "engines": {"onnx": {"reviews": 990, "why": ["asked for"]}},
        "wall_seconds": 312.5, "reviews_per_second": 3.2,
        "scored_files": [f"{day}/scored-00000-of-00001.parquet"],
        "error_files": [f"{day}/_errors/errors-00000-of-00001.parquet"],
        "lineage": {
            "inputs": {"given": [f"gs://{BUCKET}/reviews/{DAY}/"], "patterns": [f"gs://{BUCKET}/reviews/{DAY}/**.txt",
                       f"gs://{BUCKET}/reviews/{DAY}/**.parquet"], "text_files": 1000, "parquet_files": [],
                       "records": 1000},
            "model": {"location": f"gs://{BUCKET}/models/imdb-bilstm/", "name": "imdb-bilstm", "version": "2.0.0",
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


def empty_day_summary() -> dict:
    """The summary of a day whose folder held only the marker: nothing read, one empty shard, a passing verdict."""
    summary = passing_summary()
    summary.update(
        records_read=0, records_scored=0, records_failed=0, failed_by_stage={}, label_counts={}, engines={},
        reviews_per_second=0.0, error_files=[],
    )  # fmt: skip
    summary["lineage"]["inputs"].update(text_files=0, records=0)
    summary["verdict"].update(error_rate=0.0)
    return summary


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


def shadowed(summary: dict, agreement: float, max_disagreement: float | None) -> dict:
    """`summary` with a challenger that agreed on `agreement` of the reviews, judged with `max_disagreement`."""
    compared = summary["records_scored"]
    same = round(compared * agreement)
    summary["shadow"] = {
        "model": {"location": f"gs://{BUCKET}/models/next/", "name": "imdb-bilstm", "version": "3.0.0",
                  "manifest_sha256": "1" * 64},
        "reviews_compared": compared, "records_failed": 0, "agreement": agreement,
        "labels": {"negative": {"negative": same // 2, "positive": (compared - same) // 2},
                   "positive": {"negative": compared - same - (compared - same) // 2, "positive": same - same // 2}},
        "champion_label_shares": {"negative": 0.5, "positive": 0.5},
        "shadow_label_shares": {"negative": 0.5, "positive": 0.5},
        "drift": {"detected": False, "status": "no_profile", "reason": "no profile", "checks": []},
    }  # fmt: skip
    if max_disagreement is not None:
        summary["verdict"]["max_disagreement"] = max_disagreement
        if 1 - agreement > max_disagreement:
            problems = [f"the models disagree on {1 - agreement:.2%} of reviews, above --max-disagreement"]
            summary["verdict"].update(passed=False, problems=problems)
    return summary


def gate_problems_of(summary: dict, max_disagreement: str | None) -> list[str]:
    """The gate's judgement of a summary as the DAG shipped beside it reads it, without Airflow."""
    from schemas.summary import summary_from_json

    _, policy = shipped_modules()
    return policy.gate_problems(summary_from_json(json.dumps(summary)), max_disagreement)


def test_a_challenger_is_launched_with_the_disagreement_the_day_allows():
    parameters = day_request(DAY, shadow_model=f"gs://{BUCKET}/models/next/", max_disagreement="0.02")[
        "launchParameter"
    ]["parameters"]
    assert (parameters["shadow_model"], parameters["max_disagreement"]) == (f"gs://{BUCKET}/models/next/", "0.02")
    assert "shadow_model" not in day_request(DAY)["launchParameter"]["parameters"]


def test_the_gate_judges_a_challenger_by_the_dags_policy():
    assert gate_problems_of(shadowed(passing_summary(), 0.99, 0.02), "0.02") == []
    problems = gate_problems_of(shadowed(passing_summary(), 0.95, 0.02), "0.02")
    assert problems and "disagree on 5.00%" in problems[0]
    # a day judged without the limit this DAG set fails, as a lenient error rate does
    assert any("max_disagreement=None" in p for p in gate_problems_of(shadowed(passing_summary(), 0.95, None), "0.02"))
    _, policy = shipped_modules()
    from schemas.summary import summary_from_json

    line = policy.shadow_line(summary_from_json(json.dumps(shadowed(passing_summary(), 0.99, 0.02))))
    assert "imdb-bilstm 3.0.0" in line and "99.00% agreement" in line and "990 reviews" in line


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
    AirflowFailException = airflow_exceptions().AirflowFailException

    summary = passing_summary()
    change(summary)
    gcs_connection.blob(f"scored/{DAY}/_SUMMARY.json").upload_from_string(json.dumps(summary))
    with pytest.raises(AirflowFailException, match=message) as failed:
        gate(dag)(DAY)
    assert f"gs://{BUCKET}/scored/{DAY}/_SUMMARY.json" in str(failed.value)
    if summary.get("verdict") and not summary["verdict"]["passed"]:
        assert f"see gs://{BUCKET}/scored/{DAY}/_report.html" in str(failed.value)


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
    with pytest.raises(airflow_exceptions().AirflowFailException, match=r"scored/2026-11-24/_SUMMARY\.json does not"):
        gate(dag)("2026-11-24")


@needs_airflow
def test_the_gate_passes_a_day_with_nothing_to_score(dag, gcs_connection, caplog):
    """A day whose folder held only the marker: 0 records read and a passing verdict is a day with nothing to
    score, not a failure."""
    gcs_connection.blob(f"scored/{DAY}/_SUMMARY.json").upload_from_string(json.dumps(empty_day_summary()))
    logger = gate(dag).__module__
    with caplog.at_level("INFO", logger=logger):
        gate(dag)(DAY)
    lines = [record.getMessage() for record in caplog.records if record.name == logger]
    assert len(lines) == 1 and lines[0].startswith(f"{DAY} had no reviews: nothing to score"), lines


def rendered_task(dag, task_id: str, day: str = DAY):
    """A copy of one task with the day's templates rendered (the scheduled run's data interval)."""
    import pendulum
    from airflow.timetables.base import DataInterval

    start = pendulum.parse(f"{day}T03:00:00+00:00")
    interval = DataInterval(start, start.add(days=1))
    rendered = rendered_tasks(
        dag, run_id="scheduled", logical_date=start, data_interval=interval, run_after=interval.end,
        run_type="scheduled",
    )[task_id]  # fmt: skip
    task = copy.deepcopy(dag.get_task(task_id))
    for field, value in rendered.items():
        setattr(task, field, value)
    return task


def deferred(call):
    """Whether `call()` deferred the task (raised TaskDeferred), and the trigger and timeout it deferred with."""
    try:
        result = call()
    except BaseException as e:  # Airflow 3's TaskDeferred is not an Exception
        if type(e).__name__ != "TaskDeferred":
            raise
        return True, e.trigger, e.timeout
    return False, result, None


@needs_airflow
def test_the_input_sensor_waits_for_the_days_marker(dag, gcs_connection):
    """Against the emulator: without reviews/DAY/_SUCCESS the sensor waits (deferred to the triggerer when
    deferrable, else a poke that says not yet), with it the sensor is done."""
    sensor = rendered_task(dag, "wait_for_reviews", "2026-11-20")
    waits, trigger, timeout = deferred(lambda: sensor.execute(context={}) if DEFERRABLE else sensor.poke(context={}))
    if DEFERRABLE:
        assert waits and type(trigger).__name__ == "GCSBlobTrigger", trigger
        assert trigger.object_name == "reviews/2026-11-20/_SUCCESS" and trigger.bucket == BUCKET
        assert timeout == timedelta(seconds=sensor.timeout)
    else:
        assert not waits and trigger is False
    gcs_connection.blob("reviews/2026-11-20/_SUCCESS").upload_from_string("")
    assert sensor.poke(context={}) is True


class DataflowStandIn:
    """Answers the job sensor's and the cancel's Dataflow calls as the API would for one job (no emulator
    exists for Dataflow); records what was asked."""

    def __init__(self, state: str, messages: list[dict] | None = None):
        self.state, self.messages, self.cancelled = state, messages or [], []

    def get_job(self, *, job_id, project_id, location):
        assert (project_id, location) == ("demo-project", "europe-west1")
        return {"id": job_id, "name": "reviewscore-20261125-1a2b3c4d", "currentState": self.state}

    def fetch_job_messages_by_id(self, *, job_id, project_id, location):
        return self.messages


LAUNCHER_FAILED = [
    {"messageImportance": "JOB_MESSAGE_BASIC", "messageText": "Starting the launcher VM"},
    {"messageImportance": "JOB_MESSAGE_ERROR", "messageText": "Error occurred in the launcher container: "
     "Template launch failed. See console logs."},
]  # fmt: skip


def job_sensor(dag, state: str, messages=None):
    sensor = copy.deepcopy(dag.get_task("wait_for_job"))
    sensor.job_id = "2026-11-26_03_05_00-123"
    sensor.__dict__["hook"] = DataflowStandIn(state, messages)  # the sensor's cached hook
    return sensor


@needs_airflow
@pytest.mark.parametrize("state", ["JOB_STATE_QUEUED", "JOB_STATE_RUNNING"])
def test_the_job_sensor_waits_while_the_job_runs(dag, state):
    """A job still queued (the launcher at work) or running: deferred to the triggerer with the task's
    execution_timeout when deferrable, else not done yet."""
    sensor = job_sensor(dag, state)
    waits, trigger, timeout = deferred(lambda: sensor.execute(context={}) if DEFERRABLE else sensor.poke(context={}))
    if DEFERRABLE:
        assert waits and type(trigger).__name__ == "DataflowJobStatusTrigger"
        assert trigger.job_id == sensor.job_id and trigger.expected_statuses == {"JOB_STATE_DONE"}
        assert timeout == sensor.execution_timeout
    else:
        assert not waits and trigger is False


@needs_airflow
def test_the_job_sensor_is_done_when_the_job_is(dag):
    assert job_sensor(dag, "JOB_STATE_DONE").poke(context={}) is True


@needs_airflow
@pytest.mark.parametrize("state", ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED"])
def test_a_failed_job_fails_the_day_at_once_with_dataflows_reasons(dag, state):
    """A failed launch (the launcher's exit 2 among others) or job: AirflowFailException, never retried, naming
    the state, Dataflow's error message and the job's console page; in deferrable mode the same once the
    trigger reports it."""
    AirflowFailException = airflow_exceptions().AirflowFailException

    sensor = job_sensor(dag, state, LAUNCHER_FAILED)
    calls = [lambda: sensor.poke(context={})]
    event = {"status": "error", "message": f"Job with id '{sensor.job_id}' is already in terminal state: {state}"}
    calls.append(lambda: sensor.execute_complete(context={}, event=event))
    for call in calls:
        with pytest.raises(AirflowFailException) as failed:
            call()
        message = str(failed.value)
        assert state in message and "Template launch failed" in message and "Starting the launcher" not in message
        page = "console.cloud.google.com/dataflow/jobs/europe-west1/2026-11-26_03_05_00-123?project=demo-project"
        assert page in message
        assert "\n" not in message


@needs_airflow
def test_an_error_while_following_a_running_job_is_retried(dag):
    """The trigger's own error (the API unreachable) while the job still runs: an ordinary failure, retried."""
    exceptions = airflow_exceptions()
    sensor = job_sensor(dag, "JOB_STATE_RUNNING")
    with pytest.raises(exceptions.AirflowException) as failed:
        sensor.execute_complete(context={}, event={"status": "error", "message": "503 Service Unavailable"})
    assert not isinstance(failed.value, exceptions.AirflowFailException)
    assert "503 Service Unavailable" in str(failed.value)


class RefusingHook:
    def __init__(self, status: int):
        self.status = status

    def start_flex_template(self, **_):
        import httplib2
        from googleapiclient.errors import HttpError

        content = json.dumps({"error": {"message": "Invalid value for parameter batch_size"}}).encode()
        raise HttpError(httplib2.Response({"status": self.status}), content)


@needs_airflow
@pytest.mark.parametrize(("status", "final"), [(400, True), (403, True), (404, True), (429, False), (503, False)])
def test_a_launch_the_api_refuses_fails_the_day_at_once(dag, status, final):
    """A request Dataflow refuses (a parameter the template's metadata rejects, a permission, no spec) would be
    refused again: it fails at once with the API's reason; quota and server errors are left to the retries."""
    from googleapiclient.errors import HttpError

    launch = rendered_task(dag, "score_reviews")
    launch.__dict__["hook"] = RefusingHook(status)
    expected = airflow_exceptions().AirflowFailException if final else HttpError
    with pytest.raises(expected) as failed:
        launch.execute(context={})
    if final:
        assert f"Dataflow refused the launch ({status})" in str(failed.value)
        assert "Invalid value for parameter batch_size" in str(failed.value)


@needs_airflow
def test_a_day_without_a_launched_job_has_nothing_to_cancel(dag, caplog):
    """The cancel after a failed wait: when the launch itself failed, its XCom renders as nothing."""
    cancel = dag.get_task("cancel_unfinished_job").python_callable
    with caplog.at_level("INFO", logger=cancel.__module__):
        cancel("None")
    assert any("nothing to cancel" in record.getMessage() for record in caplog.records)
