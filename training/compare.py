"""Train several architectures on one split and tabulate validation accuracy and training time.

    python -m training.compare --data ../shared/data/imdb/train.parquet --out runs/compare \
        --arch lstm --arch cnn-lstm --bundle models/imdb-bilstm

Every architecture is trained by the same `training.train.train` with the same seed and validation
fraction, so all share one validation split. `--bundle` adds already trained bundles (such as the
committed default) to the table; their manifests must show the same data fingerprint. An
architecture whose bundle already exists under --out is not trained again, so an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import pipeline  # noqa: F401  (quiets TensorFlow, registers layers)
from pipeline.bundle import Bundle, BundleError
from schemas.bundle import METRICS_FILE
from training.architectures import ARCHITECTURES
from training.train import TrainingConfig, train


def main(
    data: Annotated[Path, typer.Option(help="Labelled reviews (aclImdb folder or Parquet).")],
    out: Annotated[Path, typer.Option(help="Folder for one bundle per architecture and the results table.")],
    arch: Annotated[list[str] | None, typer.Option(help="Architecture to train (repeatable) [default: all].")] = None,
    bundle: Annotated[
        list[Path] | None, typer.Option(help="An already trained bundle to include (repeatable).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs per architecture.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed shared by every run (fixes the split).")] = 1337,
) -> None:
    bundles: list[Bundle] = [Bundle.open(b) for b in bundle or []]
    for name in arch or list(ARCHITECTURES):
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
        rows.append(
            {
                "architecture": b.manifest.architecture["name"],
                "parameters": b.manifest.architecture["parameters"],
                "vocabulary": len(b.vocabulary.tokens),
                "validation_accuracy": report["validation"]["accuracy"],
                "validation_roc_auc": report["validation"]["roc_auc"],
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
        "| architecture | parameters | words | val. accuracy | val. ROC AUC | epochs (best) | training time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| `{r['architecture']}` | {r['parameters']:,} | {r['vocabulary']:,} | {r['validation_accuracy']:.4f} "
        f"| {r['validation_roc_auc']:.4f} | {r['epochs_run']} ({r['best_epoch']}) | {r['wall_seconds'] / 60:.1f} min |"
        for r in rows
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
