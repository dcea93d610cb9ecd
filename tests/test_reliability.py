"""Bad input, configuration faults and interruptions: every record is scored or reported, never both or neither.

All through the real pipeline on DirectRunner with a real (tiny) bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.output import REPORT_FILE, SUMMARY_FILE
from tests.test_scoring import error_frame, score, scored_frame, summary

WORDS = "wonderful film, superb acting"


def outcome(out: Path) -> tuple[dict, dict]:
    """review_id -> score for scored rows, review_id -> stage for error rows; checks no id is in both."""
    scored = scored_frame(out)
    errors = error_frame(out)
    scored_ids = dict(zip(scored.review_id, scored.score, strict=True))
    error_ids = dict(zip(errors.review_id, errors.stage, strict=True))
    assert not set(scored_ids) & set(error_ids), "a record was both scored and reported"
    report = summary(out)
    assert report["records_read"] == report["records_scored"] + report["records_failed"]
    assert report["records_scored"] == len(scored) and report["records_failed"] == len(errors)
    return scored_ids, error_ids


def test_bad_review_files_each_scored_or_reported(tiny_bundle, tmp_path):
    root = tmp_path / "in"
    deep = root.joinpath(*[f"d{i}" for i in range(40)])
    deep.mkdir(parents=True)
    files = {
        "empty.txt": b"",
        "whitespace.txt": b" \t\r\n  \n",
        "html_only.txt": b"<br /><br /><p></p><i></i>",
        "punctuation_only.txt": b"!!! ... ???",
        "invalid_utf8.txt": b"great \xff\xfe film \xc3",
        "binary.txt": b"\x00\x01\x02 wonderful \x00",
        "bom.txt": b"\xef\xbb\xbfwonderful film",
        "crlf.txt": b"wonderful\r\nfilm\r\nsuperb\r\n",
        "unicode.txt": "superb 🎬🍿 映画 فيلم רע e\u0301 zero\u200bwidth \u202eevil".encode(),
        "unknown_words_only.txt": b"zzqx blorf wibbly",
        "huge.txt": (b"a dull film " * 900_000) + b"wonderful superb",  # 10.8 MB
        "notes.csv": b"not,a,review",
        "README": b"not a review either",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (deep / "deep.txt").write_text(WORDS, encoding="utf-8")
    out = tmp_path / "out"
    result = score(root, "--output", out, "--model", tiny_bundle.path)
    assert result.exit_code == 0, result.output

    scored, errors = outcome(out)
    deep_id = "/".join(f"d{i}" for i in range(40)) + "/deep.txt"
    assert set(scored) == {"bom.txt", "crlf.txt", "unicode.txt", "unknown_words_only.txt", "huge.txt", deep_id}
    assert errors == {
        "empty.txt": "preprocess",
        "whitespace.txt": "preprocess",
        "html_only.txt": "preprocess",
        "punctuation_only.txt": "preprocess",
        "invalid_utf8.txt": "decode",
        "binary.txt": "decode",
    }
    assert summary(out)["records_read"] == 12  # notes.csv and README are not reviews and not counted
    huge = scored_frame(out).set_index("review_id").loc["huge.txt"]
    assert len(huge.text) == len(files["huge.txt"])  # passes through whole; only the encoding is truncated


def test_parquet_null_text_and_empty_files(tiny_bundle, tmp_path):
    pq.write_table(pa.table({"review_id": ["a", "b", "c"], "text": [WORDS, None, ""]}), tmp_path / "nulls.parquet")
    empty = pa.table({"review_id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    pq.write_table(empty, tmp_path / "empty.parquet")
    out = tmp_path / "out"
    result = score(tmp_path / "nulls.parquet", tmp_path / "empty.parquet", "--output", out, "--model", tiny_bundle.path)
    assert result.exit_code == 0, result.output
    scored, errors = outcome(out)
    assert set(scored) == {"a"} and errors == {"b": "read", "c": "preprocess"}


def test_parquet_corrupt_mid_file_reports_every_lost_row(tiny_bundle, tmp_path):
    path = tmp_path / "corrupt.parquet"
    table = pa.table({"text": [f"{WORDS} number {i} " * 20 for i in range(200)]})
    pq.write_table(table, path, row_group_size=100, compression="snappy")
    metadata = pq.ParquetFile(path).metadata
    second = metadata.row_group(1).column(0)
    start = second.dictionary_page_offset or second.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + 20 : start + 200] = os.urandom(180)  # damage the second row group, keep the footer
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = score(path, "--output", out, "--model", tiny_bundle.path)
    assert result.exit_code == 0, result.output
    scored, errors = outcome(out)
    assert len(scored) + len(errors) == 200
    assert set(errors) == {f"corrupt.parquet:{i}" for i in range(200 - len(errors), 200)}
    assert set(errors.values()) == {"read"} and len(errors) >= 100


CONFIG_FAULTS = {
    "int_text": ("text column 'text' has type int64, not string", "int_text.parquet"),
    "truncated": ("is not a readable Parquet file", "truncated.parquet"),
    "no_match": ("matches no file", "nothing-*.parquet"),
}


@pytest.mark.parametrize("fault", sorted(CONFIG_FAULTS))
def test_input_configuration_faults(tiny_bundle, tmp_path, fault):
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "int_text.parquet")
    pq.write_table(pa.table({"text": [WORDS] * 50}), tmp_path / "whole.parquet")
    (tmp_path / "truncated.parquet").write_bytes((tmp_path / "whole.parquet").read_bytes()[:-30])
    message, target = CONFIG_FAULTS[fault]
    out = tmp_path / "out"
    result = score(tmp_path / target, "--output", out, "--model", tiny_bundle.path)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_output_that_cannot_be_a_folder(tiny_bundle, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "in.txt").write_text(WORDS)
    result = score(tmp_path / "in.txt", "--output", tmp_path / "file" / "out", "--model", tiny_bundle.path)
    assert result.exit_code == 2 and "cannot create output folder" in result.output


def break_checksum(bundle: Path):
    (bundle / "vocab.json").write_text((bundle / "vocab.json").read_text().replace('"tokens": ["', '"tokens": ["x'))


def break_format(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "format_version": 7}))


def break_vocabulary_fit(bundle: Path):
    from pipeline.model.bundle import sha256_file

    vocab = json.loads((bundle / "vocab.json").read_text())
    (bundle / "vocab.json").write_text(json.dumps({**vocab, "tokens": vocab["tokens"][:-2]}))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["vocab.json"] = sha256_file(bundle / "vocab.json")
    (bundle / "manifest.json").write_text(json.dumps(manifest))


BUNDLE_FAULTS = {
    "missing_file": (lambda b: (b / "weights.bin").unlink(), "missing weights.bin"),
    "checksum": (break_checksum, "checksum mismatch for vocab.json"),
    "format_version": (break_format, "unknown bundle format version 7"),
    "vocabulary_fit": (break_vocabulary_fit, "does not belong to this model"),
}


@pytest.mark.parametrize("fault", sorted(BUNDLE_FAULTS))
def test_bundle_faults_exit_2_before_any_output(tiny_bundle, tmp_path, fault):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle.path, bundle)
    breaker, message = BUNDLE_FAULTS[fault]
    breaker(bundle)
    (tmp_path / "in.txt").write_text(WORDS)
    out = tmp_path / "out"
    result = score(tmp_path / "in.txt", "--output", out, "--model", bundle)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow
def test_rerun_gives_the_same_rows_and_scores(tiny_bundle, tmp_path):
    from tests.conftest import make_reviews

    texts = [t for t, _ in make_reviews(300, seed=11)]
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    runs = []
    for name in ("first", "second"):
        result = score(tmp_path / "in.parquet", "--output", tmp_path / name, "--model", tiny_bundle.path)
        assert result.exit_code == 0, result.output
        runs.append(scored_frame(tmp_path / name).sort_values("review_id").reset_index(drop=True))
    assert runs[0].drop(columns="score").equals(runs[1].drop(columns="score"))
    assert (runs[0].score - runs[1].score).abs().max() <= 1e-6


@pytest.mark.slow
def test_sigkill_mid_run_leaves_nothing_that_looks_finished(tiny_bundle, tmp_path):
    from tests.conftest import make_reviews

    texts = [t * 4 for t, _ in make_reviews(20_000, seed=5)] * 5  # enough to still be running after 1 s
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline", "score", str(tmp_path / "in.parquet"), "--output", str(out),
               "--model", str(tiny_bundle.path)]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while not (out / "_staging").exists() and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.1)
    time.sleep(1.0)
    assert job.poll() is None, "the job finished before it could be interrupted; give it more input"
    job.send_signal(signal.SIGKILL)
    job.wait()
    left = sorted(p.name for p in out.iterdir())
    assert not [name for name in left if name.endswith(".parquet") or name in (SUMMARY_FILE, REPORT_FILE)], left

    result = score(tmp_path / "in.parquet", "--output", out, "--model", tiny_bundle.path, "--overwrite")
    assert result.exit_code == 0, result.output
    scored, errors = outcome(out)
    assert len(scored) == 100_000 and not errors
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".parquet")) == [SUMMARY_FILE, REPORT_FILE]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    texts=st.lists(st.one_of(st.none(), st.text(max_size=200)), min_size=1, max_size=6),
)
@pytest.mark.slow
def test_arbitrary_bytes_and_strings_never_break_the_job(tiny_bundle, tmp_path_factory, files, texts):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "in").mkdir()
    for i, data in enumerate(files):
        (root / "in" / f"{i}.txt").write_bytes(data)
    texts = [t.encode("utf-8", "replace").decode("utf-8") if t is not None else None for t in texts]
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), root / "in" / "rows.parquet")
    result = score(root / "in", "--output", root / "out", "--model", tiny_bundle.path)
    assert result.exit_code == 0, result.output
    scored, errors = outcome(root / "out")
    assert len(scored) + len(errors) == len(files) + len(texts) == summary(root / "out")["records_read"]


def descendants(pid: int) -> list[int]:
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    found = [int(c) for c in children]
    return found + [d for c in found for d in descendants(c)]


def is_worker(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return "python" in Path(argv[0].decode()).name and b"apache_beam.runners.worker.sdk_worker_main" in argv


@pytest.mark.slow
def test_dead_worker_process_fails_the_job_instead_of_hanging(tiny_bundle, tmp_path):
    from tests.conftest import make_reviews

    pq.write_table(pa.table({"text": [t * 4 for t, _ in make_reviews(60_000, seed=9)]}), tmp_path / "in.parquet")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline", "score", str(tmp_path / "in.parquet"), "--output", str(out),
               "--model", str(tiny_bundle.path), "--", "--direct_num_workers", "2",
               "--direct_running_mode", "multi_processing"]  # fmt: skip
    log = tmp_path / "job.log"  # not a pipe: surviving workers inherit it and would hold it open
    job = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and job.poll() is None:
        workers = [p for p in descendants(job.pid) if is_worker(p)]
        if len(workers) == 2:
            break
        time.sleep(0.2)
    time.sleep(2)
    assert job.poll() is None and workers, "the job ended before a worker could be killed"
    os.kill(workers[0], signal.SIGKILL)
    job.wait(timeout=120)
    stderr = log.read_text()
    assert job.returncode == 1
    assert "a Beam worker process died" in stderr and "--overwrite" in stderr
    assert not [p.name for p in out.iterdir() if p.name.endswith(".parquet") or p.name == SUMMARY_FILE]
