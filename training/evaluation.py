"""Classification metrics and plots for any number of classes, shared by training reports and
`reviewscore evaluate`.

Computed with NumPy directly (ROC AUC by the rank statistic), so the project needs no scikit-learn.
Everything takes (rows, classes) probabilities and the bundle's `Labels`: accuracy, macro-F1,
per-class precision and recall, the KxK confusion matrix; the mean absolute class error when the
classes are ordered; ROC AUC when the score is one class's probability (binary bundles).
"""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.labels import Labels
from schemas.bundle import METRICS_FILE
from schemas.output_names import (
    CORRECT,
    EVALUATED_ID,
    MODEL_VERSION,
    PREDICTIONS_FILE,
    TRUE_LABEL,
)
from training.calibration_fit import ECE_BINS, binned, binned_error, calibration_metrics, log_loss, score_events
from training.datasets import DatasetError, LabelledReviews, load_labelled
from training.overlap import TrainingOverlap, training_overlap

# The evaluation's plots (`reviewscore evaluate --output`), beside METRICS_FILE and PREDICTIONS_FILE.
CONFUSION_PLOT_FILE = "confusion_matrix.png"
RELIABILITY_PLOT_FILE = "reliability_diagram.png"
ROC_PLOT_FILE = "roc_curve.png"
"""Binary bundles only, like SCORE_HISTOGRAM_FILE: the score is one class's probability."""
SCORE_HISTOGRAM_FILE = "score_histogram.png"


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    hits = labels[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / max((~hits).sum(), 1)])
    return fpr, tpr


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, names: Labels, ordinal: bool = False
) -> dict[str, Any]:
    y = np.asarray(labels).astype(np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    classes = len(names.class_names)
    predicted = names.predicted(p)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    per_class = {}
    for k, name in enumerate(names.class_names):
        hits, predicted_k, true_k = confusion[k, k], confusion[:, k].sum(), confusion[k, :].sum()
        precision = hits / predicted_k if predicted_k else 0.0
        recall = hits / true_k if true_k else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(true_k),
        }
    metrics: dict[str, Any] = {
        "examples": len(y),
        "accuracy": float((predicted == y).mean()) if len(y) else float("nan"),
        "loss": log_loss(y, p),
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "confusion_matrix": {
            "rows": f"true class ({', '.join(names.class_names)})",
            "columns": f"predicted class ({', '.join(names.class_names)})",
            "values": confusion.tolist(),
        },
    }
    if ordinal:
        metrics["mean_absolute_class_error"] = float(np.abs(predicted - y).mean())
    if names.score_label is not None:
        scores, events = score_events(y, p, names)
        auc = roc_auc(events, scores)
        metrics["roc_auc"] = None if np.isnan(auc) else auc  # undefined when the reviews hold one class only
    return metrics


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Training and validation loss and accuracy per epoch, side by side, as the tutorials plotted them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


@dataclass(frozen=True)
class Evaluation:
    """What `reviewscore evaluate` reports: the metrics (also in metrics.json), where the predictions
    went, and how much of the data the bundle was trained on."""

    metrics: dict[str, Any]
    predictions: Path
    overlap: TrainingOverlap


