"""Train several architectures on one split and tabulate validation accuracy and training time.

    python -m training.compare --data data/imdb/train.parquet --out runs/compare \
        --arch lstm --arch cnn-lstm --bundle models/imdb-bilstm

Every architecture is trained by the same `training.train.train` with the same seed, fractions and
group column, so all share one validation split and one held-out calibration fold. `--bundle` adds
already trained bundles (such as the committed default) to the table; their manifests must show
the same data fingerprint. An architecture whose bundle already exists under --out is not trained
again, so an interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import pipeline.model.layers  # noqa: F401  (quiets TensorFlow, registers layers)
from pipeline.model.bundle import Bundle, BundleError
from schemas.bundle import METRICS_FILE
from training.architectures import ARCHITECTURES
from training.config import TrainingConfig
from training.train import train


def main(
    data: Annotated[Path, typer.Option(help="Labelled reviews (aclImdb folder or Parquet).")],
    out: Annotated[Path, typer.Option(help="Folder for one bundle per architecture and the results table.")],
    arch: Annotated[
        list[str] | None,
        typer.Option(help="Architecture to train (repeatable) [default: all, or none when --bundle is given]."),
    ] = None,
    bundle: Annotated[
        list[Path] | None, typer.Option(help="An already trained bundle to include (repeatable).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs per architecture.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed shared by every run (fixes the split).")] = 1337,
) -> None:
    bundles: list[Bundle] = [Bundle.open(b) for b in bundle or []]
    for name in arch or ([] if bundle else list(ARCHITECTURES)):
        target = out / name
        try:
            bundles.append(Bundle.open(target))
            print(f"{name}: reusing {target}")
            continue
        except BundleError:
            pass
        bundles.append(
            train(TrainingConfig(data=data, out=target, architecture=name, epochs=epochs, seed=seed, verbose=2))
        )

    fingerprints = {b.manifest.training_data["fingerprint"] for b in bundles}
    if len(fingerprints) > 1:
        raise SystemExit("bundles were trained on different data; their validation figures are not comparable")
    rows = []
    for b in bundles:
        report = json.loads((b.path / METRICS_FILE).read_text())
        held_out = report.get("calibration", {})
        pretraining = b.manifest.training_data.get("pretraining")
        rows.append(
            {
                "bundle_name": f"{b.manifest.name} {b.model_version}",
                "split": report.get("validation_split", {}).get("kind", "random"),
                "architecture": b.manifest.architecture["name"],
                "embedding": f"word2vec, {pretraining.get('embedding', 'fine-tuned')}" if pretraining else "random",
                "parameters": b.manifest.architecture["parameters"],
                "vocabulary": len(b.vocabulary.tokens),
                "validation_accuracy": report["validation"]["accuracy"],
                "validation_roc_auc": report["validation"]["roc_auc"],
                "heldout_accuracy": held_out.get("accuracy"),
                "heldout_ece_before": held_out.get("uncalibrated", {}).get("ece"),
                "heldout_ece_after": held_out.get("ece"),
                "calibration": held_out.get("method", "none"),
                "epochs_run": report["epochs_run"],
                "best_epoch": report["best_epoch"],
                "fit_seconds": report["fit_seconds"],
                "wall_seconds": report["wall_seconds"],
                "bundle": str(b.path),
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| bundle | architecture | embedding | words | split | val. accuracy | held-out accuracy | held-out ECE "
        "(before -> after) | epochs (best) | training time |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    lines += [
        f"| {r['bundle']} | `{r['architecture']}` | {r['embedding']} | {r['vocabulary']:,} | {r['split']} "
        f"| {r['validation_accuracy']:.4f} | {_figure(r['heldout_accuracy'])} "
        f"| {_figure(r['heldout_ece_before'])} -> {_figure(r['heldout_ece_after'])} ({r['calibration']}) "
        f"| {r['epochs_run']} ({r['best_epoch']}) | {r['wall_seconds'] / 60:.1f} min |"
        for r in rows
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    typer.run(main)
