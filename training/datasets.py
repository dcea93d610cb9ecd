"""Review datasets for training: the aclImdb directory layout, or Parquet with text and label.

Only the training part of aclImdb is ever read (`train/pos`, `train/neg`, and `train/unsup` for
pre-training): the official test split stays untouched so it can judge a model independently.

Each labelled review can carry a group (the movie it is about) so that validation can hold out
whole movies: a movie has up to 30 reviews, and a review-by-review split lets a model score well
on validation by remembering titles and actors it will never see again in new data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.model.preprocessing import as_string_array
from schemas.bundle import BINARY_CLASS_NAMES
from schemas.output_names import LABEL, TEXT


class DatasetError(ValueError):
    """The training data cannot be read as labelled reviews."""


IMDB_TITLE_ID = re.compile(r"/title/(tt\d+)/")
"""A movie's IMDB title id in a line of aclImdb's urls_*.txt (also read by training.public_data.imdb)."""


@dataclass(frozen=True)
class LabelledReviews:
    texts: pa.Array
    labels: np.ndarray
    """Class indices into class_names."""
    source: str
    groups: np.ndarray | None = None
    """One group id per review (object array of str or None), or None when not asked for."""
    class_names: tuple[str, ...] = BINARY_CLASS_NAMES
    indexed: bool = False
    """The labels were given as integers (a Parquet column of indices, or aclImdb's neg/ and pos/
    folders, 0 and 1), not as class names: `index_fit_error` judges whether they can be indices."""

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
        groups = None if self.groups is None else self.groups[indices]
        return LabelledReviews(
            self.texts.take(pa.array(indices)),
            self.labels[indices],
            self.source,
            groups,
            self.class_names,
            self.indexed,
        )

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))

    def concatenated(self, other: LabelledReviews) -> LabelledReviews:
        """Both sets as one training set (e.g. phrases and sentences); groups are dropped unless both have them."""
        groups = None
        if self.groups is not None and other.groups is not None:
            groups = np.concatenate([self.groups, other.groups])
        return LabelledReviews(
            pa.concat_arrays([self.texts, other.texts]),
            np.concatenate([self.labels, other.labels]),
            f"{self.source} + {other.source}",
            groups,
            self.class_names,
            self.indexed or other.indexed,
        )


def load_labelled(
    path: str | Path,
    text_column: str = TEXT,
    label_column: str = LABEL,
    split: str = "train",
    group_column: str | None = None,
    class_names: tuple[str, ...] = BINARY_CLASS_NAMES,
) -> LabelledReviews:
    """Labelled reviews; given the aclImdb root folder, its `split` part (training reads "train").

    Labels are class names from `class_names` or their indices (0 .. K-1); anything else is an
    error naming the offending values. aclImdb folders are binary (neg, pos).

    With `group_column`, each review also gets its group: from that Parquet column, or for aclImdb
    folders the movie's IMDB title id from the dataset's `urls_pos.txt` and `urls_neg.txt`. A
    missing or all-null group column is an error, never a silent fall-back to no groups.
    """
    class_names = tuple(class_names)
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"labelled data {path} does not exist")
    if path.is_dir() and (path / split / "pos").is_dir():
        return _load_review_folders(path / split, grouped=group_column is not None)
    if path.is_dir() and (path / "pos").is_dir():
        return _load_review_folders(path, grouped=group_column is not None)
    return _load_parquet(path, text_column, label_column, group_column, class_names)


def load_sources(
    paths: Sequence[str | Path],
    text_column: str = TEXT,
    label_column: str = LABEL,
    group_column: str | None = None,
    class_names: tuple[str, ...] = BINARY_CLASS_NAMES,
) -> LabelledReviews:
    """Labelled reviews from one source, or several concatenated in order (`load_labelled` each):
    a bundle's training data, as `train` read it and as `reviewscore profile` finds it again."""
    parts = [load_labelled(p, text_column, label_column, group_column=group_column, class_names=class_names)
             for p in paths]  # fmt: skip
    data = parts[0]
    for part in parts[1:]:
        data = data.concatenated(part)
    return data


def load_texts(path: str | Path, text_column: str = TEXT) -> pa.Array:
    """Unlabelled review texts for pre-training: Parquet's text column, or aclImdb's train/unsup folder."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"unlabelled data {path} does not exist")
    for folder in (path / "train" / "unsup", path / "unsup", path):
        if folder.is_dir() and any(folder.glob("*.txt")):
            files = sorted(folder.glob("*.txt"), key=_review_number)
            return as_string_array(f.read_text(encoding="utf-8", errors="replace") for f in files)
    table = _read_parquet(path, [text_column])
    texts = table.column(text_column)
    if texts.null_count:
        texts = pc.drop_null(texts)
    return as_string_array(texts)


def _review_number(file: Path) -> int:
    """aclImdb names review files ID_RATING.txt; line ID of urls_*.txt is that review's movie."""
    try:
        return int(file.stem.split("_", 1)[0])
    except ValueError:
        raise DatasetError(f"{file}: not an aclImdb review file name (ID_RATING.txt)") from None


