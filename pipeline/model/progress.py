"""Progress with an end, for every long step: scoring, explanations, training epochs, downloads, evaluation.

One module says how far a step is, in one form wherever it runs: "scoring: 24,000 of 50,000 reviews
(48 %), 2,410 reviews/s, about 11 s left". Where someone watches (stderr is a terminal) that is a rich
bar, redrawn in place; in logs, CI and on workers it is a plain line at most every
`PROGRESS_EVERY_SECONDS`, and only when the count moved (a step that goes quiet for longer is doing
one long piece of work). A run long enough to have printed a line ends with one more, saying what
the step did and how long it took. The clock is an argument everywhere, so a test drives it without
sleeping.

Counting across a local run's workers. Beam's DirectRunner (its FnApiRunner) returns the job's
metrics only when the whole pipeline has finished: `pipeline.run()` blocks until then, and no public
API reads a counter while bundles run. So the launcher does not ask Beam: it creates a channel, one
append-only file in a fresh temporary folder, and every worker (a thread of the launcher's process,
or a `--direct_running_mode multi_processing` process on the same machine) appends a short
`STEP COUNT` line to it for each batch it finishes. Appends are single `write` calls on an
`O_APPEND` file, so lines from several processes never interleave. The launcher reads the new lines
a few times a second, sums them per step and shows the job's totals: the counts shown are the
whole job's, across every worker, never one worker's share. The folder is removed when the run ends.

A remote run (Dataflow) has no shared disk and its launcher does not wait: each worker logs its own
plain lines every `REMOTE_PROGRESS_EVERY_SECONDS`, naming its share and the job's total, and the
runner's own metrics (the job page) sum the workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from rich.progress import ProgressColumn

__all__ = [
    "BYTES",
    "EPOCHS",
    "PROGRESS_EVERY_SECONDS",
    "REMOTE_PROGRESS_EVERY_SECONDS",
    "Display",
    "RunProgress",
    "Step",
    "WorkerCount",
    "WorkerLines",
    "log",
    "plain_line",
    "report_progress",
]

PROGRESS_EVERY_SECONDS = 10.0
"""The interval of plain progress lines (logs, CI, anything that is not a terminal)."""
REMOTE_PROGRESS_EVERY_SECONDS = 60.0
"""A remote worker's own lines: many processes log them, into a log the runner keeps."""
_BAR_POLL_SECONDS = 0.2
"""How often a bar reads the workers' channel: often enough to move smoothly, cheap (a file read)."""

log = logging.getLogger("reviewscore")

BYTES = "bytes"
EPOCHS = "epochs"


@dataclass(frozen=True)
class Step:
    """What a long step counts, and up to what."""

    name: str
    """How the lines name the step: "scoring", "explanations", "training", "downloading NAME"."""
    unit: str = "reviews"
    """"reviews" (or any plural noun), "bytes" (shown in MB) or "epochs" (shown as "epoch k of N")."""
    total: int | None = None
    """None where unknown (a server that sends no length): then no percentage and no time left."""
    about: bool = False
    """The total is an estimate (a sample drawn by review id): "of about 50"."""
    at_most: bool = False
    """The total is an upper bound (early stopping may end training sooner): "of at most 20"."""


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _megabytes(count: float) -> str:
    return f"{count / 1e6:,.1f}"


def _rate(rate: float, unit: str) -> str:
    if unit == BYTES:
        return f"{_megabytes(rate)} MB/s"
    if rate >= 10:
        return f"{rate:,.0f} {unit}/s"
    if rate >= 1:
        return f"{rate:.1f} {unit}/s"
    return f"{_duration(1 / rate)} per {unit.removesuffix('s')}"


def _amount(step: Step, done: float, finished: bool) -> str:
    bound = "about " if step.about else "at most " if step.at_most else ""
    if step.unit == EPOCHS:
        if finished or step.total is None:
            return f"{int(done):,} epochs"
        return f"epoch {min(int(done) + 1, step.total)} of {bound}{step.total}"
    if step.unit == BYTES:
        return f"{_megabytes(done)} of {bound}{_megabytes(step.total)} MB" if step.total else f"{_megabytes(done)} MB"
    if step.total is None or (finished and done != step.total):
        return f"{int(done):,} {step.unit}"  # a finished estimate: what was done is the whole story
    return f"{int(done):,} of {bound}{step.total:,} {step.unit}"


