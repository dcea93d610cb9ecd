"""The Dataflow path, exercised without a cloud account: DataflowRunner builds the job graph (dry run)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.job import ScoringJob, run_scoring

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", reason="needs apache-beam[gcp]")

DATAFLOW = [
    "--runner", "DataflowRunner", "--dry_run=True", "--no_auth",
    "--project", "demo-project", "--region", "europe-west1", "--temp_location", "gs://demo-bucket/tmp",
]  # fmt: skip


def test_dataflow_job_graph_has_every_stage(tiny_bundle, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.txt").write_text("a wonderful film", encoding="utf-8")
    outcome = run_scoring(
        ScoringJob(
            inputs=[str(tmp_path / "in")],
            output="gs://demo-bucket/scored",
            model=str(tiny_bundle.path),
            beam_args=DATAFLOW,
        )
    )
    steps = outcome["steps"]
    assert outcome["dry_run"] is True
    for stage in (
        "Read/MatchTextFiles", "Read/ReadTextFiles", "CountRead", "Encode",
        "Score/BeamML_RunInference", "ToScoredRow", "WriteScored", "WriteErrors", "WriteSummary",
    ):  # fmt: skip
        assert any(step == stage or step.startswith(stage + "/") for step in steps), (stage, steps)


def test_dataflow_dry_run_through_the_cli(tiny_bundle, tmp_path):
    (tmp_path / "1.txt").write_text("a dull film", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["score", str(tmp_path / "1.txt"), "--output", "gs://demo-bucket/out", "--model", str(tiny_bundle.path)],
        obj={"beam_args": DATAFLOW},
    )
    assert result.exit_code == 0, result.output
    assert "dry run: job graph built" in result.output and "WriteScored" in result.output


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


def test_flex_template_entry_point_as_the_launcher_runs_it(tiny_bundle, tmp_path):
    """The launcher runs the file with each template parameter as --name=value plus Dataflow options;
    every parameter of metadata.json is passed, so a parameter the entry point does not take fails here."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.txt").write_text("a wonderful film", encoding="utf-8")
    values = {
        "input": str(tmp_path / "in"),
        "output": "gs://demo-bucket/scored",
        "model": str(tiny_bundle.path),
        "text_column": "text",
        "id_column": "review_id",
        "batch_size": "4096",
        "inference_batch_size": "0",
        "engine": "auto",
        "threads": "0",
        "overwrite": "false",
    }
    metadata = json.loads((root / "deploy" / "metadata.json").read_text())
    assert [p["name"] for p in metadata["parameters"]] == list(values)
    command = [sys.executable, str(root / "deploy" / "flex_main.py"), *(f"--{k}={v}" for k, v in values.items())]
    done = subprocess.run(command + DATAFLOW, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["dry_run"] is True and any(step.startswith("WriteScored") for step in outcome["steps"])


def test_cli_template_and_metadata_share_one_set_of_job_options():
    """Names, defaults and help of the job options come from pipeline/job_options.py everywhere."""
    import importlib.util
    import json
    from pathlib import Path

    import typer

    from pipeline.job_options import JOB_OPTIONS, template_metadata

    root = Path(__file__).resolve().parent.parent
    assert json.loads((root / "deploy" / "metadata.json").read_text()) == template_metadata(), (
        "deploy/metadata.json is stale: python -m pipeline.job_options > deploy/metadata.json"
    )

    score = typer.main.get_command(app).commands["score"]
    cli = {param.name: param for param in score.params}
    for option in JOB_OPTIONS:
        param = cli["inputs" if option.name == "input" else option.name]
        assert option.help in (param.help or ""), option.name
        if not option.required:  # the CLI's model has a local default; the template's is required
            assert param.default == option.default, option.name

    spec = importlib.util.spec_from_file_location("flex_main", root / "deploy" / "flex_main.py")
    flex_main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flex_main)
    known, beam_args = flex_main.parse(["--input=a", "--output=b", "--model=c", "--runner=DataflowRunner"])
    for option in (o for o in JOB_OPTIONS if not o.required):
        expected = str(option.default).lower() if option.flag else option.default  # overwrite=false
        assert getattr(known, option.name) == expected, option.name
    assert beam_args == ["--runner=DataflowRunner"]
