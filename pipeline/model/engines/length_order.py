"""What every engine does around its model call: length-sorted slices, and one thread per core."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


DEFAULT_MAX_BATCH_SIZE = 4096
"""Reviews scored together when the job does not say: one RunInference element, sorted by length
here and cut into model calls (BENCHMARKS.md#levers)."""


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def score_in_length_order(
    rows: Sequence[np.ndarray], batch_size: int, outputs: int, score_slice, run=map
) -> np.ndarray:
    """(rows, outputs) logits in input order, computed by `score_slice` on length-sorted slices of
    row indices (`run` may map the slices onto a thread pool).

    Sorting first keeps each slice's padding small; with masking, padding never changes a score,
    so the order of work is invisible in the results.
    """
    import numpy as np

    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    order = np.argsort(lengths, kind="stable")
    slices = [order[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    scores = np.empty((len(rows), outputs), dtype=np.float32)
    for members, part in zip(slices, run(score_slice, slices), strict=True):
        scores[members] = part
    return scores
