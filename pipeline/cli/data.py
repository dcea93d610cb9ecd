"""`reviewscore data`: download a public dataset and convert it to the Parquet files training reads
(training/public_data does the work; this page parses, reports progress and prints the result)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import console, errors, fail, link
from training.public_data import DATASETS, DOWNLOADS, PublicDataError, prepare

# An Enum so --help lists the datasets; the catalogue imports no pyarrow.
DatasetName = StrEnum("DatasetName", [(name, name) for name in DATASETS])
DEFAULT_FOLDER = "data"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class DownloadReport:
    """Download progress on stderr, as every long step shows it (pipeline/model/progress.py): a bar with the
    bytes of the total, rate and time left in a terminal; elsewhere (logs, CI) a plain line every few
    seconds, since a redrawn bar there is either invisible or a flood of lines."""

    def __init__(self, name: str):
        from pipeline.model.progress import BYTES, Display, Step

        self.step = Step(f"downloading {name}", BYTES)
        self.display = Display([self.step])

    def __call__(self, done: int, total: int | None) -> None:
        self.display.update(self.step.name, done, total)

    def status(self, line: str) -> None:
        """The step after the download, on a line of its own below the finished bar."""
        self.close()
        errors.print(line, highlight=False, soft_wrap=True)

    def close(self, finished: bool = True) -> None:
        self.display.close(finished)


Dataset = Annotated[
    DatasetName,
    typer.Argument(metavar="DATASET", help="; ".join(f"{d.name}: {d.description}" for d in DATASETS.values()) + "."),
]
To = Annotated[
    Path | None,
    typer.Option(
        help=f"Folder for the Parquet files, created if missing (default: {DEFAULT_FOLDER}/DATASET). The archive "
        f"is kept in its {DOWNLOADS}/ folder, so converting again needs no second download."
    ),
]
Source = Annotated[
    str | None,
    typer.Option(
        metavar="PATH_OR_URL",
        help="Where else to get the archive: an http(s):// URL (a mirror), or a file:// URL or local path of an "
        "archive already downloaded (default: the official address).",
    ),
]
Sha256 = Annotated[
    str | None,
    typer.Option(
        metavar="SHA256",
        help="The archive's sha256, for a --source that is not the official archive "
        "(default: the official archive's published checksum).",
    ),
]
Overwrite = Annotated[bool, typer.Option(help="Replace this dataset's files already in the folder.")]


def data(
    dataset: Dataset, to: To = None, source: Source = None, sha256: Sha256 = None, overwrite: Overwrite = False
) -> None:
    """Download a public dataset (checksum-verified, resumable) and write it as Parquet for training."""
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        fail(f"--sha256 must be 64 hexadecimal digits, not {sha256!r}")
    chosen = DATASETS[dataset.value]
    out = to if to is not None else Path(DEFAULT_FOLDER) / chosen.name
    report = DownloadReport(chosen.archive)
    try:
        prepared = prepare(chosen, out, source, sha256, overwrite, report, report.status)
    except PublicDataError as e:
        report.close(finished=False)
        fail(str(e))
    finally:
        report.close()
    for path, rows in prepared.rows.items():
        console.print(f"wrote {link(str(path))} ({rows:,} rows)", highlight=False, soft_wrap=True)
