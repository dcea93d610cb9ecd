"""`reviewscore info`: what a bundle holds, read from its manifest (no model is loaded: instant)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import console, describe, fail


def info(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON instead of a table.")] = False,
) -> None:
    """Describe a model bundle: architecture, vocabulary, preprocessing, metrics, data and checksums."""
    from pipeline.bundle import Bundle, BundleError

    try:
        opened = Bundle.open(bundle)
    except BundleError as e:
        fail(str(e))
    manifest = opened.manifest
    if as_json:
        print(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{manifest.name} {manifest.version}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("bundle", str(opened.path))
    table.add_row("format", f"version {manifest.format_version} (checksums verified)")
    table.add_row("created", manifest.created)
    table.add_row("architecture", describe(manifest.architecture))
    table.add_row("classes", ", ".join(manifest.class_names))
    table.add_row("vocabulary", f"{len(opened.vocabulary.tokens)} words + padding and unknown ids")
    table.add_row("preprocessing", describe(opened.preprocessing.to_dict()))
    table.add_row("calibration", _describe_calibration(opened.calibration, len(manifest.class_names)))
    table.add_row("scoring engine", _engine_for(opened))
    table.add_row("training profile", _describe_profile(opened.profile))
    table.add_row("metrics", describe(manifest.metrics))
    table.add_row("training data", describe(manifest.training_data))
    table.add_row("files", "\n".join(f"{digest[:16]}…  {name}" for name, digest in manifest.files.items()))
    console.print(table)


def _describe_calibration(calibration, classes: int) -> str:
    """The calibration as a formula over the model's logits: one sigmoid logit for two classes, K softmax logits."""
    own = "sigmoid" if classes == 2 else "softmax"
    if calibration.method == "none":
        return f"none: scores are the model's own {own}"
    t = calibration.temperature
    formula = (
        f"temperature {t:.4f}: probabilities = {own}(logit{'s' if classes > 2 else ''} / {t:.4f})"
        if calibration.method == "temperature"
        else f"Platt: score = sigmoid({calibration.slope:.4f} * logit + {calibration.intercept:.4f})"
    )
    details = calibration.details
    if "before" in details and "after" in details:
        formula += (
            f"\nECE of score ({details.get('ece_bins', '?')} bins) where it was fitted: "
            f"{details['before']['ece']:.4f} before, {details['after']['ece']:.4f} after"
        )
    return formula


def _describe_profile(profile) -> str:
    if profile is None:
        return "none: runs report drift as not checked (add one with `reviewscore profile`)"
    return f"{profile.statistics.reviews:,} reviews: {profile.source.get('part')} of {profile.source.get('data')}"


def _engine_for(bundle) -> str:
    """Which engines can score the bundle, from its manifest (no model is loaded: info stays instant)."""
    from pipeline.scorer import XLA_FROM_REVIEWS

    onnx = bundle.manifest.onnx or {}
    if bundle.has_onnx:
        checked = onnx.get("checked_against_keras", {})
        difference = checked.get("max_abs_probability_difference")
        agreement = f", {difference:.1e} from Keras at export" if difference is not None else ""
        return (
            f"onnx (model.onnx, ONNX Runtime, no TensorFlow{agreement}) for jobs under {XLA_FROM_REVIEWS:,} "
            "reviews or without TensorFlow; xla from there on (checked against Keras when a job loads it)"
        )
    why = onnx.get("unsupported", "exported before reviewscore wrote model.onnx; run `reviewscore export-onnx`")
    return f"xla or keras, needs TensorFlow (no model.onnx: {why})"
