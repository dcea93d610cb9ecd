"""`reviewscore info`: what a bundle holds, read from its manifest (no model is loaded: instant)."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import console, describe, fail


def info(
    bundle: Annotated[str, typer.Argument(metavar="BUNDLE", help="Model bundle folder (local or gs://).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON instead of a table.")] = False,
) -> None:
    """Describe a model bundle: architecture, vocabulary, preprocessing, metrics, data and checksums."""
    from pipeline.job.locations import read_file
    from pipeline.model.bundle import BundleError, open_bundle

    try:
        opened = open_bundle(bundle, read_file)
    except BundleError as e:
        fail(str(e))
    manifest = opened.manifest
    if as_json:
        print(json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{manifest.name} {manifest.version}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("bundle", bundle if "://" in bundle else str(opened.path))
    table.add_row("format", f"version {manifest.format_version} (checksums verified)")
    table.add_row("created", manifest.created)
    table.add_row("architecture", describe(manifest.architecture))
    table.add_row("classes", ", ".join(manifest.class_names))
    table.add_row("vocabulary", f"{len(opened.vocabulary.tokens)} words + padding and unknown ids")
    table.add_row("preprocessing", describe(opened.preprocessing.model_dump()))
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
    """Which engines can score the bundle, from its manifest and the engine registry (no model is
    loaded: info stays instant)."""
    from pipeline.model.engines.choice import auto_ladder
    from pipeline.model.engines.registry import ENGINES

    files = bundle.manifest.files
    ladder = auto_ladder()
    missing = [e.bundle_file.name for e in ladder if e.bundle_file and e.bundle_file.name not in files]
    if missing:
        runnable = [e for e in ENGINES.values() if not e.bundle_file or e.bundle_file.name in files]
        needs = " and ".join(dict.fromkeys(e.module.title for e in runnable if e.module))
        why = (bundle.manifest.onnx or {}).get(
            "unsupported", "exported before reviewscore wrote model.onnx; run `reviewscore export-onnx`"
        )
        return f"{' or '.join(e.name for e in runnable)}, needs {needs} (no {', '.join(missing)}: {why})"
    steps = [
        f"{engine.name} ({_checked(engine, bundle)}) for jobs under {following.auto_from_reviews:,} reviews"
        + (f" or without {following.module.title}" if following.module else "")
        for engine, following in pairwise(ladder)
    ]
    return "; ".join([*steps, f"{ladder[-1].name} from there on ({_checked(ladder[-1], bundle)})"])


def _checked(engine, bundle) -> str:
    """How the engine is known to reproduce the Keras model: a bundle file's engine by the check
    recorded at export, the others when a job loads them."""
    if engine.bundle_file is None:
        return "checked against Keras when a job loads it"
    checked = (bundle.manifest.onnx or {}).get("checked_against_keras", {})
    difference = checked.get("max_abs_probability_difference")
    agreement = f", {difference:.1e} from Keras at export" if difference is not None else ""
    return f"{engine.bundle_file.name}, {engine.description}{agreement}"
