"""Which engine scores a job, that scoring, `--help`, `info` and `explain` need no TensorFlow, and that no
command prints TensorFlow's or Keras' own lines unless asked.

The no-TensorFlow runs are real subprocesses in which `import tensorflow` and `import keras` fail,
as on a worker built from requirements.lock: the job must score with model.onnx, and a TensorFlow
engine asked for must be refused with one line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import quiet_logging
from pipeline.model import native_log
from pipeline.model.engines import base
from pipeline.model.engines.base import EngineUnavailable
from pipeline.model.engines.choice import choose_engine
from pipeline.model.engines.xla import XLA_FROM_REVIEWS
from schemas.bundle import ONNX_FILE

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("tensorflow", "keras", "apache_beam")
WITH_ONNX, WITHOUT_ONNX = {ONNX_FILE}, set()  # a bundle's file names, as its manifest lists them


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


WITHOUT_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # `import tensorflow` fails; importlib.util.find_spec says not installed
sys.modules["keras"] = None
from pipeline.cli import main
sys.argv = ["reviewscore", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--help"], 0), (["--version"], 0), (["info", "models/imdb-bilstm"], 0), (["score", "reviews/"], 2)],
    ids=["help", "version", "info", "argument-error"],
)
@pytest.mark.slow
def test_help_info_and_argument_errors_import_neither_tensorflow_nor_beam(args, code):
    probe = run_python(
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from pipeline.cli import app\n"
        "result = CliRunner().invoke(app, sys.argv[1:])\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps({'code': result.exit_code, 'loaded': loaded}))",
        *args,
    )
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report == {"code": code, "loaded": []}


@pytest.mark.slow
def test_a_job_scores_without_tensorflow_installed(tiny_bundle, tmp_path):
    texts = ["wonderful film, superb acting", "dreadful and boring", "the plot"]
    pq.write_table(pa.table({"review_id": ["a", "b", "c"], "text": texts}), tmp_path / "in.parquet")
    out = tmp_path / "out"
    done = run_python(WITHOUT_TENSORFLOW, "score", str(tmp_path / "in.parquet"), "--output", str(out),
                      "--model", str(tiny_bundle.path))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "onnx (3 reviews)" in done.stdout and "TensorFlow is not installed" in done.stderr
    scored = pd.concat(pd.read_parquet(f) for f in sorted(out.glob("scored-*.parquet")))
    assert sorted(scored.review_id) == ["a", "b", "c"]

    refused = run_python(WITHOUT_TENSORFLOW, "score", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "x"),
                         "--model", str(tiny_bundle.path), "--engine", "xla")  # fmt: skip
    assert refused.returncode == 2
    assert "--engine xla needs TensorFlow, which is not installed here" in refused.stderr.replace("\n", " ")
    assert "Traceback" not in refused.stderr and not (tmp_path / "x").exists()

    explained = run_python(WITHOUT_TENSORFLOW, "score", str(tmp_path / "in.parquet"), "--output",
                           str(tmp_path / "e"), "--model", str(tiny_bundle.path), "--explain", "2")  # fmt: skip
    assert explained.returncode == 0, explained.stderr  # occlusion runs on onnx
    assert "top_words" in pd.concat(pd.read_parquet(f) for f in sorted((tmp_path / "e").glob("scored-*.parquet")))
    unexplained = run_python(WITHOUT_TENSORFLOW, "score", str(tmp_path / "in.parquet"), "--output",
                             str(tmp_path / "y"), "--model", str(tiny_bundle.path), "--explain", "3",
                             "--explain-method", "integrated-gradients")  # fmt: skip
    assert unexplained.returncode == 2
    assert "integrated gradients need TensorFlow" in unexplained.stderr.replace("\n", " ")
    assert "Traceback" not in unexplained.stderr and not (tmp_path / "y").exists()


def test_auto_picks_onnx_for_small_jobs_and_xla_for_large_ones(monkeypatch):
    monkeypatch.setattr(base, "module_installed", lambda name: True)
    assert choose_engine("auto", WITH_ONNX, 12)[0] == "onnx"
    assert choose_engine("auto", WITH_ONNX, XLA_FROM_REVIEWS - 1)[0] == "onnx"
    assert choose_engine("auto", WITH_ONNX, XLA_FROM_REVIEWS)[0] == "xla"
    assert choose_engine("auto", WITH_ONNX, None)[0] == "xla"  # size unknown: the engine that is fastest per review
    assert choose_engine("auto", WITHOUT_ONNX, 12) == ("xla", "no model.onnx in the bundle")
    assert choose_engine("keras", WITH_ONNX, 12) == ("keras", "asked for")


def test_without_tensorflow_auto_is_onnx_and_a_bundle_without_onnx_cannot_score(monkeypatch):
    monkeypatch.setattr(base, "module_installed", lambda name: name != "tensorflow")
    assert choose_engine("auto", WITH_ONNX, 10**9) == ("onnx", "TensorFlow is not installed")
    with pytest.raises(EngineUnavailable, match=r"no model\.onnx and TensorFlow is not installed"):
        choose_engine("auto", WITHOUT_ONNX, 10)
    with pytest.raises(EngineUnavailable, match="export-onnx"):
        choose_engine("onnx", WITHOUT_ONNX, 10)


def test_export_onnx_gives_an_older_bundle_its_model_onnx(tiny_bundle, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.model.bundle import Bundle

    older = tmp_path / "older"
    shutil.copytree(tiny_bundle.path, older)
    manifest = json.loads((older / "manifest.json").read_text())
    for name in ("model.onnx", "occlusion.onnx"):  # a bundle from before either was written
        (older / name).unlink()
        del manifest["files"][name]
    del manifest["onnx"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    assert not Bundle.open(older).has_onnx

    result = CliRunner().invoke(app, ["export-onnx", str(older)])
    assert result.exit_code == 0, result.output
    updated = Bundle.open(older)  # checksums verified, model.onnx among them
    assert updated.has_onnx and updated.model_version == tiny_bundle.model_version
    assert updated.manifest.onnx["checked_against_keras"]["max_abs_probability_difference"] <= 1e-5


NATIVE_ERROR_LINE = """
import os, sys
{setup}
import tensorflow as tf
# PrintV2 to log(error) writes through TensorFlow's C++ LOG(ERROR), as the oneDNN notice
# ("oneDNN supports DT_BOOL only on platforms with AVX-512", tensorflow/core/util/util.cc) does.
tf.print("reviewscore-native-probe", output_stream=tf.compat.v1.logging.error)
"""


@pytest.mark.parametrize(
    ("setup", "user_level", "shown"),
    [
        ("import pipeline.cli as cli; cli.quiet_logging(verbose=False)", None, False),  # every command
        ("import pipeline.cli as cli; cli.quiet_logging(verbose=True)", None, True),  # --verbose shows them
        ("import pipeline.cli as cli; cli.quiet_logging(verbose=False)", "0", True),  # a user's level is kept
        ("import pipeline.cli, pipeline.job.scoring, pipeline.model.layers", None, True),  # importing sets nothing
    ],
    ids=["default", "verbose", "user's level", "import alone"],
)
@pytest.mark.slow
def test_tensorflow_native_error_lines_reach_stderr_only_when_asked(setup, user_level, shown):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    done = subprocess.run(
        [sys.executable, "-c", NATIVE_ERROR_LINE.format(setup=setup)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("reviewscore-native-probe" in done.stderr) is shown, done.stderr[-2000:]


# What TensorFlow and Keras print on their own: absl's load-time lines and records, and Keras' warnings.
NOISE = re.compile(r"oneDNN|absl|InitializeLog|^[IWEF]\d{4} \d\d:|[Kk]eras|UserWarning", re.MULTILINE)


def run_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`reviewscore ARGS` in a fresh process, with TensorFlow's log level as a user who set none has it."""
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**clean, **(env or {})}, timeout=600)  # fmt: skip