def _load_review_folders(root: Path, grouped: bool) -> LabelledReviews:
    texts: list[str] = []
    labels: list[int] = []
    groups: list[str | None] = []
    for label, folder in enumerate(("neg", "pos")):
        files = sorted((root / folder).glob("*.txt"))
        texts.extend(f.read_text(encoding="utf-8", errors="replace") for f in files)
        labels.extend([label] * len(files))
        if grouped and files:
            movies = _movie_ids(root / f"urls_{folder}.txt")
            for f in files:
                number = _review_number(f)
                if number >= len(movies):
                    raise DatasetError(f"{root}/urls_{folder}.txt has no line for review {f.name}")
                groups.append(movies[number])
    if not labels:
        raise DatasetError(f"no *.txt reviews under {root}/neg or {root}/pos")
    return LabelledReviews(
        as_string_array(texts),
        np.asarray(labels, dtype=np.int8),
        str(root),
        np.asarray(groups, dtype=object) if grouped else None,
        indexed=True,
    )


def _movie_ids(urls: Path) -> list[str | None]:
    if not urls.is_file():
        raise DatasetError(
            f"{urls} is missing: it names each review's movie for the grouped validation split "
            "(or pass --group-column none for a review-by-review split)"
        )
    ids = []
    for line in urls.read_text(encoding="utf-8").splitlines():
        match = IMDB_TITLE_ID.search(line)
        ids.append(match.group(1) if match else None)
    return ids


def _read_parquet(path: Path, columns: list[str]) -> pa.Table:
    try:
        dataset = ds.dataset(path, format="parquet")
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(f"cannot read {path} as Parquet: {e}") from None
    for column in columns:
        if column not in dataset.schema.names:
            raise DatasetError(f"{path} has no column {column!r} (columns: {', '.join(dataset.schema.names)})")
    table = dataset.to_table(columns=columns)
    if table.num_rows == 0:
        raise DatasetError(f"{path} holds no rows")
    return table


def _load_parquet(
    path: Path, text_column: str, label_column: str, group_column: str | None, class_names: tuple[str, ...]
) -> LabelledReviews:
    table = _read_parquet(path, [text_column, label_column, *([group_column] if group_column else [])])
    texts, labels = table.column(text_column), table.column(label_column)
    if texts.null_count:
        raise DatasetError(f"{path}: column {text_column!r} has {texts.null_count} null values")
    groups = None
    if group_column:
        column = table.column(group_column)
        if column.null_count == len(column):
            raise DatasetError(f"{path}: group column {group_column!r} is null in every row")
        groups = np.asarray(pc.cast(column, pa.string()).to_pylist(), dtype=object)
    indexed = pa.types.is_integer(labels.type)
    labels = _class_indices(labels, path, label_column, class_names)
    return LabelledReviews(as_string_array(texts), labels, str(path), groups, class_names, indexed)


def numbered_classes(class_names: Sequence[str]) -> str:
    """The classes as the messages name them: "0 negative, 1 positive"."""
    return ", ".join(f"{i} {name}" for i, name in enumerate(class_names))


def index_fit_error(labels: np.ndarray, class_names: Sequence[str]) -> str | None:
    """Why integer labels cannot be read as indices into class_names, or None when they can.

    An integer is a class index only by convention, and other labellings are integers too: binary
    0/1, three-way 0/1/2. Within range is not enough: IMDB's 0/1 against five classes would read as
    the two most negative ones. So the distinct values must be as many as the classes (every index
    occurs), which a file of another labelling cannot pass; two classes are the exception, as any
    values within 0 and 1 are a binary labelling (a file of positive reviews alone included).
    Class names are never ambiguous: give them to evaluate a file that holds only some classes.
    """
    distinct = np.unique(np.asarray(labels))
    if len(class_names) == 2 or len(distinct) == len(class_names):
        return None
    shown = ", ".join(map(str, distinct[:12].tolist())) + (" ..." if len(distinct) > 12 else "")
    other = f", or use a model of {len(distinct)} classes" if len(distinct) > 1 else ""
    return (
        f"take {len(distinct)} distinct value{'s' if len(distinct) > 1 else ''} ({shown}) but the model has "
        f"{len(class_names)} classes ({numbered_classes(class_names)}): integer labels are read as class indices "
        f"only when all {len(class_names)} occur; label the reviews by class name{other}"
    )


def _class_indices(labels: pa.ChunkedArray, path: Path, column: str, class_names: tuple[str, ...]) -> np.ndarray:
    """Labels as indices into class_names, or a DatasetError naming the values that are not classes."""
    if labels.null_count:
        raise DatasetError(f"{path}: column {column!r} has {labels.null_count} null values")
    numbered = numbered_classes(class_names)
    if pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type):
        index = pc.index_in(labels, value_set=pa.array(class_names))
        bad = pc.unique(pc.filter(labels, pc.is_null(index))).to_pylist()
        values = index.to_numpy(zero_copy_only=False)
    elif pa.types.is_integer(labels.type):
        values = labels.to_numpy().astype(np.int64)
        bad = np.unique(values[(values < 0) | (values >= len(class_names))]).tolist()
    else:
        raise DatasetError(f"{path}: labels in {column!r} must be class names or indices, not {labels.type}")
    if bad:
        shown = ", ".join(map(repr, sorted(bad, key=str)[:8])) + (" ..." if len(bad) > 8 else "")
        raise DatasetError(f"{path}: labels in {column!r} outside the classes ({numbered}): {shown}")
    return values.astype(np.int16)
