"""`reviewscore evaluate`: accuracy, calibration and plots of a bundle on labelled reviews."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import DEFAULT_MODEL, console, fail
from schemas.output_names import MODEL_VERSION


def evaluate(
    input: Annotated[
        Path,
        typer.Option(help="Labelled reviews: aclImdb folder (test/ is read), a folder with pos/ and neg/, or Parquet."),
    ],
    report: Annotated[
        Path,
        typer.Option(
            help="Folder for metrics.json, confusion_matrix.png, reliability_diagram.png, and for binary bundles "
            "roc_curve.png and score_histogram.png."
        ),
    ],
    model: Annotated[str, typer.Option(help="Model bundle folder.")] = DEFAULT_MODEL,
    text_column: Annotated[str, typer.Option(help="Text column, for Parquet data.")] = "text",
    label_column: Annotated[
        str, typer.Option(help="Label column (the bundle's class names or their indices), for Parquet data.")
    ] = "label",
) -> None:
    """Score labelled reviews and report accuracy, macro-F1, per-class precision and recall, the confusion
    matrix, calibration (ECE, Brier), ROC AUC for binary bundles and the mean class error for ordinal ones."""
    from pipeline.bundle import BundleError
    from training.datasets import DatasetError
    from training.evaluation import evaluate_bundle

    try:
        metrics = evaluate_bundle(model, input, report, text_column, label_column)
    except (BundleError, DatasetError) as e:
        fail(str(e))
    table = Table(title=f"{metrics['examples']:,} reviews, model {metrics[MODEL_VERSION]}", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "reviews"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        table.add_row(
            name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", f"{row['support']:,}"
        )
    console.print(table)
    extras = [f"ROC AUC {metrics['roc_auc']:.4f}"] if "roc_auc" in metrics else []
    if "mean_absolute_class_error" in metrics:
        extras.append(f"mean absolute class error {metrics['mean_absolute_class_error']:.3f}")
    console.print(
        f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        + "".join(f"{extra}, " for extra in extras)
        + f"ECE {metrics['ece']:.4f} ({metrics['ece_bins']} bins), Brier {metrics['brier']:.4f}\n"
        f"confusion matrix ({metrics['confusion_matrix']['rows']} by predicted): "
        f"{metrics['confusion_matrix']['values']}\nreport: {report}"
    )
