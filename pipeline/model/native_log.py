"""TensorFlow's load-time log lines, held to the level TF_CPP_MIN_LOG_LEVEL asks for.

TensorFlow's native libraries log while they load, before absl's logging is set up, and those lines
ignore TF_CPP_MIN_LOG_LEVEL: every `import tensorflow` prints "oneDNN custom operations are on"
(an I line) under "All log messages before absl::InitializeLog() is called are written to STDERR",
whatever the level. So while TensorFlow loads, file descriptor 2 points at a temporary file; then
what was written there goes to stderr, less the absl lines below the level (and their preamble when
none is kept). Other lines, from other threads or from Python, pass unchanged, only later.

`quiet_tensorflow()` sets the level and puts the filter first on `sys.meta_path`; the filter acts on
the `tensorflow` package alone, and not at all at level 0 (`--verbose`, or a user's own 0). Whoever
owns the process calls it before TensorFlow loads: the CLI before every command, a worker before it
loads a model. Importing this module (or any other) changes nothing: a notebook that uses the model
library keeps TensorFlow's own logging unless it calls `quiet_tensorflow()` too.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["QUIET_LEVEL", "LoadLogFilter", "install", "kept_lines", "level_asked", "quiet_tensorflow"]

PACKAGE = "tensorflow"
SEVERITIES = "IWEF"
"""absl's severities, in the order TF_CPP_MIN_LOG_LEVEL counts them: 0 shows I lines and up, 3 only F."""
ABSL_LINE = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+\] ")
"""An absl record's first line; before absl is set up, its seconds field counts from the epoch."""
PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "3"
"""TensorFlow's native logging (C++ and absl, straight to stderr, past Python's logging) is noise for a
batch job, and some of it is logged as an error: "oneDNN supports DT_BOOL only on platforms with
AVX-512" is an E line (tensorflow/core/util/util.cc) on CPUs without AVX-512. Level 3 keeps only
fatal lines."""
_user_level: list[str | None] = []
"""The level the process had before `quiet_tensorflow` first set one (empty until then)."""


def level_asked() -> int:
    try:
        return int(os.environ.get(LEVEL_VARIABLE, "0"))
    except ValueError:
        return 0


def kept_lines(text: str, level: int) -> str:
    """`text` without its absl records below `level` (a record's further lines go with it); the
    preamble stays only before a record that stays."""
    kept, preamble, keeping = [], None, True
    for line in text.splitlines(keepends=True):
        if line.startswith(PREAMBLE):
            preamble, keeping = line, True
        elif ABSL_LINE.match(line):
            keeping = SEVERITIES.index(line[0]) >= level
            if keeping and preamble:
                kept.append(preamble)
            preamble = None
            kept.extend([line] if keeping else [])
        elif keeping:
            kept.append(line)
    return "".join(kept)


@contextmanager
def filtered_stderr(level: int) -> Iterator[None]:
    """Everything written to file descriptor 2 meanwhile, written after, filtered by `kept_lines`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            shown = kept_lines(held.read().decode("utf-8", "replace"), level)
            if shown:
                os.write(2, shown.encode("utf-8"))


class LoadLogFilter(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` through the finders after it and loads it inside `filtered_stderr`."""

    def find_spec(self, name, path=None, target=None):
        if name != PACKAGE or level_asked() == 0:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module):
            with filtered_stderr(level_asked()):
                execute(module)

        loader.exec_module = exec_module  # this spec's own loader, made for this lookup
        return spec


def quiet_tensorflow(verbose: bool = False) -> None:
    """TensorFlow's native log level for this process and the workers that inherit its environment:
    QUIET_LEVEL, or 0 when `verbose`; a level the user set is kept. Takes effect only before
    TensorFlow loads; safe to call again (the CLI calls it quiet, then with a command's --verbose)."""
    if not _user_level:
        _user_level.append(os.environ.get(LEVEL_VARIABLE))
    if _user_level[0] is None:
        os.environ[LEVEL_VARIABLE] = "0" if verbose else QUIET_LEVEL
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    install()


def install() -> None:
    if not any(isinstance(finder, LoadLogFilter) for finder in sys.meta_path):
        sys.meta_path.insert(0, LoadLogFilter())
