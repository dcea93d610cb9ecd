"""`reviewscore evaluate`: accuracy, calibration and plots of a bundle on labelled reviews."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.common import DEFAULT_MODEL, Verbose, console, errors, fail, quiet_logging
from schemas.output_names import MODEL_VERSION, PREDICTIONS_FILE, REVIEW_ID, TEXT
from training.config import TrainingConfig


def evaluate(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUTS",
            show_default=False,
            help="Labelled reviews: Parquet files, folders of them (found recursively), folders with pos/ and "
            "neg/ review files, aclImdb's root (its test/ part is read), or globs.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            help=f"Folder for metrics.json, {PREDICTIONS_FILE} (one row per review), confusion_matrix.png, "
            "reliability_diagram.png, and for binary bundles roc_curve.png and score_histogram.png."
        ),
    ],
    model: Annotated[str, typer.Option(help="Model bundle folder.")] = DEFAULT_MODEL,
    text_column: Annotated[str, typer.Option(help="Text column of Parquet inputs.")] = TEXT,
    label_column: Annotated[
        str, typer.Option(help="Label column of Parquet inputs: the bundle's class names or their indices.")
    ] = TrainingConfig.label_column,
    id_column: Annotated[
        str, typer.Option(help="Id column of Parquet inputs; when absent, ids are FILE:ROW.")
    ] = REVIEW_ID,
    verbose: Verbose = False,
) -> None:
    """Score labelled reviews and report accuracy, macro-F1, per-class precision and recall, the confusion
    matrix, calibration (ECE, Brier), ROC AUC for binary bundles and the mean class error for ordinal ones;
    warn when the reviews overlap the bundle's training data."""
    quiet_logging(verbose)
    from pipeline.bundle import BundleError
    from training.datasets import DatasetError
    from training.evaluation import evaluate_bundle

    try:
        evaluation = evaluate_bundle(model, inputs, output, text_column, label_column, id_column)
    except (BundleError, DatasetError) as e:
        fail(str(e))
    metrics = evaluation.metrics
    console.print(per_class_table(metrics))
    console.print(confusion_table(metrics))
    auc = metrics.get("roc_auc", False)
    extras = [] if auc is False else [f"ROC AUC {auc:.4f}" if auc is not None else "ROC AUC n/a (one class only)"]
    if "mean_absolute_class_error" in metrics:
        extras.append(f"mean absolute class error {metrics['mean_absolute_class_error']:.3f}")
    console.print(
        f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        + "".join(f"{extra}, " for extra in extras)
        + f"ECE {metrics['ece']:.4f} ({metrics['ece_bins']} bins), Brier {metrics['brier']:.4f}\n"
        f"output: {output} ({PREDICTIONS_FILE}: one row per review)",
        soft_wrap=True,
    )
    warning = evaluation.overlap.warning()
    if warning:
        errors.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    else:
        errors.print(evaluation.overlap.note(), highlight=False, soft_wrap=True)


def per_class_table(metrics: dict) -> Table:
    table = Table(title=f"{metrics['examples']:,} reviews, model {metrics[MODEL_VERSION]}", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "reviews"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        table.add_row(
            name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", f"{row['support']:,}"
        )
    return table


def confusion_table(metrics: dict) -> Table:
    """The confusion matrix: a row per true class, a column per predicted class, counts of reviews."""
    names = list(metrics["per_class"])
    table = Table(title="confusion matrix", title_justify="left")
    table.add_column("true \\ predicted", style="bold")
    for name in names:
        table.add_column(name, justify="right")
    for name, row in zip(names, metrics["confusion_matrix"]["values"], strict=True):
        table.add_row(name, *(f"[bold]{n:,}[/]" if i == names.index(name) else f"{n:,}" for i, n in enumerate(row)))
    return table
