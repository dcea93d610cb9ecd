"""`reviewscore data`: small archives in the real IMDB and SST layouts, served from a loopback HTTP
server (with and without Range support, with responses that break off), through the real CLI."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import tarfile
import threading
import zipfile
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import pipeline.model.progress
from pipeline.cli.app import app
from tests.test_progress import Lines
from training.datasets import load_labelled, load_texts
from training.public_data import DATASETS, DOWNLOADS
from training.public_data.sst import parse_tree

runner = CliRunner()

# (folder, review ID, rating, movie) for the labelled folders; IDs past 9 check the numeric order.
LABELLED = {
    "train/neg": [(i, 1 + i % 4, f"tt{100 + i // 3:07d}") for i in range(12)],
    "train/pos": [(i, 7 + i % 4, f"tt{200 + i // 3:07d}") for i in range(11)],
    "test/neg": [(i, 2, f"tt{300 + i:07d}") for i in range(3)],
    "test/pos": [(i, 10, f"tt{400 + i:07d}") for i in range(4)],
}
UNSUP_MOVIES = ["tt0000501", "tt0000501", "tt0000502"]
IMDB_COLUMNS = ["review_id", "movie_id", "split", "rating", "label", "text"]


def review_text(folder: str, number: int) -> str:
    return f"Review {number} of {folder}: it was fine.<br /><br />Really, caf\u00e9 and all."


def tar_member(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def imdb_archive(skip: str | None = None) -> bytes:
    """aclImdb_v1.tar.gz's layout in miniature: ID_RATING.txt files and urls_*.txt, plus files to ignore.
    The same bytes on every call (gzip's header time fixed), so a test may build it twice."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar_member(tar, "aclImdb/README", "the dataset's readme")
        tar_member(tar, "aclImdb/imdb.vocab", "the\nfilm\n")
        for folder, reviews in LABELLED.items():
            if folder == skip:
                continue
            split, kind = folder.split("/")
            for number, rating, _ in reviews:
                tar_member(tar, f"aclImdb/{folder}/{number}_{rating}.txt", review_text(folder, number))
            urls = "".join(f"http://www.imdb.com/title/{movie}/usercomments\n" for _, _, movie in reviews)
            tar_member(tar, f"aclImdb/{split}/urls_{kind}.txt", urls)
        for number in range(len(UNSUP_MOVIES)):
            tar_member(tar, f"aclImdb/train/unsup/{number}_0.txt", review_text("train/unsup", number))
        urls = "".join(f"http://www.imdb.com/title/{movie}/usercomments\n" for movie in UNSUP_MOVIES)
        tar_member(tar, "aclImdb/train/urls_unsup.txt", urls)
    return gzip.compress(buffer.getvalue(), mtime=0)


TREES = {
    "train": [
        "(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 great)) (2 film))) (2 .)))",
        "(1 (2 (2 The) (2 -LRB-) (2 film)) (1 (2 does) (1 (1 (1 n't) (2 work)) (2 .))))",
    ],
    "dev": ["(0 (0 Awful) (2 .))"],
    "test": ["(4 (2 A) (4 (4 triumph) (2 !)))", "(2 (2 It) (2 exists))"],
}


def sst_archive(splits: tuple[str, ...] = ("train", "dev", "test")) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for split in splits:
            member = zipfile.ZipInfo(f"trees/{split}.txt", date_time=(2020, 1, 1, 0, 0, 0))  # same bytes each call
            zipped.writestr(member, "\n".join(TREES[split]) + "\n", compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves `files`; honours `Range: bytes=N-` only when `ranges`; the first `break_first` GETs (True: one)
    send half their body and close the connection. Every request's Range header and status is logged."""

    def __init__(self, *args, server_state: dict, **kwargs):
        self.state = server_state
        super().__init__(*args, **kwargs)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        data = self.state["files"].get(self.path)
        asked = self.headers.get("Range")
        if data is None:
            self.state["requests"].append((asked, 404))
            self.send_error(404)
            return
        start = int(asked.removeprefix("bytes=").rstrip("-")) if asked and self.state["ranges"] else 0
        status = 206 if start else 200
        self.state["requests"].append((asked, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        body = data[start:]
        if len(self.state["requests"]) <= self.state["break_first"]:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def serve():
    """serve(files, ranges=..., break_first=...) -> (base URL, request log); the servers stop after the test."""
    servers = []

    def start(files: dict[str, bytes], ranges: bool = True, break_first: int = 0):
        state = {"files": files, "ranges": ranges, "break_first": break_first, "requests": []}
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, server_state=state))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", state["requests"]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def progress_lines(monkeypatch):
    """The plain progress lines (the test's stderr is no terminal), one per update: no interval."""
    monkeypatch.setattr(pipeline.model.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    handler = Lines()
    logger = logging.getLogger("reviewscore")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def run_data(*args: str):
    return runner.invoke(app, ["data", *args])


def error_line(result) -> str:
    """The command's failure: exit code 2 and one line, the last, never a traceback (status lines may precede it)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.output
    return lines[-1]


def parquet_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".parquet" in p.name)


def test_imdb_download_resumes_a_broken_response_with_a_range_request(tmp_path, serve, progress_lines):
    archive = imdb_archive()
    url, requests = serve({"/aclImdb_v1.tar.gz": archive}, ranges=True, break_first=True)
    out = tmp_path / "imdb"
    result = run_data("imdb", "--to", str(out), "--source", f"{url}/aclImdb_v1.tar.gz", "--sha256", sha256(archive))
    assert result.exit_code == 0, result.output
    half = (len(archive)) // 2
    assert requests == [(None, 200), (f"bytes={half}-", 206)]
    name = "downloading aclImdb_v1.tar.gz: "
    assert all(line.startswith(name) for line in progress_lines) and len(progress_lines) >= 2
    assert f"of {len(archive) / 1e6:.1f} MB (" in progress_lines[0] and "MB/s" in progress_lines[0]
    assert "(100 %)" in progress_lines[-1] and "done in" in progress_lines[-1]  # the closing line
    assert (out / DOWNLOADS / "aclImdb_v1.tar.gz").read_bytes() == archive
    assert not (out / DOWNLOADS / "aclImdb_v1.tar.gz.part").exists()
    assert parquet_files(out) == ["test.parquet", "train.parquet", "unsup.parquet"]
    for name in ("train.parquet", "test.parquet", "unsup.parquet"):
        assert f"wrote {(out / name).resolve().as_uri()}" in result.output

    train = pq.read_table(out / "train.parquet")
    assert train.column_names == IMDB_COLUMNS
    assert [train.schema.field(c).type for c in ("rating", "label")] == [pa.int8(), pa.int8()]
    expected = [(f, n, r, m) for f in ("train/neg", "train/pos") for n, r, m in LABELLED[f]]
    assert train.column("review_id").to_pylist() == [f"{f}/{n}" for f, n, _, _ in expected]
    assert train.column("movie_id").to_pylist() == [m for _, _, _, m in expected]
    assert train.column("rating").to_pylist() == [r for _, _, r, _ in expected]
    assert train.column("label").to_pylist() == [0] * 12 + [1] * 11
    assert set(train.column("split").to_pylist()) == {"train"}
    assert train.column("text").to_pylist() == [review_text(f, n) for f, n, _, _ in expected]

    test = pq.read_table(out / "test.parquet")
    assert test.column("review_id").to_pylist() == [f"test/neg/{i}" for i in range(3)] + [
        f"test/pos/{i}" for i in range(4)
    ]
    assert test.column("label").to_pylist() == [0, 0, 0, 1, 1, 1, 1] and set(test.column("split").to_pylist()) == {
        "test"
    }
    unsup = pq.read_table(out / "unsup.parquet")
    assert unsup.column("movie_id").to_pylist() == UNSUP_MOVIES
    assert unsup.column("split").to_pylist() == ["unsup"] * 3
    assert unsup.column("rating").null_count == 3 and unsup.column("label").null_count == 3


def test_converted_parquet_and_the_aclimdb_folder_reader_agree(tmp_path):
    """Training reads the same reviews, labels and movies from train.parquet as from the unpacked folders."""
    (tmp_path / "aclImdb_v1.tar.gz").write_bytes(imdb_archive())
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    archive = str(tmp_path / "aclImdb_v1.tar.gz")
    result = run_data("imdb", "--to", str(tmp_path / "out"), "--source", archive, "--sha256", sha256(imdb_archive()))
    assert result.exit_code == 0, result.output
    folder = load_labelled(tmp_path / "unpacked" / "aclImdb", group_column="movie_id")
    converted = load_labelled(tmp_path / "out" / "train.parquet", group_column="movie_id")

    def rows(data):
        return sorted(zip(data.texts.to_pylist(), data.labels.tolist(), data.groups.tolist(), strict=True))

    assert len(converted) == 23 and rows(converted) == rows(folder)
    unsup_folder = load_texts(tmp_path / "unpacked" / "aclImdb").to_pylist()
    assert load_texts(tmp_path / "out" / "unsup.parquet").to_pylist() == unsup_folder


def test_sst5_download_restarts_when_the_server_ignores_ranges(tmp_path, serve):
    archive = sst_archive()
    url, requests = serve({"/trees.zip": archive}, ranges=False, break_first=True)
    out = tmp_path / "sst5"
    result = run_data("sst5", "--to", str(out), "--source", f"{url}/trees.zip", "--sha256", sha256(archive).upper())
    assert result.exit_code == 0, result.output
    assert requests == [(None, 200), (f"bytes={len(archive) // 2}-", 200)]  # asked to resume, got it all again
    assert (out / DOWNLOADS / "trainDevTestTrees_PTB.zip").read_bytes() == archive
    assert parquet_files(out) == sorted(DATASETS["sst5"].outputs)

    def rows(name: str) -> list[tuple[str, int]]:
        table = pq.read_table(out / name)
        assert table.column_names == ["text", "label"]
        return list(zip(table.column("text").to_pylist(), table.column("label").to_pylist(), strict=True))

    assert rows("sst5_train.parquet") == [("It 's a great film .", 3), ("The -LRB- film does n't work .", 1)]
    assert rows("sst5_dev.parquet") == [("Awful .", 0)]
    assert rows("sst5_test.parquet") == [("A triumph !", 4), ("It exists", 2)]
    phrases = rows("sst5_phrases.parquet")
    assert phrases[:3] == [("It 's a great film .", 3), ("It", 2), ("'s a great film .", 4)]
    texts = [text for text, _ in phrases]
    assert len(texts) == len(set(texts))  # "film" and "." occur in both training trees, listed once
    assert {"film", ".", "n't work", "The -LRB- film"} <= set(texts)
    assert not {"Awful", "triumph", "exists"} & set(texts)  # training trees only


def test_a_part_left_by_an_earlier_run_is_resumed(tmp_path, serve):
    archive = sst_archive()
    url, requests = serve({"/trees.zip": archive}, ranges=True)
    (tmp_path / "sst5" / DOWNLOADS).mkdir(parents=True)
    (tmp_path / "sst5" / DOWNLOADS / "trainDevTestTrees_PTB.zip.part").write_bytes(archive[:100])
    result = run_data(
        "sst5", "--to", str(tmp_path / "sst5"), "--source", f"{url}/trees.zip", "--sha256", sha256(archive)
    )
    assert result.exit_code == 0, result.output
    assert requests == [("bytes=100-", 206)]


def test_existing_output_needs_overwrite_and_reuses_the_cached_archive(tmp_path, serve):
    archive = sst_archive()
    url, requests = serve({"/trees.zip": archive})
    args = ["sst5", "--to", str(tmp_path / "sst5"), "--source", f"{url}/trees.zip", "--sha256", sha256(archive)]
    assert run_data(*args).exit_code == 0
    line = error_line(run_data(*args))
    assert "already holds sst5_train.parquet" in line and "--overwrite" in line
    result = run_data(*args, "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(requests) == 1  # the verified archive in the cache served the second conversion


def test_checksum_mismatch_is_one_line_and_leaves_nothing_to_resume(tmp_path, serve):
    archive = imdb_archive()
    url, _ = serve({"/a.tar.gz": archive})
    out = tmp_path / "imdb"
    result = run_data("imdb", "--to", str(out), "--source", f"{url}/a.tar.gz", "--sha256", "0" * 64)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "checksum mismatch" in errors[0] and sha256(archive) in errors[0]
    assert not out.exists()  # nothing to resume from, not even the empty folders the download made
    # a local copy without --sha256 is checked against the official archive's checksum
    (tmp_path / "copy.tar.gz").write_bytes(archive)
    line = error_line(run_data("imdb", "--to", str(out), "--source", str(tmp_path / "copy.tar.gz")))
    assert "checksum mismatch" in line and DATASETS["imdb"].sha256 in line


def test_local_archive_by_path_and_file_url(tmp_path):
    archive = sst_archive()
    (tmp_path / "trees.zip").write_bytes(archive)
    for source, out in ((str(tmp_path / "trees.zip"), "a"), ((tmp_path / "trees.zip").as_uri(), "b")):
        result = run_data("sst5", "--to", str(tmp_path / out), "--source", source, "--sha256", sha256(archive))
        assert result.exit_code == 0, result.output
        assert pq.read_table(tmp_path / out / "sst5_dev.parquet").num_rows == 1
        assert not (tmp_path / out / DOWNLOADS).exists()  # read where it is, never copied


@pytest.mark.parametrize(
    ("dataset", "content", "message"),
    [
        ("imdb", b"this is no archive", "is not a readable tar archive"),
        ("imdb", imdb_archive()[: len(imdb_archive()) * 2 // 3], "is not a readable tar archive"),
        ("imdb", imdb_archive(skip="test/pos"), "has no reviews in aclImdb/test/pos/"),
        ("sst5", imdb_archive(), "is not a readable zip archive"),
        ("sst5", sst_archive(("train", "test")), "has no trees/dev.txt"),
    ],
    ids=["not-an-archive", "truncated", "missing-folder", "tar-for-zip", "missing-member"],
)
def test_a_wrong_or_corrupt_archive_is_one_line_and_writes_no_parquet(tmp_path, dataset, content, message):
    (tmp_path / "archive").write_bytes(content)
    out = tmp_path / "out"
    result = run_data(dataset, "--to", str(out), "--source", str(tmp_path / "archive"), "--sha256", sha256(content))
    assert message in error_line(result)
    assert not out.exists() or parquet_files(out) == []


def test_malformed_tree_names_its_line(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for split in ("train", "dev", "test"):
            zipped.writestr(
                f"trees/{split}.txt", "(2 (2 Fine) (2 .))\n(2 (2 Broken)\n" if split == "dev" else "(2 a)\n"
            )
    (tmp_path / "trees.zip").write_bytes(buffer.getvalue())
    args = ["--source", str(tmp_path / "trees.zip"), "--sha256", sha256(buffer.getvalue())]
    line = error_line(run_data("sst5", "--to", str(tmp_path / "out"), *args))
    assert "trees/dev.txt line 2 is not a sentiment tree: unbalanced brackets" in line


def test_unreachable_or_missing_sources_are_one_line(tmp_path, serve):
    url, _ = serve({})
    line = error_line(run_data("imdb", "--to", str(tmp_path / "o"), "--source", f"{url}/gone.tar.gz"))
    assert "HTTP 404" in line
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    line = error_line(run_data("imdb", "--to", str(tmp_path / "o"), "--source", f"http://127.0.0.1:{port}/a.tar.gz"))
    assert line.startswith("error: cannot reach http://127.0.0.1")
    # what to do instead: the archive by name and checksum, and the option that takes it
    assert DATASETS["imdb"].archive in line and DATASETS["imdb"].sha256 in line and "--source PATH_OR_URL" in line
    assert not (tmp_path / "o").exists()  # no empty download folder left behind
    assert "no such file" in error_line(run_data("imdb", "--to", str(tmp_path / "o"), "--source", "nowhere.tar.gz"))
    ftp = run_data("imdb", "--to", str(tmp_path / "o"), "--source", "ftp://example.org/a.tar.gz")
    assert "use an http://" in error_line(ftp)
    assert "64 hexadecimal digits" in error_line(run_data("imdb", "--to", str(tmp_path / "o"), "--sha256", "abc"))


def test_a_download_that_keeps_breaking_off_keeps_its_bytes_and_the_next_call_resumes(tmp_path, serve):
    """Every response of the first call breaks off: exit 2 with one line (resume, or --source), the
    .part keeps the bytes received; the second call asks for the rest with a Range request and verifies."""
    from training.public_data.download import ATTEMPTS

    archive = sst_archive()
    url, requests = serve({"/trees.zip": archive}, ranges=True, break_first=ATTEMPTS)
    out = tmp_path / "sst5"
    args = ["sst5", "--to", str(out), "--source", f"{url}/trees.zip", "--sha256", sha256(archive)]
    line = error_line(run_data(*args))
    assert f"broke off {ATTEMPTS} times" in line and "again to resume" in line and "--source" in line
    part = out / DOWNLOADS / "trainDevTestTrees_PTB.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(archive) and part.read_bytes() == archive[:kept]
    assert parquet_files(out) == []

    result = run_data(*args)
    assert result.exit_code == 0, result.output
    assert requests[-1] == (f"bytes={kept}-", 206)
    assert (out / DOWNLOADS / "trainDevTestTrees_PTB.zip").read_bytes() == archive and not part.exists()
    assert parquet_files(out) == sorted(DATASETS["sst5"].outputs)


def test_parse_tree_lists_every_node_root_first():
    assert parse_tree("(3 (2 It) (4 (2 's) (4 good)))") == [
        ("It 's good", 3),
        ("It", 2),
        ("'s good", 4),
        ("'s", 2),
        ("good", 4),
    ]
    assert parse_tree("(2 2002)") == [("2002", 2)]  # a number as a word, after its label
    for bad, reason in (
        ("(2 (2 a)", "unbalanced"),
        ("(2 a))", "outside the tree"),
        ("(7 a)", "not a label"),
        ("(2 a) (2 b)", "more than one tree"),
        ("(2 (2 a) ())", "not a label"),
        ("(2 (3))", "without words"),
        ("", "unbalanced"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_tree(bad)
