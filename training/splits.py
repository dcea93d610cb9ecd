"""Held-out parts of the labelled data, drawn by group so that no group sits on two sides.

Training holds out two parts: *validation* (early stopping picks the epoch on it) and
*calibration* (the temperature or Platt scaling is fitted on it, and the model's reported accuracy
is measured on it, since nothing during training looked at it). With a group column (the movie of
each review), whole groups go to one side: a model then earns its validation accuracy on movies it
never saw, as it must on new data. Without one, every review is its own group, which is the
classic review-by-review split and is recorded as such in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    calibration: np.ndarray
    """Sorted row indices of each part; together a partition of the rows."""
    description: dict[str, Any]
    """What the manifest records under `validation_split`."""


def group_keys(groups: np.ndarray | None, rows: int) -> np.ndarray:
    """One key per row; a row without a group (None) is a group of its own, never merged with others."""
    if groups is None:
        return np.asarray([f"row:{i}" for i in range(rows)], dtype=object)
    if len(groups) != rows:
        raise ValueError(f"{len(groups)} groups for {rows} rows")
    return np.asarray(
        [f"group:{g}" if g is not None else f"row:{i}" for i, g in enumerate(groups)],
        dtype=object,
    )


def holdout_split(
    rows: int,
    groups: np.ndarray | None,
    validation_fraction: float,
    calibration_fraction: float,
    seed: int,
    group_column: str | None = None,
) -> Split:
    """Shuffle the groups (seeded) and deal whole groups to validation, then calibration, until each
    holds its share of the *reviews*; the remaining groups train. Without groups, each review is one.

    A part can overshoot its share by at most one group (30 reviews for aclImdb movies).
    """
    if not 0 < validation_fraction < 1 or not 0 <= calibration_fraction < 1:
        raise ValueError(
            f"validation fraction must be in (0, 1) and calibration fraction in [0, 1), "
            f"got {validation_fraction} and {calibration_fraction}"
        )
    if validation_fraction + calibration_fraction >= 1:
        raise ValueError("validation and calibration fractions must leave reviews to train on")
    keys = group_keys(groups, rows)
    unique, inverse, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    reviews_before = np.concatenate([[0], np.cumsum(sizes[order])[:-1]])
    total = len(keys)
    part_of_group = np.zeros(len(unique), dtype=np.int8)  # 0 train, 1 validation, 2 calibration
    validation_end = validation_fraction * total
    calibration_end = (validation_fraction + calibration_fraction) * total
    part_of_group[order[reviews_before < validation_end]] = 1
    part_of_group[order[(reviews_before >= validation_end) & (reviews_before < calibration_end)]] = 2
    part = part_of_group[inverse]
    indices = [np.flatnonzero(part == p) for p in (0, 1, 2)]
    if len(indices[0]) == 0 or len(indices[1]) == 0:
        raise ValueError(f"{total} reviews in {len(unique)} groups are too few to hold out validation and train")
    groups_in = [int(np.count_nonzero(part_of_group == p)) for p in (0, 1, 2)]
    grouped = groups is not None
    description = {
        "kind": "grouped" if grouped else "random",
        "group_column": group_column if grouped else None,
        "seed": seed,
        "validation_fraction": validation_fraction,
        "calibration_fraction": calibration_fraction,
        "rows": {"train": len(indices[0]), "validation": len(indices[1]), "calibration": len(indices[2])},
    }
    if grouped:
        description["groups"] = {"train": groups_in[0], "validation": groups_in[1], "calibration": groups_in[2]}
    return Split(*indices, description=description)
