"""`reviewscore export-onnx`: add model.onnx to a bundle that has none (training/onnx_export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Force, Verbose, console, fail, quiet_logging
from schemas.bundle import MANIFEST_FILE, ONNX_FILE, ONNX_FILES


def export_onnx(
    bundle: Annotated[
        Path, typer.Argument(metavar="BUNDLE", help="Model bundle directory to add model.onnx and occlusion.onnx to.")
    ],
    force: Force = False,
    verbose: Verbose = False,
) -> None:
    """Add model.onnx and occlusion.onnx to a bundle trained without them (needs TensorFlow; the model is unchanged).

    occlusion.onnx is the same model with its recurrent states open: `--explain` on ONNX Runtime
    reuses them instead of re-scoring every occluded review. A bundle that has them is left as it
    is unless --force; the same weights always give the same bytes."""
    quiet_logging(verbose)
    from pipeline.model.bundle import Bundle, BundleError, check_can_write

    try:
        opened = Bundle.open(bundle)
        check_can_write(opened, ONNX_FILES, force)  # before TensorFlow loads: a refusal needs none
        before = (opened.path / MANIFEST_FILE).read_bytes()
        from training.onnx_export import add_onnx

        updated = add_onnx(opened, force)
    except BundleError as e:
        fail(str(e))
    checked = updated.manifest.onnx["checked_against_keras"]
    unchanged = (updated.path / MANIFEST_FILE).read_bytes() == before
    console.print(
        f"wrote {updated.path / ONNX_FILE}: max |probability difference| to Keras "
        f"{checked['max_abs_probability_difference']:.1e} on {checked['rows']} probe reviews; "
        + ("manifest unchanged (the same bytes as before)" if unchanged else "manifest updated")
    )
    occlusion = updated.manifest.onnx.get("occlusion")
    if occlusion:
        console.print(
            f"wrote {updated.path / occlusion['file']}: max |logit difference| to model.onnx "
            f"{occlusion['max_abs_logit_difference']:.1e}"
        )
