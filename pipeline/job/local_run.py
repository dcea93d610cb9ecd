"""Running a job on this machine so that it stops cleanly: on SIGINT or SIGTERM, or when a worker dies.

Beam's DirectRunner runs a pipeline in the thread that calls `run()`. An interrupt raised there lands
inside Beam's bundle processing and comes out, after Beam's own clean-up, wrapped in its errors as
hundreds of lines; and a worker process (`--direct_running_mode multi_processing`) that dies is
reported only in one of Beam's threads, after which the runner waits forever for its work.

So the pipeline runs in a thread of its own, and the main thread, which Python hands every signal
to, only waits (`run_here`). Whatever ends the wait (the run returning, SIGINT or SIGTERM, a dead
worker) the main thread decides what it means: it ends the run's worker processes with SIGKILL,
which leaves them nothing to print, then returns the result or raises with one line for the user.

Threads that cannot be joined. A run stopped that way leaves Beam's threads behind, busy inside the
runner with work that will never finish; nothing can join them, and Python's normal exit could wait
on them. This module is the one place that deals with that: `exit_process` exits normally
(`sys.exit`, with Python's whole teardown) unless the job's thread is still running, and only then
ends the process at once (`_exit_now`), as the second of two signals does. Beam reports a dead
worker process only as an exception in one of its threads, so only while a run has worker processes
(`--direct_running_mode multi_processing`) does `run_here` watch threads' exceptions
(`threading.excepthook`), for that one message.

Cheap to import (the standard library only): the console entry point installs the signal handlers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from pipeline.job.beam_internals import WORKER_COMMAND, WORKER_EXITED
from schemas.exit_codes import exit_code_for_signal

__all__ = [
    "STOP_SIGNALS",
    "Interrupted",
    "Stopped",
    "WorkerDied",
    "exit_process",
    "raise_on_stop_signals",
    "run_here",
]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_WAKE_SECONDS = 0.5
JOB_THREAD = "reviewscore-job"

R = TypeVar("R")


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread.

    A BaseException, as KeyboardInterrupt is, so that no `except Exception` on its way up takes it for
    an error it can handle; and not a KeyboardInterrupt, which click turns into "Aborted!" and exit
    code 1 before the entry point could say more.
    """

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """As shells report a command the signal ended (schemas/exit_codes.py)."""
        return exit_code_for_signal(self.signum)


class Stopped(Exception):
    """A command that ended early on purpose, with its one line for the user and its exit code."""

    def __init__(self, line: str, exit_code: int, label: str = "error"):
        super().__init__(line)
        self.line, self.exit_code, self.label = line, exit_code, label


class WorkerDied(Exception):
    """A local worker process died before the run's output was complete."""


def raise_on_stop_signals() -> None:
    """Make SIGINT and SIGTERM raise Interrupted in the main thread (the console entry point, once).

    SIGTERM's own default ends the process on the spot, leaving worker processes behind to print
    their errors; SIGINT's, KeyboardInterrupt, is what click reports as "Aborted!". A second signal
    ends the process at once, whatever the first one's handling was doing.
    """

    def handler(signum: int, _frame) -> None:
        if handler.raised:  # a second signal while the first one's line is on its way: go now
            _exit_now(exit_code_for_signal(signum))
        handler.raised = True
        raise Interrupted(signum)

    handler.raised = False

    for stop in STOP_SIGNALS:
        signal.signal(stop, handler)


def exit_process(code: int) -> NoReturn:
    """End the process with `code`: normally, unless a stopped run left its threads running."""
    if any(thread.name == JOB_THREAD and thread.is_alive() for thread in threading.enumerate()):
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> NoReturn:
    """The one hard exit: Beam's threads of a stopped run cannot be joined (the module's docstring)."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def run_here(run: Callable[[], R], completed: Callable[[], bool], worker_processes: bool = False) -> R | None:
    """`run()` in a thread of its own, waited for by this (the main) thread: its result, or None
    where the run's output was complete (`completed()`) when a signal or a dead worker stopped it.

    Raises Interrupted (SIGINT or SIGTERM; a KeyboardInterrupt as well, where no handler was
    installed) or WorkerDied when the output was not complete, after ending the worker processes;
    and whatever `run()` raised, as it would have raised here. With `worker_processes`, a worker's
    death, which Beam reports only in one of its threads, ends the wait too.
    """
    watch = _Watch()
    thread = threading.Thread(target=watch.run, args=(run,), name=JOB_THREAD, daemon=True)
    previous_hook = threading.excepthook
    if worker_processes:
        threading.excepthook = watch.hook
    try:
        thread.start()
        while not watch.ended.wait(_WAKE_SECONDS):
            pass
    except KeyboardInterrupt:
        watch.stop()
        if completed():
            return None
        raise Interrupted(signal.SIGINT) from None
    except Interrupted:
        watch.stop()
        if completed():
            return None
        raise
    if watch.died is not None:
        watch.stop()
        if completed():
            return None
        raise WorkerDied(watch.died)
    threading.excepthook = previous_hook  # stopped runs keep the hook: Beam's threads may still report
    if watch.error is not None:
        raise watch.error
    return watch.result


class _Watch:
    """What the main thread waits for: the run's end (a result or an error) or a worker's death."""

    def __init__(self):
        self.ended = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.died: str | None = None
        self.stopping = False
        self.fallback = threading.excepthook

    def run(self, run: Callable) -> None:
        try:
            self.result = run()
        except BaseException as e:  # handed to the main thread, which raises it
            self.error = e
        finally:
            self.ended.set()

    def hook(self, args) -> None:
        """threading.excepthook while the run lasts: a worker's death ends the wait, and is not
        printed (once stopping, Beam's threads report the deaths of the workers this ended);
        anything else goes to the hook that was there before."""
        if isinstance(args.exc_value, RuntimeError) and WORKER_EXITED in str(args.exc_value):
            if not self.stopping and self.died is None:
                self.died = str(args.exc_value)
                self.ended.set()
            return
        self.fallback(args)

    def stop(self) -> None:
        self.stopping = True
        end_worker_processes()


def end_worker_processes() -> None:
    """SIGKILL the Beam worker processes this one started (and the shells that started them): they
    print nothing. Only those: anything else this process started is not the run's to end."""
    for pid in _descendants(os.getpid(), WORKER_COMMAND):
        with contextlib.suppress(OSError):  # already gone
            os.kill(pid, signal.SIGKILL)


def _descendants(pid: int, command: str) -> list[int]:
    """The processes below `pid` whose command line names `command`."""
    processes = _processes()
    found, frontier = [], {pid}
    while frontier:
        children = {child for child, (parent, _) in processes.items() if parent in frontier}
        found += [child for child in children if command in processes[child][1]]
        frontier = children
    return found


def _processes() -> dict[int, tuple[int, str]]:
    """Every process's parent and command line: from /proc where there is one (Linux), else `ps`."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            listing = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        except OSError:
            return {}
        rows = (line.split(None, 2) for line in listing.splitlines() if line.strip())
        return {int(row[0]): (int(row[1]), row[2] if len(row) > 2 else "") for row in rows}
    processes = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):  # gone meanwhile
                # the fields after the command's name, which may hold spaces and parentheses
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                processes[int(entry.name)] = (parent, command)
    return processes