def figures(step: Step, done: float, elapsed: float, finished: bool = False, detail: str | None = None) -> str:
    """A line's figures after the step's name: amount (percentage), detail, rate, time left or taken."""
    parts = [_amount(step, done, finished)]
    if step.total and not (finished and done != step.total):
        parts[0] += f" ({min(done / step.total, 1.0):.0%})".replace("%", " %")
    if detail and not finished:
        parts.append(detail)
    rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
    if rate:
        parts.append(_rate(rate, step.unit))
    if finished:
        parts.append(f"done in {_duration(elapsed)}")
    elif rate and step.total:
        left = max(step.total - done, 0) / rate
        parts.append(f"{'at most ' if step.at_most else ''}about {_duration(left)} left")
    return ", ".join(parts)


def plain_line(step: Step, done: float, elapsed: float, finished: bool = False, detail: str | None = None) -> str:
    """`scoring: 24,000 of 50,000 reviews (48 %), 2,410 reviews/s, about 11 s left`; the rate is the
    step's mean since it started, so the time left is what the run so far predicts."""
    return f"{step.name}: {figures(step, done, elapsed, finished, detail)}"


class Display:
    """Shows the progress of one or more steps: a rich bar per step on a terminal, else plain lines.

    `update` sets a step's count (and, where it was unknown, its total); `note` prints a line that
    belongs with them (an epoch's losses) above a bar, or as a plain line. Thread-safe.
    """

    def __init__(
        self,
        steps: list[Step],
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        terminal: bool | None = None,
        console=None,
    ):
        self.steps = {step.name: step for step in steps}
        self.every_seconds = PROGRESS_EVERY_SECONDS if every_seconds is None else every_seconds
        self.clock = clock
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.console = console
        self.done = dict.fromkeys(self.steps, 0.0)
        self.detail: dict[str, str | None] = dict.fromkeys(self.steps)
        self.shown: dict[str, float] = {}
        """Each step's count at its last plain line."""
        self.started = self.last_line = clock()
        self.lines = 0
        self.closed = False
        self._bar = None
        self._tasks: dict[str, object] = {}
        self._lock = threading.RLock()
        self._handlers: list[tuple[logging.StreamHandler, object]] = []

    def update(self, name: str, done: float, total: int | None = None, detail: str | None = None) -> list[str]:
        """Set step `name`'s count; returns the plain lines this logged (none on a terminal)."""
        with self._lock:
            if total is not None and total != self.steps[name].total:
                self.steps[name] = replace(self.steps[name], total=total)
            self.detail[name] = detail
            return self.counts({name: done})

    def counts(self, done: dict[str, float]) -> list[str]:
        """Set several steps' counts at once (one plain line each, together); returns the lines logged."""
        with self._lock:
            self.done.update({name: count for name, count in done.items() if name in self.steps})
            if self.terminal:
                for name in done:
                    if name in self.steps:
                        self._draw(name)
                return []
            return self._plain_lines(finished=False)

    def note(self, line: str) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.console.print(line, highlight=False, soft_wrap=True)
            else:
                log.warning(line)

    def close(self, finished: bool = True) -> list[str]:
        """End the display. `finished`: the work completed (not interrupted) and, on a run that went on
        long enough to print lines, each step's closing line says what it did and how long it took."""
        with self._lock:
            if self.closed:
                return []
            self.closed = True
            if self._bar is not None:
                if finished:
                    for name, task in self._tasks.items():
                        self._bar.update(task, total=max(self.done[name], 1), completed=self.done[name])
                self._bar.stop()
                self._bar = None
                self._route_log_lines(back=True)
                return []
            if self.terminal or not finished:
                return []
            if not self.lines and self.clock() - self.started < self.every_seconds:
                return []  # a short run: its result says all
            return self._plain_lines(finished=True)

    def __enter__(self) -> Display:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(finished=kind is None)

    def _plain_lines(self, finished: bool) -> list[str]:
        now = self.clock()
        if not finished and now - self.last_line < self.every_seconds:
            return []
        lines = []
        for name, step in self.steps.items():
            done = self.done[name]
            if done <= 0 or (not finished and self.shown.get(name) == done):
                continue
            self.shown[name] = done
            lines.append(plain_line(step, done, now - self.started, finished, self.detail[name]))
        if lines:
            self.last_line = now
            self.lines += len(lines)
            for line in lines:
                log.warning(line)
        return lines

    def _draw(self, name: str) -> None:
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as Bar

        if self._bar is None:
            columns = (TextColumn("{task.description}"), BarColumn(), _Figures(self))
            self._bar = Bar(*columns, console=self._console(), get_time=self.clock)
            self._bar.start()
            self._route_log_lines(back=False)
        step = self.steps[name]
        if name not in self._tasks:
            self._tasks[name] = self._bar.add_task(step.name, total=step.total)
        self._bar.update(self._tasks[name], completed=self.done[name], total=step.total)

    def _console(self):
        if self.console is None:
            from rich.console import Console

            self.console = Console(stderr=True)
        return self.console

    def _route_log_lines(self, back: bool) -> None:
        """While a bar is drawn, our own log lines go through its console, above the bar, instead of
        being written into it (a handler holds the stream it was given, not the bar's)."""
        if back:
            for handler, stream in self._handlers:
                handler.setStream(stream)
            self._handlers = []
            return
        file = self._bar.console.file
        for handler in log.handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (sys.stderr, sys.__stderr__):
                self._handlers.append((handler, handler.setStream(file)))