def evaluate_bundle(
    model: str, inputs: Sequence[str], output: Path, text_column: str, label_column: str, id_column: str
) -> Evaluation:
    """Score labelled reviews with a bundle (same encoder and engines as the pipeline) and report.

    `inputs` as `score` takes them: files, folders and globs (`labelled_inputs`); an aclImdb root folder
    is read for its test/ part: evaluation is what the test split is for. Labels outside the bundle's
    classes are an error naming them (DatasetError).
    """
    from pipeline.bundle import open_bundle
    from pipeline.engines.base import ScorerSettings
    from pipeline.engines.calibrated import bundle_scorer

    bundle = open_bundle(model)
    names = Labels.of(bundle.manifest)
    sources, ids = read_labelled(labelled_inputs(inputs), text_column, label_column, id_column, names.class_names)
    labelled = sources[0]
    for source in sources[1:]:
        labelled = labelled.concatenated(source)
    score = bundle_scorer(bundle, ScorerSettings(), reviews=len(labelled.texts))
    probabilities = score(bundle.encoder.encode(labelled.texts).rows())
    metrics = classification_metrics(labelled.labels, probabilities, names, bundle.manifest.ordinal)
    metrics.update(calibration_metrics(labelled.labels, probabilities, names))
    overlap = training_overlap(bundle, sources, labelled)
    metrics.update(
        {
            "ece_bins": ECE_BINS,
            "calibration": bundle.calibration.method,
            MODEL_VERSION: bundle.model_version,
            "model_name": bundle.manifest.name,
            "data": labelled.source,
            "training_overlap": overlap.to_dict(),
        }
    )
    output.mkdir(parents=True, exist_ok=True)
    (output / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    predictions = write_predictions(output / PREDICTIONS_FILE, ids, labelled.labels, probabilities, names)
    title = f"{bundle.manifest.name} {bundle.model_version}"
    plot_confusion(np.asarray(metrics["confusion_matrix"]["values"]), names, output / CONFUSION_PLOT_FILE, title)
    plot_reliability(labelled.labels, probabilities, names, output / RELIABILITY_PLOT_FILE, title, ECE_BINS)
    if names.score_label is not None:
        plot_roc_and_histogram(labelled.labels, probabilities, names, output, title)
    return Evaluation(metrics, predictions, overlap)


def labelled_inputs(inputs: Sequence[str]) -> list[Path]:
    """Each input as `load_labelled` reads it: a glob's matches in order; a folder of review folders
    (pos/ and neg/, or aclImdb's test/) as it is; any other folder as its *.parquet files, found
    recursively; a file as it is."""
    paths: list[Path] = []
    for raw in inputs:
        matches = sorted(glob.glob(raw, recursive=True)) if any(c in raw for c in "*?[") else [raw]
        if not matches or not Path(matches[0]).exists():
            raise DatasetError(f"labelled data {raw} does not exist or matches no file")
        for match in map(Path, matches):
            if not match.is_dir() or _review_folder(match) is not None:
                paths.append(match)
                continue
            found = sorted(match.rglob("*.parquet"))
            if not found:
                raise DatasetError(f"{match} holds no *.parquet files and no pos/ and neg/ review folders")
            paths.extend(found)
    return paths


def read_labelled(
    paths: Sequence[Path], text_column: str, label_column: str, id_column: str, class_names: Sequence[str]
) -> tuple[list[LabelledReviews], list[str]]:
    """Every path's labelled reviews (aclImdb folders: their test/ part), and every review's id in order."""
    sources, ids = [], []
    for path in paths:
        source = load_labelled(path, text_column, label_column, split="test", class_names=tuple(class_names))
        sources.append(source)
        ids.extend(_review_ids(path, source, id_column))
    return sources, ids


def _review_folder(path: Path) -> Path | None:
    """The folder holding pos/ and neg/ that `load_labelled` reads for `path`, if it reads one."""
    for folder in (path / "test", path):
        if (folder / "pos").is_dir():
            return folder
    return None


def _review_ids(path: Path, source: LabelledReviews, id_column: str) -> list[str]:
    """A review folder's reviews by file (neg/ then pos/, by name: `load_labelled`'s order); a Parquet
    file's by its id column, FILE:ROW where it has none or a null, as `score` names them."""
    folder = _review_folder(path) if path.is_dir() else None
    if folder is not None:
        files = [f"{label}/{file.name}" for label in ("neg", "pos") for file in sorted((folder / label).glob("*.txt"))]
        if len(files) == len(source):
            return files
    positional = [f"{path.name}:{row}" for row in range(len(source))]
    if path.is_dir() or id_column not in pq.read_schema(path).names:
        return positional
    column = pq.read_table(path, columns=[id_column]).column(id_column).cast(pa.string()).to_pylist()
    return [given if given is not None else fallback for given, fallback in zip(column, positional, strict=True)]


def write_predictions(
    path: Path, ids: Sequence[str], labels: np.ndarray, probabilities: np.ndarray, names: Labels
) -> Path:
    """One row per review: its id and true label, the label columns as scoring writes them, and whether
    the predicted label is the true one."""
    columns = names.columns(probabilities)
    truth = np.asarray(labels).astype(np.int64)
    table = pa.table(
        {
            EVALUATED_ID: pa.array(list(ids), pa.string()),
            TRUE_LABEL: pa.array(names.class_names, pa.string()).take(pa.array(truth)),
            **columns,
            CORRECT: pa.array(names.predicted(probabilities) == truth),
        }
    )
    pq.write_table(table, path)
    return path


def plot_confusion(confusion: np.ndarray, names: Labels, path: Path, title: str) -> None:
    """The KxK confusion matrix, each row shaded by its share of the true class, with counts written in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = len(names.class_names)
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.3 * classes + 2.5, 1.1 * classes + 2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(classes):
        for j in range(classes):
            ax.text(
                j, i, f"{confusion[i, j]:,}", ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black"
            )
    ax.set_xticks(range(classes), names.class_names, rotation=30, ha="right")
    ax.set_yticks(range(classes), names.class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_roc_and_histogram(labels: np.ndarray, probabilities: np.ndarray, names: Labels, output: Path, title: str):
    """ROC curve and score histogram of the score column against its event (binary bundles: positive)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores, events = score_events(labels, probabilities, names)
    fpr, tpr = roc_curve(events, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    auc = roc_auc(events, scores)
    ax.plot(fpr, tpr, label="ROC AUC n/a (one class only)" if np.isnan(auc) else f"ROC AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(output / ROC_PLOT_FILE, dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    for event, name in ((False, f"not {names.score_label}"), (True, names.score_label)):
        ax.hist(scores[events == event], bins=bins, alpha=0.6, label=f"true {name}")
    ax.set_xlabel(f"score (probability of {names.score_label})")
    ax.set_ylabel("reviews")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output / SCORE_HISTOGRAM_FILE, dpi=80)
    plt.close(fig)


def plot_reliability(
    labels: np.ndarray, probabilities: np.ndarray, names: Labels, path: Path, title: str, bins: int
) -> None:
    """Share of events against mean score per equal-width score bin (the ECE's bins), with the
    number of reviews per bin below: a calibrated model's points lie on the diagonal. The event is
    the positive class for a binary bundle, a right prediction for a multi-class one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores, events = score_events(labels, probabilities, names)
    event = f"share of {names.score_label} reviews" if names.score_label else "share predicted right"
    count, score_sums, event_sums = binned(scores, events, bins)
    seen = count > 0
    edges = np.linspace(0, 1, bins + 1)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    top.plot(
        score_sums[seen] / count[seen],
        event_sums[seen] / count[seen],
        "o-",
        label=f"model (ECE {binned_error(scores, events, bins):.4f})",
    )
    top.set_ylabel(event)
    top.set_title(title)
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.bar(edges[:-1], count, width=1 / bins, align="edge", edgecolor="white")
    bottom.set_yscale("log")
    bottom.set_xlabel(f"score, {bins} bins")
    bottom.set_ylabel("reviews")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
