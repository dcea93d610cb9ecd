"""The Typer app: every command, in the order --help lists them, and the console entry point."""

from __future__ import annotations

import platform
import sys
from typing import Annotated

import typer

import pipeline
from pipeline.cli import data, evaluate, explain, export_onnx, info, profile, score, train
from pipeline.cli.common import quiet_logging, say
from pipeline.cli.help_style import HELP_OPTIONS, Command
from pipeline.job.local_run import Interrupted, Stopped, exit_process, raise_on_stop_signals
from pipeline.model.extras import MissingExtra, missing_extra
from schemas.exit_codes import EXIT_CONFIG_ERROR

app = typer.Typer(
    name="reviewscore",
    help="Batch sentiment scoring of reviews with a trained LSTM bundle.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    # Click's plain help: at 80 columns every option name stays whole and the help wraps beside it,
    # where Rich's option table cuts long names; errors keep the same plain form.
    rich_markup_mode=None,
    context_settings=HELP_OPTIONS,
)


def versions() -> str:
    """reviewscore's version with Beam's and Python's, read from package metadata (no Beam import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        beam = version("apache-beam")
    except PackageNotFoundError:
        beam = "not installed"
    return f"reviewscore {pipeline.__version__} (apache-beam {beam}, Python {platform.python_version()})"


def print_version(asked: bool) -> None:
    if asked:
        print(versions())
        raise typer.Exit()


@app.callback()
def every_command(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=print_version, is_eager=True, help="Print the versions and exit."),
    ] = False,
) -> None:
    """Batch sentiment scoring of reviews with a trained LSTM bundle."""
    quiet_logging(verbose=False)  # a command's --verbose loosens it again


# Each command's line in `reviewscore --help` (its docstring's first sentence is too long for 80 columns),
# in the order a user needs them: score and judge reviews first, then get data, train and maintain bundles.
app.command(cls=Command, short_help="Score reviews with a model bundle on Beam.")(score.score)
app.command(cls=Command, short_help="Measure a bundle on labelled reviews.")(evaluate.evaluate)
app.command(cls=Command, short_help="Show which words pushed a review towards its label.")(explain.explain)
app.command(cls=Command, short_help="Describe a model bundle.")(info.info)
app.command(cls=Command, short_help="Download a public dataset, checksum-verified.")(data.data)
app.command(cls=Command, short_help="Train a model and write it as a bundle.")(train.train)
app.command(cls=Command, short_help="Add a training profile to a bundle.")(profile.profile)
app.command("export-onnx", cls=Command, short_help="Add model.onnx to a bundle that has none.")(export_onnx.export_onnx)


def main() -> None:
    """Console entry point: everything after a bare `--` is handed to Beam as pipeline options.

    The last line of defence too: SIGINT and SIGTERM (exit codes 130 and 143), a run stopped on
    purpose (its own code) and a missing optional part (2, naming the extra to install) end here as
    one line each, whichever command met them, never as a traceback.
    """
    argv = sys.argv[1:]
    beam_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, beam_args = argv[:split], argv[split + 1 :]
    raise_on_stop_signals()
    try:
        app(args=argv, obj={"beam_args": beam_args}, prog_name="reviewscore")
        code = 0
    except SystemExit as e:  # Click ends every command this way, success included
        code = e.code
    except Interrupted as e:
        say(f"interrupted by {e.name}", "the command stopped before it finished")
        code = e.exit_code
    except Stopped as e:
        say(e.label, e.line)
        code = e.exit_code
    except (ImportError, MissingExtra) as e:  # the commands that do not check for their extra first
        missing = e if isinstance(e, MissingExtra) else missing_extra(e)
        if missing is None:
            raise
        say("error", str(missing))
        code = EXIT_CONFIG_ERROR
    exit_process(code)
