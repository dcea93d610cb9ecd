"""IMDB's Large Movie Review Dataset (aclImdb_v1.tar.gz) as the Parquet files training reads.

The archive holds one file per review, `aclImdb/{train,test}/{pos,neg}/ID_RATING.txt` and
`aclImdb/train/unsup/ID_0.txt`, and per folder a `urls_{pos,neg,unsup}.txt` whose line ID is the IMDB
page of review ID's movie. The conversion keeps that movie's title id as `movie_id`, because a movie
has many reviews and validation must hold out whole movies (training/datasets.py, which reads the
unpacked folders the same way: labels 0 neg / 1 pos, the title id from the urls files). Rows are in
the dataset's own order, negative then positive reviews, each by review ID.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.output_names import LABEL, REVIEW_ID, TEXT
from training.public_data.dataset import PublicDataError, PublicDataset

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["IMDB", "convert_imdb"]

_REVIEW = re.compile(r"aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt")
_URLS = re.compile(r"aclImdb/(train|test)/urls_(pos|neg|unsup)\.txt")
LABELS = {"neg": 0, "pos": 1}
"""Label of each labelled folder: the class order of training/datasets.py and schemas.bundle."""
# (output file, split column value, the archive folders it holds in order)
_OUTPUTS = (
    ("train.parquet", "train", ("train/neg", "train/pos")),
    ("test.parquet", "test", ("test/neg", "test/pos")),
    ("unsup.parquet", "unsup", ("train/unsup",)),
)


@dataclass
class _Folder:
    """What the archive holds for one review folder: review ID -> (rating, text), and its urls file."""

    reviews: dict[int, tuple[int, str]]
    movies: list[str | None] | None = None


def convert_imdb(archive: Path) -> dict[str, pa.Table]:
    """train/test/unsup tables (review_id, movie_id, split, rating, label, text) from the archive."""
    folders = _read_archive(archive)
    return {name: _table(archive, folders, split, parts) for name, split, parts in _OUTPUTS}


def _read_archive(archive: Path) -> dict[str, _Folder]:
    """One pass over the tar: member order is not guaranteed, so everything is collected first."""
    from training.datasets import IMDB_TITLE_ID

    folders: dict[str, _Folder] = {}
    try:
        for name, content in _tar_files(archive):
            review, urls = _REVIEW.fullmatch(name), _URLS.fullmatch(name)
            if not (review or urls):
                continue
            text = content.decode("utf-8", errors="replace")
            split, kind = (review or urls).group(1, 2)
            folder = folders.setdefault(f"{split}/{kind}", _Folder({}))
            if review:
                folder.reviews[int(review.group(3))] = (int(review.group(4)), text)
            else:
                folder.movies = [_first_group(IMDB_TITLE_ID.search(line)) for line in text.splitlines()]
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise PublicDataError(f"{archive} is not a readable tar archive ({e}); is it {IMDB.archive}?") from None
    return folders


def _tar_files(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in a .tar.gz (or plain .tar), streamed.

    The gzip layer is Python's GzipFile rather than tarfile's own, and it is read to its end: a
    truncated archive then raises EOFError and a corrupt one a CRC error, where tarfile alone would
    take a cut-off stream for the end of the archive.
    """
    with archive.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    yield member.name.removeprefix("./"), tar.extractfile(member).read()
        while stream.read(1 << 20):
            pass


def _first_group(match: re.Match | None) -> str | None:
    return match.group(1) if match else None


def _table(archive: Path, folders: dict[str, _Folder], split: str, parts: tuple[str, ...]) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, list] = {REVIEW_ID: [], "movie_id": [], "split": [], "rating": [], LABEL: [], TEXT: []}
    for part in parts:
        folder = folders.get(part)
        if folder is None or not folder.reviews:
            raise PublicDataError(f"{archive} has no reviews in aclImdb/{part}/; is it {IMDB.archive}?")
        kind = part.rpartition("/")[2]
        if folder.movies is None:
            raise PublicDataError(f"{archive} has no aclImdb/{part.rpartition('/')[0]}/urls_{kind}.txt")
        for number in sorted(folder.reviews):
            if number >= len(folder.movies):
                raise PublicDataError(f"{archive}: urls_{kind}.txt of aclImdb/{part} has no line for review {number}")
            rating, text = folder.reviews[number]
            columns[REVIEW_ID].append(f"{part}/{number}")
            columns["movie_id"].append(folder.movies[number])
            columns["split"].append(split)
            columns["rating"].append(rating if kind in LABELS else None)
            columns[LABEL].append(LABELS.get(kind))
            columns[TEXT].append(text)
    return pa.table(columns, schema=_schema())


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            (REVIEW_ID, pa.string()),
            ("movie_id", pa.string()),
            ("split", pa.string()),
            ("rating", pa.int8()),
            (LABEL, pa.int8()),
            (TEXT, pa.string()),
        ]
    )


IMDB = PublicDataset(
    name="imdb",
    description="IMDB movie reviews, positive or negative (Maas et al. 2011): train, test and unlabelled",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    archive="aclImdb_v1.tar.gz",
    outputs=tuple(name for name, _, _ in _OUTPUTS),
    convert=convert_imdb,
)
