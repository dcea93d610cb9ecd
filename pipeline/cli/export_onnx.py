"""`reviewscore export-onnx`: add model.onnx to a bundle that has none (training/onnx_export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Verbose, console, fail, quiet_logging
from schemas.bundle import ONNX_FILE


def export_onnx(
    bundle: Annotated[
        Path, typer.Argument(metavar="BUNDLE", help="Model bundle directory to add model.onnx and occlusion.onnx to.")
    ],
    verbose: Verbose = False,
) -> None:
    """Add model.onnx and occlusion.onnx to a bundle trained without them (needs TensorFlow; the model is unchanged).

    occlusion.onnx is the same model with its recurrent states open: `--explain` on ONNX Runtime
    reuses them instead of re-scoring every occluded review."""
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
    occlusion = updated.manifest.onnx.get("occlusion")
    if occlusion:
        console.print(
            f"wrote {updated.path / occlusion['file']}: max |logit difference| to model.onnx "
            f"{occlusion['max_abs_logit_difference']:.1e}"
        )
