"""Progress lines: one helper with an interval and a clock, used by every stage of a local run
(scoring, explanations), so a long run is never silent for longer than the interval while it works."""

from __future__ import annotations

import logging
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.explain import occlusion
from pipeline.explain.occlusion import Occlusion
from pipeline.progress import Progress
from tests.conftest import make_reviews


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def lines():
    handler = Lines()
    logger = logging.getLogger("reviewscore")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_line_at_most_once_per_interval_with_the_count_and_rate(lines):
    clock = Clock()
    progress = Progress("explained", 10.0, clock)
    assert progress.add(3) is None  # nothing has taken long yet
    clock.now += 9.9
    assert progress.add(4) is None
    clock.now += 0.1
    line = progress.add(5)
    assert re.fullmatch(r"progress: worker \d+ explained 12 reviews \(1\.2 reviews/s\)", line)
    clock.now += 5
    assert progress.add(1000) is None  # within the interval of the last line
    clock.now += 5
    later = progress.add(1000)
    assert later.endswith("explained 2012 reviews (101 reviews/s)")
    assert lines == [line, later]  # what `add` returns is what it logged, and nothing else was


def test_occlusion_counts_the_reviews_it_explains_chunk_by_chunk(monkeypatch):
    monkeypatch.setattr(occlusion, "ROWS_PER_CALL", 12)  # a few long reviews fill a chunk

    def logits(rows):
        return np.array([[float(r.sum()) / 100] for r in rows], np.float32)

    counted: list[int] = []

    class Recorder:
        def add(self, reviews):
            counted.append(reviews)

    rows = [np.arange(1, n + 1, dtype=np.int32) for n in (5, 6, 3, 9, 1, 4)]
    with_progress = Occlusion(logits)(rows, np.ones(len(rows), int), progress=Recorder())
    without = Occlusion(logits)(rows, np.ones(len(rows), int))
    assert len(counted) > 1 and sum(counted) == len(rows)
    for a, b in zip(with_progress.weights, without.weights, strict=True):
        np.testing.assert_array_equal(a, b)  # counting changes nothing explained


def test_a_local_run_says_what_it_starts_and_how_every_stage_progresses(tiny_bundle, tmp_path, monkeypatch, lines):
    """With a zero interval every scored batch and every explained chunk logs a line: the stages that take
    long (scoring, explaining) each report while they work."""
    import pipeline.job
    from pipeline.engines.base import ScorerSettings
    from pipeline.explain.explainer import ExplainSettings
    from pipeline.job import ScoringJob, run_scoring

    monkeypatch.setattr(pipeline.job, "PROGRESS_EVERY_SECONDS", 0.0)
    reviews = make_reviews(40, seed=41)
    pq.write_table(pa.table({"text": [t for t, _ in reviews]}), tmp_path / "in.parquet")
    job = ScoringJob(
        [str(tmp_path / "in.parquet")],
        str(tmp_path / "out"),
        str(tiny_bundle.path),
        max_batch_size=16,
        scorer=ScorerSettings(engine="onnx"),
        explain=ExplainSettings(top_k=2),
    )
    summary = run_scoring(job)
    assert summary.records_scored == 40
    assert any(re.match(r"scoring 40 reviews on onnx, explaining 2 words each by occlusion", line) for line in lines)
    scored = [int(m.group(1)) for line in lines if (m := re.search(r"scored (\d+) reviews", line))]
    explained = [int(m.group(1)) for line in lines if (m := re.search(r"explained (\d+) reviews", line))]
    assert scored and scored == sorted(scored) and scored[-1] == 40
    assert explained and explained[-1] == 40
    start = next(i for i, line in enumerate(lines) if line.startswith("scoring 40 reviews"))
    assert start < next(i for i, line in enumerate(lines) if "explained" in line)
