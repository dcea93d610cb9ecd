"""The Typer app: every command, in the order --help lists them, and the console entry point."""

from __future__ import annotations

import sys

import typer

from pipeline.cli import evaluate, explain, export_onnx, info, profile, score, train
from pipeline.cli.common import exit_without_teardown

app = typer.Typer(
    name="reviewscore",
    help="Batch sentiment scoring of reviews with a trained LSTM bundle.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.command()(train.train)
app.command()(info.info)
app.command()(profile.profile)
app.command()(explain.explain)
app.command("export-onnx")(export_onnx.export_onnx)
app.command(context_settings={"help_option_names": ["-h", "--help"]})(score.score)
app.command()(evaluate.evaluate)


def main() -> None:
    """Console entry point: everything after a bare `--` is handed to Beam as pipeline options."""
    argv = sys.argv[1:]
    beam_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, beam_args = argv[:split], argv[split + 1 :]
    try:
        app(args=argv, obj={"beam_args": beam_args}, prog_name="reviewscore")
        code = 0
    except SystemExit as e:  # Click ends every command this way, success included
        code = e.code
    exit_without_teardown(code)
