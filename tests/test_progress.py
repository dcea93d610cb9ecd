"""Progress with an end: one module (pipeline/model/progress.py) says how far every long step is, as a bar
on a terminal or a plain line at most once per interval elsewhere, with the total, the percentage,
the rate and the time left; a local run's workers add their counts to one channel the launcher sums.
Every clock here is a fake one: nothing sleeps and nothing is timed."""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

import pipeline.model.progress
from pipeline.model.explain import occlusion
from pipeline.model.explain.occlusion import Occlusion
from pipeline.model.progress import (
    BYTES,
    EPOCHS,
    Display,
    RunProgress,
    Step,
    WorkerCount,
    plain_line,
    report_progress,
)
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


def test_a_plain_line_says_done_of_total_percentage_rate_and_time_left():
    line = plain_line(Step("scoring", total=50_000), 24_000, elapsed=24_000 / 2_410)
    assert line.startswith("scoring: 24,000 of 50,000 reviews (48 %)")
    assert "2,410 reviews/s" in line and line.endswith("about 11 s left")
    slow = plain_line(Step("explanations", total=5_000), 2_462, elapsed=2_462 / 17)
    assert "2,462 of 5,000 reviews (49 %)" in slow and "17 reviews/s" in slow and "about 2 min 29 s left" in slow
    sample = plain_line(Step("explanations", total=50, about=True), 20, elapsed=10)
    assert "20 of about 50 reviews (40 %)" in sample and "2.0 reviews/s" in sample
    done = plain_line(Step("scoring", total=40), 40, elapsed=75, finished=True)
    assert done.startswith("scoring: 40 of 40 reviews (100 %), 2 s per review") and done.endswith("done in 1 min 15 s")
    short = plain_line(Step("explanations", total=40), 39, elapsed=3, finished=True)  # one review failed
    assert short.startswith("explanations: 39 reviews, ") and "%" not in short and "done in 3 s" in short


def test_epochs_and_bytes_read_in_their_own_words():
    epoch = plain_line(Step("training", EPOCHS, 20, at_most=True), 2.25, elapsed=90, detail="batch 100 of 400")
    assert epoch.startswith("training: epoch 3 of at most 20 (11 %), batch 100 of 400")
    assert "40 s per epoch" in epoch and "at most about 11 min left" in epoch  # (20 - 2.25) epochs at 40 s
    download = plain_line(Step("downloading a.tar.gz", BYTES, 84_125_825), 42_000_000, elapsed=10)
    assert "42.0 of 84.1 MB (50 %)" in download and "4.2 MB/s" in download and "about 10 s left" in download
    unknown = plain_line(Step("downloading a.tar.gz", BYTES), 1_500_000, elapsed=1)
    assert "1.5 MB, 1.5 MB/s" in unknown and "%" not in unknown and "left" not in unknown


def test_plain_lines_at_most_once_per_interval_only_when_the_count_moved(lines):
    clock = Clock()
    display = Display([Step("scoring", total=1_000)], every_seconds=10.0, clock=clock, terminal=False)
    assert display.update("scoring", 100) == []  # nothing has taken long yet
    clock.now += 9.9
    assert display.update("scoring", 200) == []
    clock.now += 0.1
    first = display.update("scoring", 300)
    assert len(first) == 1 and "300 of 1,000 reviews (30 %)" in first[0] and "30 reviews/s" in first[0]
    assert "about 23 s left" in first[0]
    clock.now += 10
    assert display.update("scoring", 300) == []  # a step that went quiet is doing one long piece of work
    clock.now += 1
    second = display.update("scoring", 400)
    assert "400 of 1,000" in second[0]
    clock.now += 5
    display.update("scoring", 1_000)
    closing = display.close()
    assert len(closing) == 1 and "1,000 of 1,000 reviews (100 %)" in closing[0] and "done in 26 s" in closing[0]
    assert lines == [first[0], second[0], closing[0]]  # what each call returned is what it logged, no more
    assert display.close() == []  # closing twice says nothing more


def test_a_short_run_ends_without_a_closing_line_and_an_interrupted_one_too(lines):
    clock = Clock()
    quick = Display([Step("scoring", total=12)], every_seconds=10.0, clock=clock, terminal=False)
    quick.update("scoring", 12)
    clock.now += 2
    assert quick.close() == []  # its result says all
    stopped = Display([Step("scoring", total=12)], every_seconds=0.0, clock=clock, terminal=False)
    stopped.update("scoring", 5)
    assert stopped.close(finished=False) == []
    assert len(lines) == 1 and "5 of 12" in lines[0]


def test_on_a_terminal_a_bar_with_the_same_figures(lines):
    clock = Clock()
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    display = Display([Step("scoring", total=50_000)], clock=clock, terminal=True, console=console)
    display.update("scoring", 0)
    clock.now += 24_000 / 2_410
    assert display.update("scoring", 24_000) == []  # no plain lines where a bar is drawn
    display.note("a line above the bar")
    display._bar.refresh()
    drawn = screen.getvalue()
    assert "scoring" in drawn and "━" in drawn
    assert "24,000 of 50,000 reviews (48 %)" in drawn and "2,410 reviews/s" in drawn and "about 11 s left" in drawn
    assert "a line above the bar" in drawn
    display.update("scoring", 50_000)
    display.close()
    assert "50,000 of 50,000 reviews (100 %)" in screen.getvalue() and "done in" in screen.getvalue()
    assert lines == []


