"""`reviewscore data`: download a public dataset and convert it to the Parquet files training reads
(training/public_data does the work; this page parses, reports progress and prints the result)."""

from __future__ import annotations

import re
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.progress import Progress as Bar

from pipeline.cli.common import console, errors, fail, link
from training.public_data import DATASETS, DOWNLOADS, PublicDataError, prepare

# An Enum so --help lists the datasets; the catalogue imports no pyarrow.
DatasetName = StrEnum("DatasetName", [(name, name) for name in DATASETS])
DEFAULT_FOLDER = "data"
PLAIN_EVERY_S = 5.0
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class DownloadReport:
    """Download progress on stderr: a rich bar in a terminal; elsewhere (logs, CI) a plain line every
    few seconds, since a redrawn bar there is either invisible or a flood of lines."""

    def __init__(self, name: str):
        self.name = name
        self.bar: Bar | None = None
        self.task = None
        self.last_line = float("-inf")

    def __call__(self, done: int, total: int | None) -> None:
        if errors.is_terminal:
            if self.bar is None:
                columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
                self.bar = Bar(*columns, TimeRemainingColumn(), console=errors)
                self.bar.start()
                self.task = self.bar.add_task(f"downloading {self.name}", total=total)
            self.bar.update(self.task, completed=done, total=total)
        elif time.monotonic() - self.last_line >= PLAIN_EVERY_S or done == total:
            self.last_line = time.monotonic()
            of = f" of {total / 1e6:,.1f} MB ({done / total:.0%})" if total else " MB"
            errors.print(f"downloading {self.name}: {done / 1e6:,.1f}{of}", highlight=False)

    def status(self, line: str) -> None:
        """The step after the download, on a line of its own below the finished bar."""
        self.close()
        errors.print(line, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


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
        help="Where else to get the archive: an http(s):// URL (a mirror), or a file:// URL or local path of an "
        "archive already downloaded (default: the official address)."
    ),
]
Sha256 = Annotated[
    str | None,
    typer.Option(
        help="The archive's sha256, for a --source that is not the official archive "
        "(default: the official archive's published checksum)."
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
        fail(str(e))
    finally:
        report.close()
    for path, rows in prepared.rows.items():
        console.print(f"wrote {link(str(path))} ({rows:,} rows)", highlight=False, soft_wrap=True)
