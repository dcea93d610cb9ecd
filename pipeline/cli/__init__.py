"""The `reviewscore` command line: one Typer app for training, inspecting and scoring.

Heavy imports (TensorFlow, Beam) happen inside the commands, so `reviewscore --help` is instant.
Configuration mistakes exit with code 2 and one clear message, never a traceback.

One module per command; `app.py` assembles them and holds the console entry point.
"""

from pipeline.cli.app import app, main
from pipeline.cli.common import quiet_logging

__all__ = ["app", "main", "quiet_logging"]
