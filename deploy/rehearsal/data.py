"""The rehearsal's input: `count` scorable reviews with bad records mixed in, and what the job must make of them.

The reviews are real text from `--reviews PARQUET` (its `text` column, cycled if it holds fewer)
or deterministic synthetic ones, so that a fresh machine needs no data. They are written as a job
finds them in a bucket: Parquet parts with several row groups each, and a folder of `*.txt` review
files, all under one input folder. The bad records are the kinds pipeline/job/sources.py and
pipeline/job/graph.py account for record by record, each a known number of times:

- read: null texts; the rows of a Parquet row group whose page header is broken (the file's footer
  is intact, so the launch accepts it, and the workers fail that group's rows one by one);
- decode: a binary review file (NUL bytes) and one that is not UTF-8;
- preprocess: empty, whitespace-only, markup-only and punctuation-only texts, in Parquet and files.

Rows with a null review_id (scored, with FILE:ROW ids) and a file with a byte-order mark are mixed
in too. A wrong-typed text column is a configuration error in sources.py (the whole launch is
refused, exit code 2), so that file is kept apart (`Inputs.wrong_typed`) for a launch of its own.
Nothing here is committed: the files are written under the rehearsal's work folder.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_PARTS = 6
ROW_GROUP_ROWS = 5_000
CORRUPT_FILE = "corrupt.parquet"
CORRUPT_ROWS = 2_000
CORRUPT_GROUP_ROWS = 500
CORRUPT_GROUP = 1
TEXT_FILES = 100
NULL_TEXTS = 40
NULL_IDS = 30
UNSCORABLE = {"empty": "", "whitespace": "  \n\t ", "markup": "<br /><br /><p></p>", "punctuation": "!!! ... ?? --"}
UNSCORABLE_EACH = 20
BAD_FILES = {
    "binary.txt": (b"\x00\x01\x02PK\x03\x04" + bytes(range(256)) * 4, "decode"),
    "latin1.txt": ("Un film très réussi, vraiment génial.".encode("latin-1"), "decode"),
    "empty.txt": (b"", "preprocess"),
    "markup.txt": (b"<br /><br /><p></p>", "preprocess"),
}
POSITIVE = ("wonderful", "brilliant", "moving", "superb", "delightful", "charming", "great", "loved", "excellent")
NEGATIVE = ("dreadful", "boring", "awful", "terrible", "dull", "tedious", "bad", "hated", "waste")
FILLER = (
    "the", "film", "plot", "actor", "scene", "story", "ending", "camera", "music", "it", "was", "and", "this",
    "movie", "director", "cast", "a", "of", "with", "script", "but", "in", "its", "an", "for", "every",
)  # fmt: skip


@dataclass(frozen=True)
class Inputs:
    folder: Path
    """The input folder: Parquet parts, the damaged Parquet file and txt/."""
    wrong_typed: Path
    """A Parquet file whose text column is int64: a launch that includes it must be refused."""
    records: int
    """Records the inputs hold: Parquet rows (footers) plus review files."""
    failures: dict[str, int]
    """The failed records each stage must report (the run summary's failed_by_stage)."""

    @property
    def scored(self) -> int:
        return self.records - sum(self.failures.values())


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """Reviews whose sentiment a few words carry among filler words, 10 to 160 words long."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(10, 160))]
        for _ in range(rng.randint(1, 4)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if i % 2 else NEGATIVE))
        texts.append(" ".join(words).capitalize() + rng.choice([".", ". <br /><br />Really!", "! Honestly.", "."]))
    return texts


def real_texts(path: Path, n: int) -> list[str]:
    """The `text` column of a Parquet file, reviews with at least three words, cycled to `n`."""
    column = pq.read_table(path, columns=["text"]).column("text").to_pylist()
    texts = [t for t in column if t and len(re.findall(r"\w+", t)) >= 3]
    if not texts:
        raise ValueError(f"{path} holds no review text in its 'text' column")
    return [texts[i % len(texts)] for i in range(n)]


def write_inputs(folder: Path, count: int, reviews: Path | None = None, seed: int = 0) -> Inputs:
    """Write the input folder with `count` scorable reviews and the bad records; returns what it holds."""
    good_files = TEXT_FILES - len(BAD_FILES)
    parquet_good = count - (CORRUPT_ROWS - CORRUPT_GROUP_ROWS) - good_files
    if parquet_good < NULL_IDS + PARQUET_PARTS:
        raise ValueError(f"--count must be at least {CORRUPT_ROWS + TEXT_FILES + NULL_IDS + PARQUET_PARTS}")
    texts = real_texts(reviews, count + CORRUPT_GROUP_ROWS) if reviews else synthetic_texts(count + CORRUPT_GROUP_ROWS)
    folder.mkdir(parents=True, exist_ok=True)
    rows = _parquet_rows(texts[:parquet_good], random.Random(seed))
    _write_parts(folder, rows)
    _write_corrupt(folder / CORRUPT_FILE, texts[parquet_good : parquet_good + CORRUPT_ROWS])
    _write_text_files(folder / "txt", texts[parquet_good + CORRUPT_ROWS :])
    wrong_typed = folder.parent / "refused" / "wrong-typed.parquet"
    wrong_typed.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"review_id": ["w0", "w1"], "text": pa.array([1, 2], pa.int64())}), wrong_typed)
    failures = {
        "read": NULL_TEXTS + CORRUPT_GROUP_ROWS,
        "decode": sum(1 for _, stage in BAD_FILES.values() if stage == "decode"),
        "preprocess": len(UNSCORABLE) * UNSCORABLE_EACH
        + sum(1 for _, stage in BAD_FILES.values() if stage == "preprocess"),
    }
    return Inputs(folder, wrong_typed, len(rows) + CORRUPT_ROWS + TEXT_FILES, failures)


def _parquet_rows(texts: list[str], rng: random.Random) -> list[tuple[str | None, str | None]]:
    """(review_id, text) rows: the good reviews, some with a null id, and the bad rows at random places."""
    rows: list[tuple[str | None, str | None]] = [(f"r{i:07d}", text) for i, text in enumerate(texts)]
    for i in rng.sample(range(len(rows)), NULL_IDS):
        rows[i] = (None, rows[i][1])
    bad = [(f"null-{k}", None) for k in range(NULL_TEXTS)]
    bad += [(f"{kind}-{k}", text) for kind, text in UNSCORABLE.items() for k in range(UNSCORABLE_EACH)]
    for row in bad:
        rows.insert(rng.randrange(len(rows) + 1), row)
    return rows


def _write_parts(folder: Path, rows: list[tuple[str | None, str | None]]) -> None:
    size = -(-len(rows) // PARQUET_PARTS)
    for part in range(PARQUET_PARTS):
        chunk = rows[part * size : (part + 1) * size]
        table = pa.table(
            {"review_id": pa.array([r[0] for r in chunk], pa.string()), "text": pa.array([r[1] for r in chunk])}
        )
        pq.write_table(table, folder / f"part-{part:05d}.parquet", row_group_size=ROW_GROUP_ROWS)


def _write_corrupt(path: Path, texts: list[str]) -> None:
    """A Parquet file whose footer reads, with the page header of one row group's text column broken."""
    table = pa.table({"review_id": [f"k{i:05d}" for i in range(len(texts))], "text": texts})
    pq.write_table(table, path, row_group_size=CORRUPT_GROUP_ROWS)
    chunk = pq.ParquetFile(path).metadata.row_group(CORRUPT_GROUP).column(1)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    damaged = pq.ParquetFile(path)
    for group in range(damaged.metadata.num_row_groups):
        try:
            damaged.read_row_group(group)
            readable = True
        except OSError:
            readable = False
        if readable == (group == CORRUPT_GROUP):
            raise RuntimeError(f"{path}: row group {group} should {'not ' if readable else ''}be readable")


def _write_text_files(folder: Path, texts: list[str]) -> None:
    """One review per file; the first carries a byte-order mark (read as UTF-8, the mark dropped)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        data = text.encode("utf-8-sig" if i == 0 else "utf-8")
        (folder / f"{i:04d}.txt").write_bytes(data)
    for name, (data, _) in BAD_FILES.items():
        (folder / name).write_bytes(data)
