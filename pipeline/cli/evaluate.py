"""`reviewscore evaluate`: accuracy, calibration and plots of a bundle on labelled reviews."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pipeline.cli.common import DEFAULT_MODEL, Verbose, console, errors, fail, model_or_default, quiet_logging
from schemas.bundle import METRICS_FILE
from schemas.output_names import (
    CONFUSION_PLOT_FILE,
    EVALUATION_PAGE_FILE,
    MODEL_VERSION,
    PREDICTIONS_FILE,
    RELIABILITY_PLOT_FILE,
    REVIEW_ID,
    ROC_PLOT_FILE,
    SCORE_HISTOGRAM_FILE,
    SHADOW_PREDICTED_LABEL,
    SHADOW_SCORE,
    TEXT,
)
from training.config import TrainingConfig

if TYPE_CHECKING:
    from training.evaluation import Evaluation


def evaluate(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            show_default=False,
            help="Labelled reviews: Parquet files, folders of them (found recursively), folders with pos/ and "
            "neg/ review files, aclImdb's root (its test/ part is read), or globs.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            help=f"Folder for {METRICS_FILE}, {PREDICTIONS_FILE} (one row per review), {EVALUATION_PAGE_FILE} "
            f"(the metrics and every plot on one page), the plots as SVG: {CONFUSION_PLOT_FILE}, "
            f"{RELIABILITY_PLOT_FILE}, and for binary bundles {ROC_PLOT_FILE} and {SCORE_HISTOGRAM_FILE}. "
            "It must be empty or new unless --overwrite.",
        ),
    ],
    model: Annotated[str, typer.Option(metavar="BUNDLE", help="Model bundle folder; local or gs://.")] = DEFAULT_MODEL,
    shadow_model: Annotated[
        str | None,
        typer.Option(
            metavar="BUNDLE",
            show_default=False,
            help=f"A second bundle with the model's class names that scores the same reviews, with its own "
            f"preprocessing and vocabulary: {METRICS_FILE} gains its metrics (shadow) and McNemar's test on the "
            f"reviews exactly one of the two labels right (comparison), {PREDICTIONS_FILE} its "
            f"{SHADOW_PREDICTED_LABEL} and {SHADOW_SCORE}; both models' metrics are printed side by side "
            "[default: none].",
        ),
    ] = None,
    text_column: Annotated[str, typer.Option(metavar="COLUMN", help="Text column of Parquet inputs.")] = TEXT,
    label_column: Annotated[
        str,
        typer.Option(
            metavar="COLUMN",
            help="Label column of Parquet inputs: the bundle's class names, or their indices 0 to K-1 if every "
            "index occurs (with two classes, any of 0 and 1). Integer labels taking fewer values are refused: "
            "0/1 labels are binary, not a five-class bundle's first two classes.",
        ),
    ] = TrainingConfig.label_column,
    id_column: Annotated[
        str, typer.Option(metavar="COLUMN", help="Id column of Parquet inputs; when absent, ids are FILE:ROW.")
    ] = REVIEW_ID,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Write into a non-empty output folder: the evaluation's files are replaced, other files stay.",
        ),
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Score labelled reviews and report accuracy, macro-F1, per-class precision and recall, the confusion
    matrix, calibration (ECE, Brier), ROC AUC for binary bundles and the mean class error for ordinal ones;
    warn when the reviews overlap the bundle's training data. With --shadow-model, compare a second bundle
    on the same reviews: both models' metrics side by side and McNemar's test of the difference."""
    quiet_logging(verbose)
    model = model_or_default(model)
    from pipeline.job.locations import OutputError, read_file
    from pipeline.model.bundle import BundleError
    from pipeline.model.progress import report_progress
    from training.datasets import DatasetError
    from training.evaluation import evaluate_bundle

    try:
        with report_progress("evaluating") as progress:
            evaluation = evaluate_bundle(
                model, inputs, output, text_column, label_column, id_column, overwrite, progress, check_output,
                shadow_model, read_file,
            )  # fmt: skip
    except (BundleError, DatasetError, OutputError) as e:
        fail(str(e))
    show(evaluation, output)


def show(evaluation: Evaluation, output: Path) -> None:
    """What the command prints: the model's tables and headline figures, the shadow beside it with
    McNemar's sentence, and each bundle's overlap with its training data (stderr)."""
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
        f"output: {output} ({EVALUATION_PAGE_FILE}: metrics and plots; {PREDICTIONS_FILE}: one row per review)",
        soft_wrap=True,
    )
    if "comparison" in metrics:
        console.print(side_by_side_table(metrics))
        console.print(metrics["comparison"]["sentence"], soft_wrap=True, highlight=False)
    overlaps = [("", evaluation.overlap)]
    if evaluation.shadow_overlap is not None:
        overlaps.append(("shadow: ", evaluation.shadow_overlap))
    for which, overlap in overlaps:
        warning = overlap.warning()
        if warning:
            errors.print(f"[bold yellow]warning:[/] {which}{warning}", highlight=False, soft_wrap=True)
        else:
            errors.print(f"{which}{overlap.note()}", highlight=False, soft_wrap=True)


def side_by_side_table(metrics: dict) -> Table:
    """The model's and the shadow's metrics in two columns, as the evaluation page shows them."""
    from training.evaluation import comparison_rows

    shadow = metrics["shadow"]
    table = Table(title=f"model and shadow, {metrics['examples']:,} reviews", title_justify="left")
    table.add_column("metric")
    table.add_column(f"model {metrics[MODEL_VERSION]}", justify="right")
    table.add_column(f"shadow {shadow[MODEL_VERSION]}", justify="right")
    for row in comparison_rows(metrics):
        table.add_row(*row)
    return table


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


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse an output that is a file, a non-empty folder unless overwrite (the job's own check, with
    evaluate's file names as what --overwrite replaces), and a folder that cannot be written or
    created; creates nothing (the files are written at the end)."""
    from pipeline.job.locations import OutputError
    from pipeline.job.locations import check_output as check_folder
    from training.evaluation import EVALUATION_FILES

    check_folder(str(output), overwrite, EVALUATION_FILES, "evaluation")
    if output.is_dir():
        if not os.access(output, os.W_OK | os.X_OK):
            raise OutputError(f"output folder {output} is not writable; choose another --output")
        return
    parent = next(folder for folder in output.absolute().parents if folder.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create output folder {output}: {parent} is not a writable folder")
