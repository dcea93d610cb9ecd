"""A user's step off the happy path ends in one line and a documented exit code, never a traceback.

Interrupts (SIGINT, SIGTERM) stop a real run (`python -m pipeline score` on DirectRunner with a real
tiny bundle); configuration checks run in the order a user reads the command, before the model
loads; a missing optional part names its extra; under make, a hint names make's variable.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.cli.common import CALLER_FLAGS, EXIT_CONFIG_ERROR
from pipeline.job.beam_internals import WORKER_EXITED
from pipeline.job.local_run import WorkerDied, run_here
from pipeline.model.extras import GCP, TRAIN
from schemas.output import REPORT_FILE, SUMMARY_FILE
from tests.test_scoring import score, scored_frame

ROOT = Path(__file__).resolve().parent.parent
WORDS = "wonderful film, superb acting"
MOST_STDERR_LINES = 5
runner = CliRunner()


def cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The command line as a user runs it (its own process, the console entry point's handling)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )


def without_modules(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment whose Python cannot import `modules`, as an install without their extra."""
    folder = tmp_path / "blocked"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    )
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}


@pytest.fixture(scope="module")
def many_reviews(tmp_path_factory) -> Path:
    """Enough reviews for a run to still be going when it is interrupted."""
    from tests.conftest import make_reviews

    path = tmp_path_factory.mktemp("many") / "reviews.parquet"
    pq.write_table(pa.table({"text": [t * 4 for t, _ in make_reviews(20_000, seed=3)] * 5}), path)
    return path


def interrupted_run(bundle, reviews: Path, out: Path, stop: signal.Signals) -> tuple[int, list[str]]:
    """Start a run, send `stop` once it writes, and return its exit code and stderr lines."""
    log = out.parent / f"{out.name}.stderr"  # a file, not a pipe: nothing the job leaves could hold it open
    command = [sys.executable, "-m", "pipeline", "score", str(reviews), "--output", str(out), "--model", str(bundle)]
    with log.open("w") as stderr:
        job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
        deadline = time.monotonic() + 120
        while not (out / "_staging").exists() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.05)
        assert job.poll() is None, "the job ended before it could be interrupted; give it more input"
        job.send_signal(stop)
        code = job.wait(timeout=60)
    return code, log.read_text().splitlines()


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.slow
def test_an_interrupted_run_says_so_in_one_line_and_a_rerun_with_overwrite_completes(
    tiny_bundle, many_reviews, tmp_path, stop, code
):
    out = tmp_path / "out"
    exit_code, stderr = interrupted_run(tiny_bundle.path, many_reviews, out, stop)
    assert exit_code == code, stderr
    assert len(stderr) <= MOST_STDERR_LINES, stderr
    assert not any("Traceback" in line for line in stderr), stderr
    last = stderr[-1]
    assert f"interrupted by {stop.name}" in last and str(out) in last and "--overwrite" in last
    left = [p.name for p in out.iterdir()]
    assert SUMMARY_FILE not in left and not [name for name in left if name.endswith(".parquet")], left

    result = score(many_reviews, "--output", out, "--model", tiny_bundle.path, "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(scored_frame(out)) == 100_000
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".parquet")) == [SUMMARY_FILE, REPORT_FILE]


def worker_death(completed: bool):
    """run_here's answer when a worker process dies while the run waits: the way DirectRunner reports it
    (a RuntimeError in one of its threads) from a real thread, the run itself stuck as it would be."""
    stuck = threading.Event()

    def worker_thread():
        raise RuntimeError(f"{WORKER_EXITED} with return code -9")

    def run():
        threading.Thread(target=worker_thread).start()
        stuck.wait(30)

    try:
        return run_here(run, lambda: completed, worker_processes=True)
    finally:
        stuck.set()


def test_a_worker_dying_after_the_summary_was_written_leaves_a_complete_run():
    assert worker_death(completed=True) is None  # the caller reads the summary and exits per its verdict
    with pytest.raises(WorkerDied, match=WORKER_EXITED):
        worker_death(completed=False)


EXIT_WITH_A_JOB_THREAD = """
import atexit, sys, threading
from pipeline.job.local_run import JOB_THREAD, exit_process
atexit.register(lambda: print("torn down"))
if sys.argv[1] == "left running":  # as a stopped run leaves Beam's threads: blocked, not joinable
    threading.Thread(target=threading.Event().wait, name=JOB_THREAD, daemon=False).start()
exit_process(7)
"""


@pytest.mark.parametrize("job", ["none", "left running"])
def test_a_process_exits_normally_unless_a_stopped_run_left_its_thread(job):
    done = subprocess.run([sys.executable, "-c", EXIT_WITH_A_JOB_THREAD, job], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)  # fmt: skip
    assert done.returncode == 7, done.stderr
    # the normal exit runs Python's teardown (atexit); the hard one cannot wait for the blocked thread
    assert ("torn down" in done.stdout) is (job == "none")


def test_a_thread_exception_is_left_to_python_when_a_run_has_no_worker_processes():
    before = threading.excepthook
    assert run_here(lambda: threading.excepthook is before, lambda: False) is True


