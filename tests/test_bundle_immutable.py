"""A bundle is immutable once written: every command that takes one leaves each of its bytes alone.

Every run records the manifest's checksum as its lineage, so a command that rewrote a bundle's file
(a new export, a profile, a cache written beside the model) would change what earlier runs point
to. Each command runs through the real CLI, one process each, against a read-only copy of each
committed bundle; the commands that write into a bundle refuse one that already has their files
(exit 2, one line), and `--force` rewrites them with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.job.lineage import manifest_sha256
from pipeline.model.bundle import Bundle
from schemas.bundle import MANIFEST_FILE, OCCLUSION_FILE, ONNX_FILE, PROFILE_FILE
from schemas.exit_codes import EXIT_CONFIG_ERROR
from tests.conftest import make_five_class_reviews, make_reviews

pytestmark = pytest.mark.slow  # each test runs commands on whole bundles

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ("imdb-bilstm", "rt-sentiment5")


def reviewscore(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def contents(folder: Path) -> dict[str, str]:
    """Every path under `folder` (folders included, so an added empty one shows) with its file's sha256."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(folder.rglob("*"))
    }


def set_writable(folder: Path, writable: bool) -> None:
    """chmod -R a-w (or u+w back, for the clean-up)."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module", params=COMMITTED)
def read_only(request, tmp_path_factory):
    """A read-only copy of a committed bundle, its contents before any command, and a few labelled reviews
    it can score (labels: its class indices, every class present)."""
    root = tmp_path_factory.mktemp(request.param)
    bundle = shutil.copytree(ROOT / "models" / request.param, root / "bundle")
    classes = len(Bundle.open(bundle).manifest.class_names)
    reviews = make_reviews(4, seed=3) if classes == 2 else make_five_class_reviews(classes, seed=3)
    labelled = root / "labelled.parquet"
    pq.write_table(pa.table({"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}), labelled)
    set_writable(bundle, False)
    yield {"bundle": bundle, "before": contents(bundle), "labelled": labelled, "root": root}
    set_writable(bundle, True)


def commands(bundle: Path, labelled: Path, out: Path) -> dict[str, list]:
    """Every command that takes a bundle, on tiny inputs, each writing (if at all) to its own new folder."""
    return {
        "info": ["info", bundle],
        "score": ["score", labelled, "--model", bundle, "--output", out / "score", "--explain", 2],
        "evaluate": ["evaluate", labelled, "--model", bundle, "--output", out / "evaluate"],
        "explain": ["explain", "a wonderful film, not dull at all", "--model", bundle],
        "profile": ["profile", bundle, "--data", labelled],
        "export-onnx": ["export-onnx", bundle],
    }


READING = ("info", "score", "evaluate", "explain")
WRITING = {"profile": [PROFILE_FILE], "export-onnx": [ONNX_FILE, OCCLUSION_FILE]}


@pytest.mark.parametrize("command", [*READING, *WRITING])
def test_no_command_changes_a_byte_of_a_read_only_bundle(read_only, command, tmp_path):
    bundle = read_only["bundle"]
    done = reviewscore(*commands(bundle, read_only["labelled"], tmp_path)[command])

    assert contents(bundle) == read_only["before"]  # no byte changed, no file added
    if command in READING:
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        assert done.returncode == EXIT_CONFIG_ERROR, done.stderr[-3000:]
        message = done.stderr.strip()
        assert len(message.splitlines()) == 1 and "Traceback" not in message, message
        assert all(name in message for name in WRITING[command]) and "--force" in message, message


def test_export_onnx_with_force_writes_the_same_bytes_twice(tmp_path):
    """The same weights give the same ONNX files and manifest: no time, path or random name inside."""
    bundle = shutil.copytree(ROOT / "models" / "imdb-bilstm", tmp_path / "bundle")
    runs = []
    for _ in range(2):
        done = reviewscore("export-onnx", bundle, "--force")
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(contents(bundle))
    assert runs[0] == runs[1]
    manifest = json.loads((bundle / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["version"] == Bundle.open(ROOT / "models" / "imdb-bilstm").model_version
    assert "exported" not in manifest["onnx"]  # a time would make every export's checksum new
    assert manifest_sha256(bundle) == runs[1][MANIFEST_FILE]


def test_profile_with_force_writes_the_same_bytes_twice(tmp_path):
    bundle = shutil.copytree(ROOT / "models" / "rt-sentiment5", tmp_path / "bundle")
    data = tmp_path / "reviews.parquet"
    reviews = make_five_class_reviews(40, seed=5)
    pq.write_table(pa.table({"text": [t for t, _ in reviews], "label": [label for _, label in reviews]}), data)
    runs = []
    for _ in range(2):
        done = reviewscore("profile", bundle, "--data", data, "--force")
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(contents(bundle))
    assert runs[0] == runs[1]
    assert Bundle.open(bundle).profile.source["reviews"] == len(reviews)  # written: not the committed profile
