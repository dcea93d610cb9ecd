"""One dataset from its archive to Parquet files in a folder: check the folder, fetch, convert, write.

The files appear all at once or not at all: each table is written under a temporary name and renamed
into place only after every table of the dataset converted and wrote, so a failure (a corrupt
archive, a full disk, Ctrl-C) never leaves a half-written Parquet file that training would read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.public_data.dataset import PublicDataError, PublicDataset
from training.public_data.download import Archive, DownloadProgress, fetch_archive
from training.public_data.imdb import IMDB
from training.public_data.sst import SST5

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DATASETS", "DOWNLOADS", "Prepared", "prepare"]

DATASETS: dict[str, PublicDataset] = {dataset.name: dataset for dataset in (IMDB, SST5)}
DOWNLOADS = ".download"
"""The download cache inside the output folder: the archive (or its .part while downloading)."""


@dataclass(frozen=True)
class Prepared:
    archive: Archive
    rows: dict[Path, int]
    """Each file written and its row count, in the dataset's order."""


def prepare(
    dataset: PublicDataset,
    out: Path,
    source: str | None = None,
    sha256: str | None = None,
    overwrite: bool = False,
    progress: DownloadProgress | None = None,
    status: Callable[[str], None] | None = None,
) -> Prepared:
    """Fetch `dataset`'s archive (the official one, or `source` checked against `sha256`, by default the
    official checksum) and write its Parquet files into `out`; files already there need `overwrite`.

    `progress` follows the download; `status` hears the step that follows it (the conversion takes a while).
    """
    _check_output(dataset, out, overwrite)
    archive = fetch_archive(source or dataset.url, out / DOWNLOADS, dataset.archive, sha256 or dataset.sha256, progress)
    if status:
        status(f"{archive.origin}: checksum verified; converting to Parquet")
    tables = dataset.convert(archive.path)
    return Prepared(archive, _write_all(out, tables))


def _check_output(dataset: PublicDataset, out: Path, overwrite: bool) -> None:
    """Fail before any download: the folder must be one, and must not already hold this dataset."""
    if out.exists() and not out.is_dir():
        raise PublicDataError(f"{out} exists and is not a folder")
    present = [name for name in dataset.outputs if (out / name).exists()]
    if present and not overwrite:
        raise PublicDataError(f"{out} already holds {', '.join(present)}: pass --overwrite to replace them")


def _write_all(out: Path, tables: dict[str, pa.Table]) -> dict[Path, int]:
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    staged: dict[Path, Path] = {}
    try:
        for name, table in tables.items():
            staged[out / name] = out / f".{name}.partial"
            pq.write_table(table, staged[out / name])
        for final, temporary in staged.items():
            os.replace(temporary, final)
    except OSError as e:
        raise PublicDataError(f"cannot write the Parquet files into {out}: {e}") from None
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    return {out / name: table.num_rows for name, table in tables.items()}