def test_a_non_empty_output_is_refused_before_the_model_is_read(tmp_path):
    (tmp_path / "in.txt").write_text(WORDS)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("notes.md", "data.csv", "more.csv"):
        (out / name).write_text("mine")
    # the bundle does not exist either: the output, checked first, is what the message names
    done = cli("score", tmp_path / "in.txt", "--output", out, "--model", tmp_path / "no-bundle")
    assert done.returncode == EXIT_CONFIG_ERROR, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"output folder {out} is not empty: 3 files" in done.stderr and "no-bundle" not in done.stderr
    assert "earlier run" not in done.stderr  # they are the user's own files
    assert sorted(p.name for p in out.iterdir()) == ["data.csv", "more.csv", "notes.md"]


def test_an_earlier_runs_output_is_named_so_and_overwrite_is_phrased_as_the_caller_gives_it(tmp_path):
    (tmp_path / "in.txt").write_text(WORDS)
    out = tmp_path / "out"
    out.mkdir()
    (out / SUMMARY_FILE).write_text("{}")
    (out / "scored-00000-of-00001.parquet").write_bytes(b"PAR1")
    done = cli("score", tmp_path / "in.txt", "--output", out, "--model", tmp_path / "no-bundle")
    assert done.returncode == EXIT_CONFIG_ERROR
    assert "is not empty: 2 files of an earlier run" in done.stderr and "pass --overwrite" in done.stderr
    under_make = cli(
        "score", tmp_path / "in.txt", "--output", out, env={CALLER_FLAGS: "--overwrite=OVERWRITE=1 --model=MODEL="}
    )
    assert under_make.returncode == EXIT_CONFIG_ERROR
    assert "pass OVERWRITE=1" in under_make.stderr and "--overwrite" not in under_make.stderr


def test_the_makefile_score_target_tells_the_cli_how_make_spells_its_flags():
    recipe = re.search(r"^score:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile has a score target"
    assert f"{CALLER_FLAGS}=" in recipe.group(1) and "--overwrite=OVERWRITE=1" in recipe.group(1)


def test_inputs_are_checked_before_the_output_and_a_missing_one_is_called_missing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    missing = cli("score", f"{tmp_path}/nothere/", "--output", out)
    assert missing.returncode == EXIT_CONFIG_ERROR
    assert f"input {tmp_path}/nothere/ does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = cli("score", tmp_path / "empty", "--output", tmp_path / "fresh")
    assert empty.returncode == EXIT_CONFIG_ERROR and "holds no *.txt review files" in empty.stderr
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("where", ["input", "output", "model"])
def test_gs_paths_without_the_gcp_extra_name_it_in_one_line(tmp_path, where):
    (tmp_path / "in.txt").write_text(WORDS)
    paths = {"input": str(tmp_path / "in.txt"), "output": str(tmp_path / "out"), "model": "models/imdb-bilstm"}
    paths[where] = f"gs://bucket/{where}/"
    done = cli(
        "score", paths["input"], "--output", paths["output"], "--model", paths["model"],
        env=without_modules(tmp_path, *GCP.modules),
    )  # fmt: skip
    assert done.returncode == EXIT_CONFIG_ERROR, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "gcp extra" in done.stderr and "'.[gcp]'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_bundle_on_gs_without_the_gcp_extra_names_it_for_every_command_that_reads_one(tmp_path):
    env = without_modules(tmp_path, *GCP.modules)
    done = cli("explain", "a wonderful film", "--model", "gs://bucket/models/imdb-bilstm", env=env)
    assert done.returncode == EXIT_CONFIG_ERROR and "gcp extra" in done.stderr and "Traceback" not in done.stderr


def test_a_command_that_imports_a_missing_extra_says_which_to_install(tmp_path, labelled_parquet):
    env = without_modules(tmp_path, *TRAIN.modules)
    done = cli("train", "--data", labelled_parquet, "--out", tmp_path / "bundle", env=env)
    assert done.returncode == EXIT_CONFIG_ERROR, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "train extra" in done.stderr and "'.[train]'" in done.stderr
    assert not (tmp_path / "bundle").exists()


def test_the_default_model_is_found_from_any_folder_and_recorded_where_it_was(tmp_path):
    (tmp_path / "in.txt").write_text(WORDS)
    done = cli("score", tmp_path / "in.txt", "--output", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lineage = json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())["lineage"]
    assert Path(lineage["model"]["location"]) == ROOT / "models" / "imdb-bilstm"


@pytest.mark.parametrize("command", [["score", "in.txt", "--output", "out"], ["explain", "a film"]])
def test_without_the_default_model_one_line_says_where_bundles_come_from(tmp_path, monkeypatch, command):
    import pipeline.job.options

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline.job.options, "CHECKOUT", tmp_path / "not-a-clone")  # an install without the repository
    (tmp_path / "in.txt").write_text(WORDS)
    result = runner.invoke(app, command)
    assert result.exit_code == EXIT_CONFIG_ERROR, result.output
    assert "models/imdb-bilstm" in result.output and "--model PATH" in result.output
    assert not (tmp_path / "out").exists()
