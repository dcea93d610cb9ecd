"""The Dataflow path, exercised without a cloud account.

Every door is used the way its real caller uses it: the Flex Template entry point as a subprocess
with `--name=value` parameters, the Airflow DAG's own launch body, the CLI. These build the graph in
a dry run; tests/test_flex_launch.py runs the entry point with the launcher's own options
(--template_location), which is how a real launch differs from a dry run.
gs:// paths go to a Cloud Storage emulator over HTTP (tests/conftest.py), through the real storage
client and Beam's GCS filesystem; DataflowRunner builds the real job graph in a dry run.
"""

from __future__ import annotations

import fnmatch
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.job.scoring import DryRun, ScoringJob, run_scoring
from schemas.output import ERROR_FILES, REPORT_FILE, SUMMARY_FILE

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", reason="needs apache-beam[gcp]")

ROOT = Path(__file__).resolve().parent.parent
FLEX_MAIN = ROOT / "deploy" / "flex_main.py"
IMAGE = "europe-west1-docker.pkg.dev/demo-project/reviewscore/scorer:test"
DATAFLOW = [
    "--runner=DataflowRunner", "--dry_run=True", "--no_auth",
    "--project=demo-project", "--region=europe-west1", "--temp_location=gs://demo-bucket/tmp",
    f"--sdk_container_image={IMAGE}",
]  # fmt: skip
STAGES = (
    "Read/MatchTextFiles", "Read/ReadTextFiles", "CountRead", "Encode",
    "Score/BeamML_RunInference", "Explain", "ToScoredBatch", "WriteScored", "WriteErrors", "PublishShards",
    "Summarize", "WriteSummary",
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
        "shadow_model": model,
        "text_column": "text",
        "id_column": "review_id",
        "batch_size": "4096",
        "inference_batch_size": "0",
        "engine": "auto",
        "threads": "0",
        "max_error_rate": "0.5",
        "max_disagreement": "1",
        "on_drift": "warn",
        "overwrite": overwrite,
        "num_shards": "0",
        "explain": "2",
        "explain_sample": "200",
        "explain_method": "occlusion",
        "explain_steps": "32",
    }
    metadata = json.loads((ROOT / "deploy" / "metadata.json").read_text())
    assert [p["name"] for p in metadata["parameters"]] == list(values)
    return values


@pytest.mark.slow
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


@pytest.mark.slow
def test_dataflow_job_graph_has_every_stage(remote, cloud_storage):
    outcome = run_scoring(
        ScoringJob(
            inputs=[remote["input"]],
            output=cloud_storage.path("scored", "graph"),
            model=remote["model"],
            beam_args=DATAFLOW,
        )
    )
    assert isinstance(outcome, DryRun) and outcome.model_dump()["dry_run"] is True
    for stage in STAGES:
        assert any(step == stage or step.startswith(stage + "/") for step in outcome.steps), stage


@pytest.mark.slow
def test_dataflow_dry_run_through_the_cli(remote, cloud_storage):
    result = CliRunner().invoke(
        app,
        ["score", remote["input"], "--output", cloud_storage.path("scored", "cli"), "--model", remote["model"]],
        obj={"beam_args": DATAFLOW},
    )
    assert result.exit_code == 0, result.output
    assert "dry run: job graph built" in result.output and "WriteScored" in result.output


@pytest.mark.parametrize("local", ["input", "output", "model"])
@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_missing_bucket_is_named(remote, cloud_storage, tmp_path):
    parameters = {"input": remote["input"], "output": "gs://no-such-bucket/out/", "model": remote["model"]}
    done = launch(parameters, DATAFLOW, cloud_storage.env(), tmp_path)
    assert_one_line_error(done, "output gs://no-such-bucket/out/", "bucket gs://no-such-bucket does not exist")


@pytest.mark.slow
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
    errors = [name for name in names if fnmatch.fnmatchcase(name, ERROR_FILES)]
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

    from pipeline.job.scoring import threads_per_process

    assert threads_per_process(asked, PipelineOptions(beam_args)) == expected


