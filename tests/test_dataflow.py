"""The Dataflow path, exercised without a cloud account.

Every door is used the way its real caller uses it: the Flex Template entry point as a subprocess
with `--name=value` parameters, the Airflow DAG's own launch body, the CLI. These build the graph in
a dry run; tests/test_flex_launch.py runs the entry point with the launcher's own options
(--template_location), which is how a real launch differs from a dry run.
gs:// paths go to a Cloud Storage emulator over HTTP (tests/conftest.py), through the real storage
client and Beam's GCS filesystem; DataflowRunner builds the real job graph in a dry run.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from google.cloud import storage
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.job import ScoringJob, run_scoring
from schemas.output import REPORT_FILE, SUMMARY_FILE

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", reason="needs apache-beam[gcp]")

ROOT = Path(__file__).resolve().parent.parent
FLEX_MAIN = ROOT / "deploy" / "flex_main.py"
DATAFLOW = [
    "--runner=DataflowRunner", "--dry_run=True", "--no_auth",
    "--project=demo-project", "--region=europe-west1", "--temp_location=gs://demo-bucket/tmp",
]  # fmt: skip
STAGES = (
    "Read/MatchTextFiles", "Read/ReadTextFiles", "CountRead", "Encode",
    "Score/BeamML_RunInference", "ToScoredBatch", "WriteScored", "WriteErrors", "WriteSummary",
)  # fmt: skip


def launch(parameters: dict[str, str], beam_args: list[str], env: dict[str, str], cwd: Path):
    """Run the Flex Template entry point as the launcher does: one process, --name=value arguments."""
    command = [sys.executable, str(FLEX_MAIN), *(f"--{k}={v}" for k, v in parameters.items()), *beam_args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def assert_one_line_error(done, *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    assert "Traceback" not in done.stderr and not done.stdout.strip()
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def template_parameters(input: str, output: str, model: str, overwrite: str) -> dict[str, str]:
    """A value for every parameter of metadata.json, in its order (checked), so one the entry point does
    not take fails the test that passes them."""
    values = {
        "input": input,
        "output": output,
        "model": model,
        "text_column": "text",
        "id_column": "review_id",
        "batch_size": "4096",
        "inference_batch_size": "0",
        "engine": "auto",
        "threads": "0",
        "overwrite": overwrite,
    }
    metadata = json.loads((ROOT / "deploy" / "metadata.json").read_text())
    assert [p["name"] for p in metadata["parameters"]] == list(values)
    return values


def test_flex_template_entry_point_builds_the_job_graph_in_a_dry_run(remote, cloud_storage, tmp_path):
    """Every parameter of metadata.json is passed, so a parameter the entry point does not take fails here."""
    values = template_parameters(remote["input"], cloud_storage.path("scored", "launcher"), remote["model"], "false")
    done = launch(values, DATAFLOW, cloud_storage.env(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["dry_run"] is True
    for stage in STAGES:
        assert any(step == stage or step.startswith(stage + "/") for step in outcome["steps"]), stage
    assert cloud_storage.files(values["output"]) == []  # a dry run writes nothing, not even the write check


def test_airflow_dag_parameters_launch_the_entry_point(cloud_storage, tiny_bundle, tmp_path):
    """The DAG's `body`, as Airflow renders it for one day, fed to the entry point the way Dataflow does."""
    source = (ROOT / "deploy" / "airflow_dag.py").read_text()
    body = rendered_launch_body(source, ds="2026-11-25")
    launch_parameter = body["launchParameter"]
    parameters, environment = launch_parameter["parameters"], launch_parameter["environment"]
    # Stage what the DAG expects to find on the day: the model and that day's reviews, in its bucket.
    bucket = re.match(r"gs://([^/]+)/", parameters["model"]).group(1)
    storage.Client.create_anonymous_client().create_bucket(bucket)
    cloud_storage.upload(tiny_bundle.path, parameters["model"].rstrip("/"))
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "r1.txt").write_text("a superb and charming film", encoding="utf-8")
    cloud_storage.upload(tmp_path / "day", parameters["input"].rstrip("/"))

    dataflow_options = [f"--{DAG_ENVIRONMENT_TO_OPTION[key]}={value}" for key, value in environment.items()]
    beam_args = [*dataflow_options, "--runner=DataflowRunner", "--dry_run=True", "--no_auth",
                 "--project=demo-project", "--region=europe-west1"]  # fmt: skip
    done = launch(parameters, beam_args, cloud_storage.env(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["dry_run"] is True


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


def rendered_launch_body(source: str, ds: str) -> dict:
    """Evaluate the DAG file's module constants and its operator's `body`, then render {{ ds }} as Airflow would.

    Airflow itself is not installed here; the body is plain Python literals and f-strings over the
    constants, so it is evaluated from the file's own syntax tree rather than copied into the test.
    """
    tree = ast.parse(source)
    constants: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            value = eval(compile(ast.Expression(node.value), "airflow_dag.py", "eval"), {}, constants)
            for target in node.targets:
                constants[target.id] = value
    bodies = [
        keyword.value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "DataflowStartFlexTemplateOperator"
        for keyword in call.keywords
        if keyword.arg == "body"
    ]
    assert len(bodies) == 1, "the DAG launches one Flex Template"
    body = eval(compile(ast.Expression(bodies[0]), "airflow_dag.py", "eval"), {}, constants)
    text = json.dumps(body).replace("{{ ds_nodash }}", ds.replace("-", "")).replace("{{ ds }}", ds)
    assert "{{" not in text, f"a template variable this test does not render: {text}"
    return json.loads(text)


def test_dataflow_job_graph_has_every_stage(remote, cloud_storage):
    outcome = run_scoring(
        ScoringJob(
            inputs=[remote["input"]],
            output=cloud_storage.path("scored", "graph"),
            model=remote["model"],
            beam_args=DATAFLOW,
        )
    )
    assert outcome["dry_run"] is True
    for stage in STAGES:
        assert any(step == stage or step.startswith(stage + "/") for step in outcome["steps"]), stage


def test_dataflow_dry_run_through_the_cli(remote, cloud_storage):
    result = CliRunner().invoke(
        app,
        ["score", remote["input"], "--output", cloud_storage.path("scored", "cli"), "--model", remote["model"]],
        obj={"beam_args": DATAFLOW},
    )
    assert result.exit_code == 0, result.output
    assert "dry run: job graph built" in result.output and "WriteScored" in result.output


@pytest.mark.parametrize("local", ["input", "output", "model"])
def test_a_remote_runner_refuses_local_paths_before_launching(local, remote, cloud_storage, tiny_bundle, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.txt").write_text("a film", encoding="utf-8")
    paths = {"input": remote["input"], "output": cloud_storage.path("scored", "refused"), "model": remote["model"]}
    paths[local] = {"input": str(tmp_path / "in"), "output": str(tmp_path / "out"), "model": str(tiny_bundle.path)}[
        local
    ]
    done = launch(paths, DATAFLOW, cloud_storage.env(), tmp_path)
    assert_one_line_error(done, "DataflowRunner", f"local {local} {paths[local]}")
    assert not (tmp_path / "out").exists()

    result = CliRunner().invoke(
        app,
        ["score", paths["input"], "--output", paths["output"], "--model", paths["model"]],
        obj={"beam_args": DATAFLOW},
    )
    assert result.exit_code == 2 and f"local {local}" in result.output and "Traceback" not in result.output


def test_unreachable_storage_is_one_line_naming_the_path(tmp_path, cloud_storage):
    """Nothing listens on the storage endpoint: one line, exit 2, instead of minutes of retries."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    parameters = {"input": "gs://b/in/", "output": "gs://b/out/", "model": "gs://b/models/imdb-bilstm"}
    env = {**cloud_storage.env(), "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed}"}
    done = launch(parameters, DATAFLOW, env, tmp_path)
    assert_one_line_error(done, "input gs://b/in/", "cannot connect to Cloud Storage", "Connection refused")


def test_a_missing_bucket_is_named(remote, cloud_storage, tmp_path):
    parameters = {"input": remote["input"], "output": "gs://no-such-bucket/out/", "model": remote["model"]}
    done = launch(parameters, DATAFLOW, cloud_storage.env(), tmp_path)
    assert_one_line_error(done, "output gs://no-such-bucket/out/", "bucket gs://no-such-bucket does not exist")


def test_scoring_on_cloud_storage_publishes_like_local(remote, cloud_storage, tmp_path):
    """DirectRunner, every path on gs://: staged shards are published, then _SUMMARY.json; --overwrite
    deletes an earlier run's files and nothing else."""
    out = cloud_storage.path("scored", "published")
    for name, content in {
        "scored-00003-of-00004.parquet": b"an earlier run's shard",
        "_staging/beam-temp-x/shard": b"half-written",
        SUMMARY_FILE: b"{}",
        "README.txt": b"the team's own notes",
    }.items():
        (tmp_path / "f").write_bytes(content)
        cloud_storage.upload(tmp_path / "f", f"{out}/{name}")

    anonymous = {"beam_args": ["--no_auth"]}  # DirectRunner; the emulator needs no credentials
    refused = CliRunner().invoke(
        app, ["score", remote["input"], "--output", out, "--model", remote["model"]], obj=anonymous
    )
    assert refused.exit_code == 2 and "not empty" in refused.output

    result = CliRunner().invoke(
        app, ["score", remote["input"], "--output", out, "--model", remote["model"], "--overwrite"], obj=anonymous
    )
    assert result.exit_code == 0, result.output
    names = [path.removeprefix(out + "/") for path in cloud_storage.files(out)]
    scored = [name for name in names if name.startswith("scored-")]
    errors = [name for name in names if name.startswith("errors-")]
    assert sorted(set(names) - {*scored, *errors}) == ["README.txt", SUMMARY_FILE, REPORT_FILE], names  # no _staging/
    assert b"<svg" in cloud_storage.read(f"{out}/{REPORT_FILE}")
    assert "scored-00003-of-00004.parquet" not in scored
    assert cloud_storage.read(f"{out}/README.txt") == b"the team's own notes"
    summary = json.loads(cloud_storage.read(f"{out}/{SUMMARY_FILE}"))
    assert summary["records_read"] == summary["records_scored"] == 2 and summary["accounting_ok"]
    assert sorted(summary["scored_files"]) == sorted(f"{out}/{name}" for name in scored)
    rows = {
        kind: sum(pq.read_table(io.BytesIO(cloud_storage.read(f"{out}/{name}"))).num_rows for name in names)
        for kind, names in (("scored", scored), ("errors", errors))
    }
    assert rows == {"scored": 2, "errors": 0}


@pytest.mark.parametrize(
    ("asked", "beam_args", "expected"),
    [
        (0, [], 0),  # DirectRunner: one thread per core
        (0, ["--runner", "DataflowRunner"], 1),  # one SDK process per vCPU already fills the VM
        (0, ["--runner", "DataflowRunner", "--experiments=no_use_multiple_sdk_containers"], 0),
        (3, ["--runner", "DataflowRunner"], 3),  # the user's choice wins
    ],
)
def test_threads_per_process_follow_the_runner(asked, beam_args, expected):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.job import threads_per_process

    assert threads_per_process(asked, PipelineOptions(beam_args)) == expected


def test_cli_template_and_metadata_share_one_set_of_job_options():
    """Names, defaults and help of the job options come from pipeline/job_options.py everywhere."""
    import typer

    from pipeline.job_options import JOB_OPTIONS, template_metadata

    assert json.loads((ROOT / "deploy" / "metadata.json").read_text()) == template_metadata(), (
        "deploy/metadata.json is stale: python -m pipeline.job_options > deploy/metadata.json"
    )

    score = typer.main.get_command(app).commands["score"]
    cli = {param.name: param for param in score.params}
    for option in JOB_OPTIONS:
        param = cli["inputs" if option.name == "input" else option.name]
        assert option.help in (param.help or ""), option.name
        if not option.required:  # the CLI's model has a local default; the template's is required
            assert param.default == option.default, option.name

    spec = importlib.util.spec_from_file_location("flex_main", FLEX_MAIN)
    flex_main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flex_main)
    known, beam_args = flex_main.parse(["--input=a", "--output=b", "--model=c", "--runner=DataflowRunner"])
    for option in (o for o in JOB_OPTIONS if not o.required):
        expected = str(option.default).lower() if option.flag else option.default  # overwrite=false
        assert getattr(known, option.name) == expected, option.name
    assert beam_args == ["--runner=DataflowRunner"]


def dag_function(source: str, name: str, **namespace):
    """A function of the DAG file, defined from its own syntax tree over the file's constants (Airflow is not
    installed here, so the module cannot be imported)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            for target in node.targets:
                namespace[target.id] = eval(compile(ast.Expression(node.value), "airflow_dag.py", "eval"), namespace)
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    exec(compile(ast.Module([function], type_ignores=[]), "airflow_dag.py", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("drifted", [False, True])
def test_airflow_drift_gate_fails_the_day_only_when_the_run_drifted(cloud_storage, drifted):
    from pipeline.monitoring.drift import check_drift
    from tests.test_monitoring import synthetic

    class AirflowFailException(Exception):  # Airflow's own is not installed here
        pass

    gate = dag_function(
        (ROOT / "deploy" / "airflow_dag.py").read_text(), "drift_gate", json=json,
        AirflowFailException=AirflowFailException,
    )  # fmt: skip
    bucket = storage.Client.create_anonymous_client().bucket("my-bucket")
    if not bucket.exists():
        bucket.create()
    run = synthetic(1000, seed=7, unknown=0.5) if drifted else synthetic(1000, seed=7)
    summary = {"records_scored": 1000, "records_failed": 0, "drift": check_drift(synthetic(5000, seed=0), run)}
    bucket.blob("scored/2026-11-25/_SUMMARY.json").upload_from_string(json.dumps(summary))
    if drifted:
        with pytest.raises(AirflowFailException, match=r"drift detected \(vocabulary, unknown_word_rate\)"):
            gate("2026-11-25")
    else:
        gate("2026-11-25")
