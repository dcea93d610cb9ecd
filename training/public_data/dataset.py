"""What every public dataset states: where its archive lives, the checksum it must have, the files it
becomes and how.

One small frozen description per dataset (`imdb.py`, `sst.py`), read by the download, the output check
and the command's help, so an address, a checksum or a file name is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PublicDataError", "PublicDataset"]


class PublicDataError(ValueError):
    """A public dataset cannot be fetched or converted: the message is the whole story, on one line."""


@dataclass(frozen=True)
class PublicDataset:
    name: str
    """The command's argument: `reviewscore data NAME`."""
    description: str
    url: str
    """The official archive's public address."""
    sha256: str
    """The official archive's published checksum."""
    archive: str
    """The archive's file name in the download cache."""
    outputs: tuple[str, ...]
    """The Parquet files the conversion writes, in the order it lists them."""
    convert: Callable[[Path], dict[str, pa.Table]]
    """Archive -> one table per name in `outputs`; raises PublicDataError on a wrong or corrupt archive."""