@pytest.mark.parametrize("args", [["explain", "a fine film"], ["info", "models/imdb-bilstm"]], ids=["explain", "info"])
@pytest.mark.slow
def test_commands_print_no_tensorflow_or_keras_lines(args):
    done = run_command(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not NOISE.search(done.stderr), done.stderr[-2000:]
    assert done.stdout.strip()


@pytest.mark.slow
def test_explain_by_occlusion_needs_no_tensorflow():
    done = run_python(WITHOUT_TENSORFLOW, "explain", "a fine film")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fine" in done.stdout and "occlusion" in done.stdout


@pytest.mark.slow
def test_train_prints_no_tensorflow_or_keras_lines(labelled_parquet, tmp_path):
    done = run_command("train", "--data", labelled_parquet, "--out", str(tmp_path / "b"), "--arch", "lstm",
                       "--epochs", "1", "--batch-size", "16", "--vocab-size", "200", "--max-length", "40")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert not NOISE.search(done.stderr), done.stderr[-2000:]
    assert "bundle:" in done.stdout


@pytest.mark.slow
def test_tensorflow_load_lines_are_held_to_the_level_asked():
    absl = (
        "a line of our own\n"
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796145808.403024   28549 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1796145808.473961   28549 cpu_feature_guard.cc:227] This binary is optimized.\n"
        "To enable the following instructions: AVX2, rebuild TensorFlow.\n"
        "E0000 00:00:1796145808.5   28549 util.cc:1] an error\n"
    )
    assert native_log.kept_lines(absl, 0) == absl
    assert native_log.kept_lines(absl, 1) == "a line of our own\nE0000 00:00:1796145808.5   28549 util.cc:1] an error\n"
    assert native_log.kept_lines(absl, 3) == "a line of our own\n"
    quieted = "from pipeline.model.native_log import quiet_tensorflow; quiet_tensorflow(); import tensorflow"
    done = subprocess.run([sys.executable, "-c", quieted], capture_output=True, text=True,
                          cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
                          timeout=300)  # fmt: skip
    assert done.returncode == 0 and not NOISE.search(done.stderr), done.stderr[-2000:]


def test_keras_warnings_reach_the_terminal_only_with_verbose():
    root = logging.getLogger().level
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_logging(verbose=False)
            warnings.warn_explicit("hidden", UserWarning, "epoch_iterator.py", 1, module="keras.src.trainers")
            warnings.warn_explicit("ours", UserWarning, "graph.py", 1, module="pipeline.job.graph")
            quiet_logging(verbose=True)
            warnings.warn_explicit("shown", UserWarning, "epoch_iterator.py", 1, module="keras.src.trainers")
    finally:
        logging.getLogger().setLevel(root)
    assert [str(w.message) for w in caught] == ["ours", "shown"]
