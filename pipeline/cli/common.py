"""What every command shares: the consoles, the default model and cache folders, the one way a
configuration mistake ends (exit code 2, one line, no traceback, in the caller's words), quiet
logging, and the process exit."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.job.options import DEFAULT_MODEL, default_model
from pipeline.model.native_log import quiet_tensorflow
from schemas.exit_codes import EXIT_CONFIG_ERROR

__all__ = [
    "CALLER_FLAGS",
    "DEFAULT_MODEL",
    "EXIT_CONFIG_ERROR",
    "Force",
    "Verbose",
    "console",
    "describe",
    "errors",
    "fail",
    "in_callers_words",
    "link",
    "model_or_default",
    "quiet_logging",
    "say",
]

console = Console()
errors = Console(stderr=True)
CALLER_FLAGS = "REVIEWSCORE_CALLER_FLAGS"
"""The environment variable through which a wrapper whose users set variables rather than flags (the
Makefile's `make score OVERWRITE=1`) says how they spell each flag: space-separated FLAG=SPELLING
pairs, `--overwrite=OVERWRITE=1 --model=MODEL=`; a spelling that ends in `=` takes the flag's value."""


def fail(message: str) -> NoReturn:
    say("error", message)
    raise typer.Exit(EXIT_CONFIG_ERROR)


def say(label: str, message: str) -> None:
    """One line on stderr, `label: message`, with the flags it names in the caller's words."""
    # escaped: paths and install commands hold brackets (`'.[gcp]'`) that Rich would read as markup
    errors.print(f"[bold red]{label}:[/] {escape(in_callers_words(message))}", highlight=False, soft_wrap=True)


def in_callers_words(message: str) -> str:
    """`message` with each flag the caller spells otherwise (CALLER_FLAGS) in their spelling:
    "pass --overwrite" reads "pass OVERWRITE=1" under make, "--model PATH" reads "MODEL=PATH"."""
    for pair in os.environ.get(CALLER_FLAGS, "").split():
        flag, _, spelling = pair.partition("=")
        if not flag.startswith("--") or not spelling:
            continue
        if spelling.endswith("="):  # the flag's value follows, after a space or its own `=`
            message = re.sub(rf"(?<![\w-]){re.escape(flag)}[ =]", lambda _, s=spelling: s, message)
        else:
            message = re.sub(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", lambda _, s=spelling: s, message)
    return message


def model_or_default(model: str) -> str:
    """`--model` as given; the default bundle where this install has it (pipeline/job/options.py,
    `default_model`), which the run's lineage then records; otherwise one line saying where it is."""
    if model != DEFAULT_MODEL:
        return model
    found = default_model()
    if found is None:
        fail(
            f"no --model given, and the default bundle {DEFAULT_MODEL} is not here: it comes with the reviewscore "
            "repository (its models/ folder), not with the installed package; pass --model PATH to a bundle folder"
        )
    return found


Verbose = Annotated[
    bool, typer.Option("--verbose/--no-verbose", "-v", help="Show TensorFlow's, Keras' and Beam's own log lines.")
]
"""`--verbose`, on every command that may load TensorFlow or run Beam."""

Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Rewrite the files this command writes even if the bundle already has them (its manifest's checksum, "
        "which every run records, changes if their bytes do).",
    ),
]
"""`--force`, on every command that writes into a model bundle: a bundle is immutable once written unless asked."""


def quiet_logging(verbose: bool) -> None:
    """Keep the terminal for our own lines: Beam, TensorFlow and Keras chatter only with --verbose.

    The app applies it (quiet) before every command, and a command with --verbose again with its
    value; both run before TensorFlow or Beam is imported, so TensorFlow's native log level
    (`native_log.quiet_tensorflow`, which also holds its load-time lines to it) takes effect, in this
    process and in the worker processes that inherit its environment. Keras warns through Python's warnings
    (e.g. that `shuffle` does nothing for a tf.data dataset), which are not a user's to act on.
    """
    quiet_tensorflow(verbose)
    warnings.filterwarnings("default" if verbose else "ignore", module=r"(keras|tensorflow|absl)(\.|$)")
    logging.getLogger().setLevel(logging.INFO if verbose else logging.ERROR)
    progress = logging.getLogger("reviewscore")
    progress.setLevel(logging.INFO)
    if not progress.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        progress.addHandler(handler)
    for handler in progress.handlers:
        # the stderr of this command: a caller that swaps sys.stderr between commands (Click's test
        # runner, an embedding program) would otherwise have our lines written to a closed stream
        # (assigned, not setStream, which would first flush the stream it replaces, closed by then)
        if type(handler) is logging.StreamHandler:
            handler.stream = sys.stderr
    progress.propagate = False


def link(path: str) -> str:
    """A local file as a file:// URI, which terminals open on click; remote paths as they are."""
    return path if "://" in path else Path(path).resolve().as_uri()


def describe(values: dict, prefix: str = "") -> str:
    """One line per setting; nested settings as dotted keys (heldout.accuracy: 0.9081)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, dict):
            lines.append(describe(value, f"{prefix}{key}."))
        else:
            lines.append(f"{prefix}{key}: {round(value, 4) if isinstance(value, float) else value}")
    return "\n".join(line for line in lines if line)