class _Figures(ProgressColumn):
    """The bar's figures, from the same words as a plain line."""

    def __init__(self, display: Display):
        super().__init__()
        self.display = display

    def render(self, task):
        from rich.text import Text

        step = self.display.steps.get(task.description)  # each task is described by its step's name
        if step is None:
            return Text("")
        elapsed = self.display.clock() - self.display.started
        return Text(figures(step, task.completed, elapsed, task.finished, self.display.detail.get(step.name)))


@contextmanager
def report_progress(
    name: str,
    unit: str = "reviews",
    every_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    terminal: bool | None = None,
) -> Iterator[Callable[[int, int | None], None]]:
    """A `progress(done, total)` callable for one long step, shown as a bar or plain lines; the
    context's end closes the bar (and, after a long step, logs its closing line). What a download or
    an evaluation passes down to the loop that does the work."""
    display = Display([Step(name, unit)], every_seconds, clock, terminal)
    with display:
        yield lambda done, total=None: display.update(name, done, total)


# Counting in workers ------------------------------------------------------------------------------

_OPEN: dict[str, int] = {}
_OPEN_LOCK = threading.Lock()


def _append(channel: str, text: str) -> None:
    """One `write` on an O_APPEND descriptor, opened once per process: lines never interleave."""
    fd = _OPEN.get(channel)
    if fd is None:
        with _OPEN_LOCK:
            fd = _OPEN.get(channel)
            if fd is None:
                try:
                    fd = os.open(channel, os.O_WRONLY | os.O_APPEND)
                except OSError:  # the run ended (or was stopped) and removed its channel
                    fd = -1
                _OPEN[channel] = fd
    if fd >= 0:
        with contextlib.suppress(OSError):  # progress is never worth failing a job for
            os.write(fd, text.encode())