def test_report_progress_yields_the_callable_a_download_or_an_evaluation_reports_to(lines, monkeypatch):
    monkeypatch.setattr(pipeline.model.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    with report_progress("evaluating", terminal=False) as progress:
        progress(10, 30)
        progress(30, 30)
    assert "evaluating: 10 of 30 reviews (33 %)" in lines[0]
    assert "30 of 30 reviews (100 %)" in lines[-1] and "done in" in lines[-1]


def test_a_remote_worker_logs_its_own_share_beside_the_jobs_total(lines):
    clock = Clock()
    count = WorkerCount(Step("scoring", total=50_000), None, every_seconds=60.0, clock=clock)
    assert count.add(4_096) is None
    clock.now += 60
    line = count.add(4_096)
    assert re.fullmatch(r"scoring, worker \d+: 8,192 of the job's 50,000 reviews so far, 137 reviews/s", line)
    assert lines == [line]
    copy = pickle.loads(pickle.dumps(count))  # a DoFn's copy counts afresh
    assert copy.count == 0 and copy.step == count.step


def test_the_channel_sums_every_worker_process(tmp_path):
    """Two processes (as `--direct_running_mode multi_processing` starts them) add to one channel while
    the launcher reads it: the launcher sees the sum, whatever the interleaving."""
    progress = RunProgress(every_seconds=0.0, terminal=False)
    count = progress.count(Step("scoring", total=4_000))
    pickled = tmp_path / "count.pickle"
    pickled.write_bytes(pickle.dumps(count))
    script = (
        "import pickle, sys; count = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "for _ in range(1_000): count.add(2)\n"
    )
    with progress:
        workers = [subprocess.Popen([sys.executable, "-c", script, str(pickled)]) for _ in range(2)]
        assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
        progress.poll()
        assert progress.display.done["scoring"] == 4_000
    assert not os.path.exists(progress.folder)  # the channel goes with the run


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


def test_a_local_run_shows_the_jobs_totals_for_scoring_and_explanations(tiny_bundle, tmp_path, monkeypatch, lines):
    """With a zero interval every count the launcher reads logs a line. Scoring reaches the job's
    total (a review that fails counts as handled); explanations end with what they explained."""
    import pipeline.job.scoring
    from pipeline.job.scoring import ScoringJob, run_scoring
    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.explain.explainer import ExplainSettings

    monkeypatch.setattr(pipeline.job.scoring, "PROGRESS_EVERY_SECONDS", 0.0)
    texts = [t for t, _ in make_reviews(39, seed=41)] + ["   "]  # one review with no words fails
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    job = ScoringJob(
        [str(tmp_path / "in.parquet")],
        str(tmp_path / "out"),
        str(tiny_bundle.path),
        max_batch_size=16,
        scorer=ScorerSettings(engine="onnx"),
        explain=ExplainSettings(top_k=2),
    )
    summary = run_scoring(job)
    assert summary.records_scored == 39 and summary.records_failed == 1
    start = next(i for i, line in enumerate(lines) if line.startswith("scoring 40 reviews on onnx"))
    assert "explaining 2 words each by occlusion; a progress line every 0 s" in lines[start]
    scoring = [line for line in lines[start + 1 :] if line.startswith("scoring: ")]
    explaining = [line for line in lines[start + 1 :] if line.startswith("explanations: ")]
    assert all(" of 40 reviews (" in line for line in scoring)  # the job's total, not a worker's count
    counts = [int(line.split()[1].replace(",", "")) for line in scoring]
    assert counts == sorted(counts) and len(set(counts[:-1])) == len(counts) - 1  # a line only when it moved
    assert scoring[-1].startswith("scoring: 40 of 40 reviews (100 %)") and "done in" in scoring[-1]
    assert explaining[-1].startswith("explanations: 39 reviews, ") and "done in" in explaining[-1]


def test_training_says_epoch_k_of_n_batches_within_it_and_the_time_left_by_the_mean_epoch(lines, monkeypatch):
    pytest.importorskip("keras")
    from training.train import EpochProgress

    monkeypatch.setattr(pipeline.model.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    clock = Clock()
    callback = EpochProgress(4, clock=clock, terminal=False)
    callback.set_params({"epochs": 4, "steps": 10})
    callback.on_train_begin()
    for epoch in range(2):
        callback.on_epoch_begin(epoch)
        for batch in range(10):
            clock.now += 3
            callback.on_train_batch_end(batch)
        callback.on_epoch_end(epoch, {"loss": 0.5 - epoch / 10, "val_loss": 0.6})
    callback.on_train_end()  # early stopping after two of four epochs
    assert "training: epoch 1 of at most 4 (2 %), batch 1 of 10" in lines[0]
    within = next(line for line in lines if "batch 5 of 10" in line and "epoch 2" in line)
    assert "epoch 2 of at most 4 (38 %)" in within and "30 s per epoch" in within
    assert "at most about 1 min 15 s left" in within  # 2.5 epochs to go at 30 s each
    assert "epoch 1: loss 0.5000, val_loss 0.6000" in lines and "epoch 2: loss 0.4000, val_loss 0.6000" in lines
    assert lines[-1].startswith("training: 2 epochs, 30 s per epoch, done in 1 min")