def test_cli_template_and_metadata_share_one_set_of_job_options():
    """Every job option is a `score` option and a template parameter, with the same type, default and help."""
    import typer

    from pipeline.job.options import JOB_OPTIONS, parse_template_args, template_metadata

    assert json.loads((ROOT / "deploy" / "metadata.json").read_text()) == template_metadata(), (
        "deploy/metadata.json is stale: python -m pipeline.job.options > deploy/metadata.json"
    )
    score = typer.main.get_command(app).commands["score"]
    cli = {param.name: param for param in score.params}
    assert set(cli) == {option.name for option in JOB_OPTIONS} | {"verbose"}
    defaults, beam_args = parse_template_args(["--input=a,b", "--output=o", "--model=m", "--runner=DataflowRunner"])
    assert beam_args == ["--runner=DataflowRunner"] and defaults["input"] == ["a", "b"]
    for option in JOB_OPTIONS:
        assert option.cli_help in (cli[option.name].help or ""), option.name
        if not option.required:
            assert cli[option.name].default == option.default_for_cli() == defaults[option.name], option.name

    # The two doors build the same job from the same values.
    from pipeline.job.scoring import ScoringJob

    argv = [f"--{k}={v}" for k, v in template_parameters("gs://b/in", "gs://b/out", "gs://b/m", "true").items()]
    values, _ = parse_template_args(argv)
    assert values["max_error_rate"] == 0.5 and values["overwrite"] is True and values["explain"] == 2
    job = ScoringJob.from_options(values, [], wait=False)
    assert (job.policy.max_error_rate, job.policy.on_drift, job.explain.top_k) == (0.5, "warn", 2)


@pytest.mark.parametrize(
    ("parameter", "fragment"),
    [("engine=fast", "expected one of auto, onnx"), ("max_error_rate=2", "from 0 to 1"),
     ("max_error_rate=1.5", "from 0 to 1"), ("batch_size=0", "from 1 up"), ("explain_steps=1", "from 2 up"),
     ("threads=1e3", "in digits"), ("overwrite=yes", "expected true or false")],
)  # fmt: skip
@pytest.mark.slow
def test_a_malformed_template_parameter_is_refused_before_launch(parameter, fragment, tmp_path):
    """What metadata.json's regexes refuse (tests/test_template_regexes.py), the entry point refuses in one line."""
    name = parameter.split("=")[0]
    done = launch({"input": "gs://b/in", "output": "gs://b/out", "model": "gs://b/m", **dict([parameter.split("=")])},
                  DATAFLOW, {}, tmp_path)  # fmt: skip
    assert_one_line_error(done, f"--{name}", fragment)


@pytest.mark.slow
def test_a_dataflow_launch_without_the_worker_image_is_refused(remote, cloud_storage, tmp_path):
    """Beam's stock image lacks reviewscore: every worker would fail after the VMs were paid for."""
    values = template_parameters(remote["input"], cloud_storage.path("scored", "no-image"), remote["model"], "false")
    without_image = [arg for arg in DATAFLOW if not arg.startswith("--sdk_container_image")]
    env = cloud_storage.env()
    # An image reference in the launcher's environment is not read: only the launch names the image.
    refused = launch(values, without_image, {**env, "REVIEWSCORE_IMAGE": IMAGE}, tmp_path)
    assert_one_line_error(refused, "--sdk_container_image")
    # The template's image, which the launcher passes on, is the one the workers get.
    done = launch(values, [*without_image, f"--sdk_container_image={IMAGE}"], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_auto_engine_is_left_to_remote_workers(remote, cloud_storage, monkeypatch):
    """A launcher with TensorFlow must not pick xla for workers that may not have it: 'auto' travels with the
    job's size and each worker resolves it (make rehearse-dataflow runs such a launch on TensorFlow-free workers)."""
    import pipeline.job.scoring as job_module
    from pipeline.job.scoring import ScoringJob, run_scoring

    checked = []
    check = job_module.check_model_loads
    monkeypatch.setattr(job_module, "check_model_loads", lambda *args: checked.append(args[2].scorer) or check(*args))
    job = ScoringJob([remote["input"]], cloud_storage.path("scored", "auto"), remote["model"], beam_args=DATAFLOW)
    run_scoring(job)
    assert checked[0].engine == "auto" and checked[0].reviews == 2