class WorkerCount:
    """What a stage's DoFn or model handler counts with: `add(n)` after each batch of work.

    Local runs: appended to the launcher's channel, which shows the job's totals. Remote runs (no
    channel): this worker process logs its own plain lines, its count beside the job's total.
    Pickled with the DoFn holding it; each copy keeps its own state (a lock does not pickle).
    """

    def __init__(self, step: Step, channel: str | None, every_seconds: float | None = None, clock=time.monotonic):
        self.step = step
        self.channel = channel
        self.every_seconds = every_seconds
        self.clock = clock
        self._state()

    def _state(self) -> None:
        self.count = 0
        self.started = self.last_line = self.clock()
        self._lock = threading.Lock()

    def add(self, count: int) -> str | None:
        """Count `count` more; returns the line a remote worker logged, if its interval had passed."""
        if self.channel is not None:
            _append(self.channel, f"{self.step.name}\t{count}\n")
            return None
        if self.every_seconds is None:
            return None
        with self._lock:
            self.count += count
            now = self.clock()
            if now - self.last_line < self.every_seconds:
                return None
            self.last_line = now
            rate = _rate(self.count / max(now - self.started, 1e-9), self.step.unit)
            of = f" of the job's {self.step.total:,}" if self.step.total else ""
            line = f"{self.step.name}, worker {os.getpid()}: {self.count:,}{of} {self.step.unit} so far, {rate}"
        log.warning(line)
        return line

    def __getstate__(self) -> dict:
        return {"step": self.step, "channel": self.channel, "every_seconds": self.every_seconds, "clock": self.clock}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._state()


class _ChannelReader:
    """The launcher's end of the channel: sums the complete lines appended since the last read."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0
        self.rest = b""
        self.totals: dict[str, int] = {}

    def read(self) -> dict[str, int]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return self.totals
        self.offset += len(data)
        *complete, self.rest = (self.rest + data).split(b"\n")
        for line in complete:
            name, _, count = line.decode().partition("\t")
            if count.isdigit():
                self.totals[name] = self.totals.get(name, 0) + int(count)
        return self.totals


class WorkerLines:
    """A remote run's progress: no channel, each worker logs its own lines; the launcher shows nothing."""

    local = False

    def __init__(self, every_seconds: float = REMOTE_PROGRESS_EVERY_SECONDS):
        self.every_seconds = every_seconds

    def count(self, step: Step) -> WorkerCount:
        return WorkerCount(step, None, self.every_seconds)

    def __enter__(self) -> WorkerLines:
        return self

    def __exit__(self, *exc) -> None:
        pass


class RunProgress:
    """A local run's progress: the steps' counters (`count`, while the graph is built), then, as a
    context around `pipeline.run()`, the channel read a few times a second and shown."""

    local = True

    def __init__(
        self,
        every_seconds: float = PROGRESS_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        terminal: bool | None = None,
        console=None,
    ):
        self.every_seconds = every_seconds
        self.clock = clock
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.console = console
        self.steps: list[Step] = []
        self.folder = tempfile.mkdtemp(prefix="reviewscore-progress-")
        self.channel = os.path.join(self.folder, "counts")
        open(self.channel, "wb").close()
        # removed by __exit__; this covers a run that fails before it starts
        self._remove = weakref.finalize(self, shutil.rmtree, self.folder, True)
        self.display: Display | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, step: Step) -> WorkerCount:
        self.steps.append(step)
        return WorkerCount(step, self.channel)

    def announcement(self) -> str:
        """What the run's first line says of progress: the bar needs no announcing."""
        return "" if self.terminal else f"; a progress line every {self.every_seconds:.0f} s"

    def poll(self) -> None:
        self.display.counts(self._reader.read())

    def so_far(self) -> str:
        """What the steps had done, for the line of a run stopped early: "scoring 24,576 of 50,000 reviews"."""
        if self.display is None:
            return "nothing counted yet"
        with self.display._lock:
            done = [
                f"{name} {_amount(step, self.display.done[name], finished=False)}"
                for name, step in self.display.steps.items()
                if self.display.done[name] > 0
            ]
        return ", ".join(done) or "nothing counted yet"

    def __enter__(self) -> RunProgress:
        self.display = Display(self.steps, self.every_seconds, self.clock, self.terminal, self.console)
        self._reader = _ChannelReader(self.channel)
        period = _BAR_POLL_SECONDS if self.terminal else min(max(self.every_seconds, _BAR_POLL_SECONDS), 1.0)
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True, name="reviewscore-progress")
        self._thread.start()
        return self

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            self.poll()

    def __exit__(self, kind, value, traceback) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if kind is None:
                self.poll()  # every worker has finished: the last counts are all in
            self.display.close(finished=kind is None)
        finally:
            self._remove()
