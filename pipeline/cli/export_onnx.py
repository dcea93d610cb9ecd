"""`reviewscore export-onnx`: add model.onnx to a bundle that has none (training/onnx_export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Verbose, console, fail, quiet_logging
from schemas.bundle import ONNX_FILE


def export_onnx(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="Model bundle directory to add model.onnx to.")],
    verbose: Verbose = False,
) -> None:
    """Add model.onnx to a bundle trained before it was exported (needs TensorFlow; the model is unchanged)."""
    quiet_logging(verbose)
    from pipeline.bundle import BundleError
    from training.onnx_export import add_onnx

    try:
        updated = add_onnx(bundle)
    except BundleError as e:
        fail(str(e))
    checked = updated.manifest.onnx["checked_against_keras"]
    console.print(
        f"wrote {updated.path / ONNX_FILE}: max |probability difference| to Keras "
        f"{checked['max_abs_probability_difference']:.1e} on {checked['rows']} probe reviews; manifest updated"
    )
