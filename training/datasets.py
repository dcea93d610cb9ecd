"""Labelled review datasets for training: the aclImdb directory layout, or Parquet with text and label.

Only the training part of aclImdb is ever read (`train/pos`, `train/neg`): the official test split
stays untouched so it can judge a model independently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.preprocessing import as_string_array
from schemas.bundle import BINARY_CLASS_NAMES


class DatasetError(ValueError):
    """The training data cannot be read as labelled reviews."""


@dataclass(frozen=True)
class LabelledReviews:
    texts: pa.Array
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """sha256 over every text and label in order: two bundles trained on the same data share it."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts.to_pylist(), self.labels.tolist(), strict=True):
            encoded = text.encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
            digest.update(bytes([label]))
        return "sha256:" + digest.hexdigest()

    def subset(self, indices: np.ndarray) -> LabelledReviews:
        return LabelledReviews(self.texts.take(pa.array(indices)), self.labels[indices], self.source)


def load_labelled(
    path: str | Path, text_column: str = "text", label_column: str = "label", split: str = "train"
) -> LabelledReviews:
    """Labelled reviews; given the aclImdb root folder, its `split` part (training reads "train")."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"labelled data {path} does not exist")
    if path.is_dir() and (path / split / "pos").is_dir():
        return _load_review_folders(path / split)
    if path.is_dir() and (path / "pos").is_dir():
        return _load_review_folders(path)
    return _load_parquet(path, text_column, label_column)


def _load_review_folders(root: Path) -> LabelledReviews:
    texts: list[str] = []
    labels: list[int] = []
    for label, folder in enumerate(("neg", "pos")):
        files = sorted((root / folder).glob("*.txt"))
        texts.extend(f.read_text(encoding="utf-8", errors="replace") for f in files)
        labels.extend([label] * len(files))
    if not labels:
        raise DatasetError(f"no *.txt reviews under {root}/neg or {root}/pos")
    return LabelledReviews(as_string_array(texts), np.asarray(labels, dtype=np.int8), str(root))


def _load_parquet(path: Path, text_column: str, label_column: str) -> LabelledReviews:
    try:
        dataset = ds.dataset(path, format="parquet")
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(f"cannot read {path} as Parquet: {e}") from None
    for column in (text_column, label_column):
        if column not in dataset.schema.names:
            raise DatasetError(f"{path} has no column {column!r} (columns: {', '.join(dataset.schema.names)})")
    table = dataset.to_table(columns=[text_column, label_column])
    if table.num_rows == 0:
        raise DatasetError(f"{path} holds no rows")
    texts, labels = table.column(text_column), table.column(label_column)
    if texts.null_count:
        raise DatasetError(f"{path}: column {text_column!r} has {texts.null_count} null values")
    return LabelledReviews(as_string_array(texts), _binary_labels(labels, path, label_column), str(path))


def _binary_labels(labels: pa.ChunkedArray, path: Path, column: str) -> np.ndarray:
    if labels.null_count:
        raise DatasetError(f"{path}: column {column!r} has {labels.null_count} null values")
    if pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type):
        index = pc.index_in(labels, value_set=pa.array(BINARY_CLASS_NAMES))
        if index.null_count:
            raise DatasetError(f"{path}: labels in {column!r} must be {' or '.join(BINARY_CLASS_NAMES)}")
        return index.to_numpy().astype(np.int8)
    values = labels.to_numpy().astype(np.int64)
    if not np.isin(values, (0, 1)).all():
        raise DatasetError(f"{path}: labels in {column!r} must be 0 (negative) or 1 (positive)")
    return values.astype(np.int8)
