"""Public sentiment datasets (IMDB, SST-5) from their official archives to the Parquet files training reads.

`reviewscore data NAME --to DIR` runs `prepare`: a checksum-verified, resumable download
(`download.py`, standard library only, so the lean scoring install can run it), a conversion per
dataset (`imdb.py`, `sst.py`, each a `PublicDataset`) and all-or-nothing Parquet writes.
"""

from training.public_data.dataset import PublicDataError, PublicDataset
from training.public_data.download import Archive, fetch_archive, sha256_of
from training.public_data.prepare import DATASETS, DOWNLOADS, Prepared, prepare

__all__ = [
    "DATASETS",
    "DOWNLOADS",
    "Archive",
    "Prepared",
    "PublicDataError",
    "PublicDataset",
    "fetch_archive",
    "prepare",
    "sha256_of",
]
