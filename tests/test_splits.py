"""The held-out parts never share a group with training or with each other, whatever the groups."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.splits import holdout_split

group_lists = st.lists(st.one_of(st.none(), st.sampled_from([f"tt{i}" for i in range(40)])), min_size=12, max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    groups=group_lists, seed=st.integers(0, 2**32 - 1), validation=st.floats(0.05, 0.4), calibration=st.floats(0, 0.4)
)
def test_no_group_is_on_two_sides(groups, seed, validation, calibration):
    groups = np.asarray(groups, dtype=object)
    try:
        split = holdout_split(len(groups), groups, validation, calibration, seed, "movie_id")
    except ValueError as e:  # too few groups to leave anything to train on: said, never silently wrong
        assert "too few" in str(e)
        return
    parts = (split.train, split.validation, split.calibration)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(groups)))  # a partition
    named = [{g for g in groups[p] if g is not None} for p in parts]
    assert not (named[0] & named[1]) and not (named[0] & named[2]) and not (named[1] & named[2])
    assert split.description["rows"] == {"train": len(parts[0]), "validation": len(parts[1]),
                                         "calibration": len(parts[2])}  # fmt: skip
    again = holdout_split(len(groups), groups, validation, calibration, seed, "movie_id")
    assert all(
        np.array_equal(a, b) for a, b in zip(parts, (again.train, again.validation, again.calibration), strict=True)
    )


def test_sizes_follow_the_fractions_within_one_group():
    groups = np.asarray([f"tt{i // 30}" for i in range(3000)], dtype=object)  # 100 movies of 30 reviews
    split = holdout_split(3000, groups, 0.1, 0.1, seed=7, group_column="movie_id")
    assert 300 <= len(split.validation) < 330 and 300 <= len(split.calibration) < 330
    assert split.description["kind"] == "grouped" and split.description["groups"]["validation"] == 10


def test_without_groups_each_review_is_its_own():
    split = holdout_split(200, None, 0.2, 0.0, seed=1)
    assert len(split.validation) == 40 and len(split.calibration) == 0
    assert split.description["kind"] == "random" and split.description["group_column"] is None


def test_fractions_must_leave_training_data():
    with pytest.raises(ValueError, match="leave reviews to train on"):
        holdout_split(100, None, 0.6, 0.5, seed=1)
