"""Progress lines for long local runs: every stage that takes a while counts its work with a Progress.

A line goes out at most once per interval, so a run of minutes says what it is doing without
flooding the terminal, and a stage that goes quiet for longer than the interval is doing one long
piece of work. The clock is monotonic and an argument, so a test can drive it without sleeping.
Remote runs pass no interval: their workers' logs and the runner's metrics say the same.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

__all__ = ["PROGRESS_EVERY_SECONDS", "Progress", "log"]

PROGRESS_EVERY_SECONDS = 10.0
"""The interval of a local run's progress lines."""

log = logging.getLogger("reviewscore")


class Progress:
    """Counts the reviews a stage has handled and logs `progress: worker PID <done> N reviews (R reviews/s)`
    when `every_seconds` have passed since the last line (or since the count started).

    Thread-safe: a process's threads may share one. Create it where the work runs (a DoFn's setup, a
    handler's first call), not where the job is described: its count belongs to one process.
    """

    def __init__(self, done: str, every_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.done = done
        """What the stage did to the reviews, as the line says it: "scored", "explained"."""
        self.every_seconds = every_seconds
        self.clock = clock
        self.count = 0
        self.started = self.last_line = clock()
        self._lock = threading.Lock()

    def add(self, reviews: int) -> str | None:
        """Count `reviews` more; returns the line logged, if the interval had passed."""
        with self._lock:
            self.count += reviews
            now = self.clock()
            if now - self.last_line < self.every_seconds:
                return None
            self.last_line = now
            rate = self.count / max(now - self.started, 1e-9)
            shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"  # slow stages (explanations) need the decimal
            line = f"progress: worker {os.getpid()} {self.done} {self.count} reviews ({shown} reviews/s)"
        log.warning(line)
        return line

    def __reduce__(self):
        """Pickled with the DoFn or handler holding it: a copy counts afresh (a lock does not pickle)."""
        return Progress, (self.done, self.every_seconds, self.clock)
