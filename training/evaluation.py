"""Binary classification metrics and plots, shared by training reports and `reviewscore evaluate`.

Computed with NumPy directly (ROC AUC by the rank statistic), so the project needs no scikit-learn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


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


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = (scores >= threshold).astype(np.int64)
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    confusion = np.zeros((2, 2), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    return {
        "examples": len(labels),
        "accuracy": float((predicted == labels).mean()),
        "loss": float(loss),
        "roc_auc": roc_auc(labels, scores),
        "threshold": threshold,
        "confusion_matrix": {
            "rows": "true class (negative, positive)",
            "columns": "predicted class (negative, positive)",
            "values": confusion.tolist(),
        },
    }


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


def evaluate_bundle(model: str, data: Path, report: Path, text_column: str, label_column: str) -> dict[str, Any]:
    """Score labelled reviews with a bundle (same encoder and compiled model as the pipeline) and report.

    Given the aclImdb root folder this reads its test/ split: evaluation is what the test split is for.
    """
    import json

    from pipeline.bundle import open_bundle
    from pipeline.scorer import ScorerSettings, make_scorer
    from training.calibration import ECE_BINS, calibration_metrics
    from training.datasets import load_labelled

    bundle = open_bundle(model)
    labelled = load_labelled(data, text_column, label_column, split="test")
    score = make_scorer(bundle.load_model(), bundle.preprocessing.max_length, ScorerSettings(), bundle.calibration)
    scores = score(bundle.encoder.encode(labelled.texts).rows())
    metrics = binary_metrics(labelled.labels, scores)
    metrics.update(calibration_metrics(labelled.labels, scores))
    metrics.update(
        ece_bins=ECE_BINS,
        calibration=bundle.calibration.method,
        model_version=bundle.model_version,
        model_name=bundle.manifest.name,
        data=labelled.source,
    )
    report.mkdir(parents=True, exist_ok=True)
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2))
    title = f"{bundle.manifest.name} {bundle.model_version}"
    plot_roc_and_histogram(labelled.labels, scores, report, title)
    plot_reliability(labelled.labels, scores, report / "reliability_diagram.png", title, ECE_BINS)
    return metrics


def plot_roc_and_histogram(labels: np.ndarray, scores: np.ndarray, report: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr = roc_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"ROC AUC {roc_auc(labels, scores):.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(report / "roc_curve.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    for label, name in ((0, "negative"), (1, "positive")):
        ax.hist(scores[np.asarray(labels) == label], bins=bins, alpha=0.6, label=f"true {name}")
    ax.set_xlabel("score (probability of positive)")
    ax.set_ylabel("reviews")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(report / "score_histogram.png", dpi=80)
    plt.close(fig)


def plot_reliability(labels: np.ndarray, scores: np.ndarray, path: Path, title: str, bins: int) -> None:
    """Share of positives against mean score per equal-width score bin (the ECE's bins), with the
    number of reviews per bin below: a calibrated model's points lie on the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.calibration import binned, expected_calibration_error

    count, score_sums, positive_sums = binned(scores, labels, bins)
    seen = count > 0
    mean_score = score_sums[seen] / count[seen]
    positives = positive_sums[seen] / count[seen]
    edges = np.linspace(0, 1, bins + 1)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    top.plot(mean_score, positives, "o-", label=f"model (ECE {expected_calibration_error(labels, scores, bins):.4f})")
    top.set_ylabel("share of positive reviews")
    top.set_title(title)
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.bar(edges[:-1], count, width=1 / bins, align="edge", edgecolor="white")
    bottom.set_yscale("log")
    bottom.set_xlabel(f"score (probability of positive), {bins} bins")
    bottom.set_ylabel("reviews")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
