"""Classification metrics and plots for any number of classes, shared by training reports and
`reviewscore evaluate`.

Computed with NumPy directly (ROC AUC by the rank statistic), so the project needs no scikit-learn.
Everything takes (rows, classes) probabilities and the bundle's `Labels`: accuracy, macro-F1,
per-class precision and recall, the KxK confusion matrix; the mean absolute class error when the
classes are ordered; ROC AUC when the score is one class's probability (binary bundles).

With a shadow bundle, `evaluate` scores the same reviews with both and compares them: each model's
metrics side by side and McNemar's test on the reviews exactly one of them labels right
(`mcnemar_test`, standard library only).

`evaluate`'s plots are SVG from the run report's chart module (`pipeline/model/monitoring/charts.py`), so
evaluating needs no plotting library and runs in the scoring install; only training's own history
plot uses matplotlib, which the `train` extra brings.
"""

from __future__ import annotations

import glob
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.model.engines.length_order import DEFAULT_MAX_BATCH_SIZE
from pipeline.model.labels import Labels, class_mismatch
from pipeline.model.monitoring import charts
from pipeline.model.monitoring.charts import HISTOGRAM_BINS
from schemas.bundle import METRICS_FILE
from schemas.output_names import (
    CONFUSION_PLOT_FILE,
    CORRECT,
    EVALUATED_ID,
    EVALUATION_PAGE_FILE,
    MODEL_VERSION,
    PREDICTED_LABEL,
    PREDICTIONS_FILE,
    RELIABILITY_PLOT_FILE,
    ROC_PLOT_FILE,
    SCORE,
    SCORE_HISTOGRAM_FILE,
    SHADOW_PREDICTED_LABEL,
    SHADOW_SCORE,
    TRUE_LABEL,
)
from training.calibration_fit import ECE_BINS, binned, binned_error, calibration_metrics, log_loss, score_events
from training.datasets import DatasetError, LabelledReviews, index_fit_error, load_labelled
from training.overlap import TrainingOverlap, training_overlap

if TYPE_CHECKING:
    from pipeline.model.bundle import Bundle

EVALUATION_FILES = (
    # What `reviewscore evaluate --output` writes.
    METRICS_FILE,
    PREDICTIONS_FILE,
    CONFUSION_PLOT_FILE,
    RELIABILITY_PLOT_FILE,
    ROC_PLOT_FILE,
    SCORE_HISTOGRAM_FILE,
    EVALUATION_PAGE_FILE,
)
"""Every name `evaluate` may write: what --overwrite replaces (a binary bundle's ROC curve is not left
beside a five-class bundle's evaluation); other files in the folder are left alone."""
ROC_POINTS = 400
"""Most points drawn of a ROC curve (it has one per distinct score): enough for a smooth staircase."""
MCNEMAR_EXACT_LIMIT = 1000
"""Up to this many reviews on which exactly one model is right, McNemar's test is the exact binomial test
(a sum of that many binomial coefficients, cheap and exact); beyond it, the chi-square approximation,
which is close to the exact test at that size."""
SIGNIFICANCE_LEVEL = 0.05
"""The p-value under which `evaluate` calls one model better than the other on the sample."""


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
    """What `reviewscore evaluate` reports: the metrics (also in metrics.json; with a shadow bundle,
    its own under "shadow" and the test of the two under "comparison"), where the predictions went,
    and how much of the data each bundle was trained on."""

    metrics: dict[str, Any]
    predictions: Path
    overlap: TrainingOverlap
    shadow_overlap: TrainingOverlap | None = None


Progress = Callable[[int, int], None]
"""Called with (reviews scored so far, reviews in all) after each chunk."""


def evaluate_bundle(
    model: str,
    inputs: Sequence[str],
    output: Path,
    text_column: str,
    label_column: str,
    id_column: str,
    overwrite: bool = False,
    progress: Progress | None = None,
    check_output: Callable[[Path, bool], None] | None = None,
    shadow_model: str | None = None,
    read_file: Callable[[str], bytes] | None = None,
) -> Evaluation:
    """Score labelled reviews with a bundle (same encoder and engines as the pipeline) and report;
    with `shadow_model`, score them with that bundle too (its own encoder and engine) and compare.

    `inputs` as `score` takes them: files, folders and globs (`labelled_inputs`); an aclImdb root folder
    is read for its test/ part: evaluation is what the test split is for. Every check a user can fail
    runs first, in the order a user meets them: the inputs exist, the output folder can take the files
    (`check_output(output, overwrite)`, the caller's rule for folders: the CLI's is the job's), the
    bundles open (BundleError), the shadow has the model's class names (BundleError), the labels are
    the bundle's classes (DatasetError); only then are the models loaded, both before either scores.
    Nothing is written until everything is computed, so a failed evaluation leaves the output folder
    as it was. A remote bundle (gs://) is read through `read_file` (the CLI's is the job's filesystems).
    """
    from pipeline.model.bundle import open_bundle

    paths = labelled_inputs(inputs)
    if check_output is not None:
        check_output(output, overwrite)
    bundle = open_bundle(model, read_file)
    bundles = [bundle] if shadow_model is None else [bundle, open_shadow(shadow_model, bundle, read_file)]
    names = Labels.of(bundle.manifest)
    sources, ids = read_labelled(paths, text_column, label_column, id_column, names.class_names)
    labelled = sources[0]
    for source in sources[1:]:
        labelled = labelled.concatenated(source)
    scorers = [load_scorer(b, len(labelled.texts)) for b in bundles]
    probabilities = [
        score_in_chunks(score, labelled.texts, share_of(progress, part, len(scorers)))
        for part, score in enumerate(scorers)
    ]
    overlaps = [training_overlap(b, sources, labelled) for b in bundles]
    metrics = bundle_metrics(bundle, labelled, probabilities[0], overlaps[0])
    title = f"{bundle.manifest.name} {bundle.model_version}"
    plots = evaluation_charts(labelled.labels, probabilities[0], names, metrics, title)
    shadow_columns = None
    if len(bundles) == 2:
        shadow = bundles[1]
        metrics["shadow"] = bundle_metrics(shadow, labelled, probabilities[1], overlaps[1])
        del metrics["shadow"]["data"]  # the same reviews as the model's
        metrics["comparison"] = compare(labelled.labels, probabilities, names, model_names(bundle, shadow), metrics)
        shadow_columns = Labels.of(shadow.manifest).columns(probabilities[1])
    notes = [overlaps[0].warning() or overlaps[0].note()]
    if len(overlaps) == 2:
        notes.append(f"shadow: {overlaps[1].warning() or overlaps[1].note()}")
    files = {
        METRICS_FILE: json.dumps(metrics, indent=2),
        **{name: charts.svg_document(chart) for name, chart in plots.items()},
        EVALUATION_PAGE_FILE: evaluation_page(metrics, plots, title, "\n".join(notes)),
    }
    table = predictions_table(ids, labelled.labels, probabilities[0], names, shadow_columns)
    write_evaluation(output, files, table, overwrite)
    return Evaluation(metrics, output / PREDICTIONS_FILE, overlaps[0], overlaps[1] if len(overlaps) == 2 else None)


def open_shadow(shadow_model: str, bundle: Bundle, read_file: Callable[[str], bytes] | None = None) -> Bundle:
    """The shadow bundle, opened (no model loaded) and refused unless it has the model's class names in
    the model's order: both models' labels are then the same classes, compared review by review."""
    from pipeline.model.bundle import BundleError, open_bundle

    try:
        shadow = open_bundle(shadow_model, read_file)
    except BundleError as e:
        raise BundleError(f"--shadow-model: {e}") from None
    mismatch = class_mismatch(str(bundle.path), bundle.manifest.class_names, shadow_model, shadow.manifest.class_names)
    if mismatch is not None:
        raise BundleError(mismatch)
    return shadow


def load_scorer(bundle: Bundle, reviews: int) -> Callable[[pa.Array], np.ndarray]:
    """The bundle's calibrated model on the engine the pipeline would pick for `reviews` reviews, as a
    function from texts to (rows, classes) probabilities, encoding with the bundle's own encoder."""
    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.engines.calibrated import bundle_scorer

    score, encoder = bundle_scorer(bundle, ScorerSettings(), reviews=reviews), bundle.encoder
    return lambda texts: score(encoder.encode(texts).rows())


def share_of(progress: Progress | None, part: int, parts: int) -> Progress | None:
    """`progress` for the `part`-th of `parts` equal passes over the reviews: one count to the end."""
    if progress is None or parts == 1:
        return progress
    return lambda done, total: progress(part * total + done, parts * total)


def bundle_metrics(
    bundle: Bundle, labelled: LabelledReviews, probabilities: np.ndarray, overlap: TrainingOverlap
) -> dict[str, Any]:
    """One bundle's metrics.json figures on the labelled reviews."""
    names = Labels.of(bundle.manifest)
    metrics = classification_metrics(labelled.labels, probabilities, names, bundle.manifest.ordinal)
    metrics.update(calibration_metrics(labelled.labels, probabilities, names))
    metrics.update(
        {
            "ece_bins": ECE_BINS,
            "calibration": bundle.calibration.method,
            MODEL_VERSION: bundle.model_version,
            "model_name": bundle.manifest.name,
            "data": labelled.source,
            "training_overlap": overlap.model_dump(),
        }
    )
    return metrics


def model_names(bundle: Bundle, shadow: Bundle) -> tuple[str, str]:
    """How the comparison names the two models: their versions, with their names where the versions are
    equal, and "model" and "shadow" before them where those are equal too."""
    ours, theirs = bundle.model_version, shadow.model_version
    if ours != theirs:
        return ours, theirs
    ours, theirs = f"{bundle.manifest.name} {ours}", f"{shadow.manifest.name} {theirs}"
    return (ours, theirs) if ours != theirs else (f"model {ours}", f"shadow {theirs}")


def mcnemar_test(b: int, c: int) -> tuple[float, str]:
    """McNemar's two-sided p-value and the test's name, from the reviews only the model labels right
    (`b`) and only the shadow labels right (`c`); reviews both label right, or both wrong, say nothing
    of which model is better.

    Under the hypothesis that the models are equally good, each of the n = b + c discordant reviews
    is equally likely to favour either, so b follows Binomial(n, 1/2). Up to MCNEMAR_EXACT_LIMIT
    discordant reviews the p-value is the exact binomial test's: twice the smaller tail,
    2 * sum(C(n, i) for i <= min(b, c)) / 2**n, at most 1 (Python's integers keep it exact; the
    division rounds once). Beyond, the chi-square test with continuity correction,
    (|b - c| - 1)**2 / n on one degree of freedom (0 when b = c: the correction cannot overshoot
    an exact tie), whose upper tail is erfc(sqrt(statistic / 2)).
    Standard library only: the scoring install, where `evaluate` runs, has no SciPy.
    """
    if b < 0 or c < 0:
        raise ValueError(f"McNemar's test counts reviews: got b={b}, c={c}")
    n = b + c
    if n <= MCNEMAR_EXACT_LIMIT:
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
        return min(1.0, 2 * tail / 2**n), "exact binomial"
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    return math.erfc(math.sqrt(statistic / 2)), "chi-square with continuity correction"


def p_value_text(p: float) -> str:
    """A p-value as a sentence quotes it: two significant figures, "p < 0.001" below that."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def compare(
    labels: np.ndarray, probabilities: Sequence[np.ndarray], names: Labels, called: tuple[str, str], metrics: dict
) -> dict[str, Any]:
    """metrics.json's "comparison": how many reviews each model alone labels right, McNemar's test on
    them, and the sentence `evaluate` prints. `metrics` holds the model's, its "shadow" the shadow's."""
    truth = np.asarray(labels).astype(np.int64)
    right = [names.predicted(p) == truth for p in probabilities]
    b, c = int((right[0] & ~right[1]).sum()), int((~right[0] & right[1]).sum())
    p_value, test = mcnemar_test(b, c)
    accuracies = (metrics["accuracy"], metrics["shadow"]["accuracy"])
    if p_value < SIGNIFICANCE_LEVEL and b != c:
        better, worse = (0, 1) if b > c else (1, 0)
        sentence = (
            f"{called[better]} is better on this sample (accuracy {accuracies[better]:.4f} against "
            f"{accuracies[worse]:.4f}), {p_value_text(p_value)}"
        )
    else:
        sentence = f"no significant difference between {called[0]} and {called[1]} on this sample, " + p_value_text(
            p_value
        )
    return {
        "reviews": len(truth),
        "both_right": int((right[0] & right[1]).sum()),
        "both_wrong": int((~right[0] & ~right[1]).sum()),
        "only_model_right": b,
        "only_shadow_right": c,
        "same_label": int((names.predicted(probabilities[0]) == names.predicted(probabilities[1])).sum()),
        "test": f"McNemar ({test})",
        "p_value": p_value,
        "significance_level": SIGNIFICANCE_LEVEL,
        "better": None if p_value >= SIGNIFICANCE_LEVEL or b == c else called[0 if b > c else 1],
        "sentence": sentence,
    }


def comparison_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, model, shadow) rows that the command and the page show side by side."""
    shadow, comparison = metrics["shadow"], metrics["comparison"]
    rows = [("accuracy", f"{metrics['accuracy']:.4f}", f"{shadow['accuracy']:.4f}"),
            ("macro-F1", f"{metrics['macro_f1']:.4f}", f"{shadow['macro_f1']:.4f}")]  # fmt: skip
    if "roc_auc" in metrics:
        rows.append(("ROC AUC", *("n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}" for m in (metrics, shadow))))
    rows += [
        (f"ECE ({metrics['ece_bins']} bins)", f"{metrics['ece']:.4f}", f"{shadow['ece']:.4f}"),
        ("Brier", f"{metrics['brier']:.4f}", f"{shadow['brier']:.4f}"),
        ("right where the other is wrong", *(f"{comparison[k]:,}" for k in ("only_model_right", "only_shadow_right"))),
    ]
    return rows


def score_in_chunks(score: Callable[[pa.Array], np.ndarray], texts: pa.Array, progress: Progress | None) -> np.ndarray:
    """(rows, classes) probabilities of every text, scored DEFAULT_MAX_BATCH_SIZE at a time (the
    pipeline's own batch), reporting progress after each chunk."""
    total, parts = len(texts), []
    for start in range(0, total, DEFAULT_MAX_BATCH_SIZE):
        parts.append(np.asarray(score(texts.slice(start, DEFAULT_MAX_BATCH_SIZE))))
        if progress is not None:
            progress(min(start + DEFAULT_MAX_BATCH_SIZE, total), total)
    return np.concatenate(parts)


def write_evaluation(output: Path, files: dict[str, str], predictions: pa.Table, overwrite: bool) -> None:
    """The evaluation's files, once all are computed; with overwrite, an earlier evaluation's files go
    first, so none of them is left from another bundle or other data."""
    output.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in EVALUATION_FILES:
            (output / name).unlink(missing_ok=True)
    pq.write_table(predictions, output / PREDICTIONS_FILE)
    for name, text in files.items():
        (output / name).write_text(text, encoding="utf-8")


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
    """Every path's labelled reviews (aclImdb folders: their test/ part), and every review's id in order.

    Labels that are integers must fit the classes (`index_fit_error`), judged over all the Parquet
    inputs together (one file of a split may lack a class), and for each review folder alone (its
    neg/ and pos/ are a binary labelling, whatever else is evaluated with it)."""
    sources, ids = [], []
    for path in paths:
        source = load_labelled(path, text_column, label_column, split="test", class_names=tuple(class_names))
        sources.append(source)
        ids.extend(_review_ids(path, source, id_column))
    _check_index_fit(sources, label_column, tuple(class_names))
    return sources, ids


def _check_index_fit(sources: Sequence[LabelledReviews], label_column: str, class_names: tuple[str, ...]) -> None:
    """A DatasetError naming the labels' values and the classes when integer labels cannot be indices."""
    judged = [
        ([s], f"labels of {s.source} (neg/ and pos/ folders)")
        for s in sources
        if s.indexed and s.class_names != class_names
    ]
    columns = [s for s in sources if s.indexed and s.class_names == class_names]
    if columns:
        where = ", ".join(s.source for s in columns[:3]) + (f" and {len(columns) - 3} more" if len(columns) > 3 else "")
        judged.append((columns, f"labels in {label_column!r} of {where}"))
    for group, what in judged:
        error = index_fit_error(np.concatenate([s.labels for s in group]), class_names)
        if error:
            raise DatasetError(f"{what} {error}")


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


def predictions_table(
    ids: Sequence[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    names: Labels,
    shadow: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """One row per review: its id and true label, the label columns as scoring writes them, and whether
    the predicted label is the true one; with the `shadow` bundle's label columns, its predicted label
    and score under the names a shadowed scoring run gives them."""
    columns = names.columns(probabilities)
    truth = np.asarray(labels).astype(np.int64)
    extra = {} if shadow is None else {SHADOW_PREDICTED_LABEL: shadow[PREDICTED_LABEL], SHADOW_SCORE: shadow[SCORE]}
    return pa.table(
        {
            EVALUATED_ID: pa.array(list(ids), pa.string()),
            TRUE_LABEL: pa.array(names.class_names, pa.string()).take(pa.array(truth)),
            **columns,
            CORRECT: pa.array(names.predicted(probabilities) == truth),
            **extra,
        }
    )


def evaluation_charts(
    labels: np.ndarray, probabilities: np.ndarray, names: Labels, metrics: dict[str, Any], title: str
) -> dict[str, str]:
    """Each plot file's chart (inline SVG): the confusion matrix and the reliability diagram, and for
    binary bundles the ROC curve and the score histogram."""
    plots = {
        CONFUSION_PLOT_FILE: charts.heat_map(
            f"{title}: confusion matrix",
            names.class_names,
            np.asarray(metrics["confusion_matrix"]["values"]),
            "predicted class (shade: share of the true class)",
            "true class",
        ),
        RELIABILITY_PLOT_FILE: reliability_chart(labels, probabilities, names, title, ECE_BINS),
    }
    if names.score_label is not None:
        plots[ROC_PLOT_FILE] = roc_chart(labels, probabilities, names, title)
        plots[SCORE_HISTOGRAM_FILE] = score_histogram(labels, probabilities, names, title)
    return plots


def roc_chart(labels: np.ndarray, probabilities: np.ndarray, names: Labels, title: str) -> str:
    """The ROC curve of the score column against its event (binary bundles: the positive class)."""
    scores, events = score_events(labels, probabilities, names)
    fpr, tpr = roc_curve(events, scores)
    shown = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
    auc = roc_auc(events, scores)
    name = "ROC AUC n/a (one class only)" if np.isnan(auc) else f"model (ROC AUC {auc:.4f})"
    return charts.line_chart(
        f"{title}: ROC curve",
        [
            charts.Line("chance", np.array([0, 1]), np.array([0, 1]), dashed=True),
            charts.Line(name, fpr[shown], tpr[shown]),
        ],
        "false positive rate",
        "true positive rate",
    )


def score_histogram(labels: np.ndarray, probabilities: np.ndarray, names: Labels, title: str) -> str:
    """How many reviews of each true class got each score (bins of equal width)."""
    scores, events = score_events(labels, probabilities, names)
    edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    others = [name for name in names.class_names if name != names.score_label]
    other = others[0] if len(others) == 1 else f"not {names.score_label}"
    series = {
        f"true {name}": np.histogram(np.clip(scores[events == event], 0, 1), edges)[0]
        for event, name in ((False, other), (True, names.score_label))
    }
    return charts.bar_chart(
        f"{title}: scores by true class",
        [f"{edge:.2f}" for edge in edges[:-1]],
        series,
        f"score (probability of {names.score_label}, bins of {1 / HISTOGRAM_BINS:.2f})",
        "reviews",
        value_format=charts.count,
    )


def reliability_chart(labels: np.ndarray, probabilities: np.ndarray, names: Labels, title: str, bins: int) -> str:
    """Share of events against mean score per equal-width score bin (the ECE's bins), each point's area
    by its number of reviews: a calibrated model's points lie on the diagonal. The event is the
    positive class for a binary bundle, a right prediction for a multi-class one."""
    scores, events = score_events(labels, probabilities, names)
    event = f"share of {names.score_label} reviews" if names.score_label else "share predicted right"
    count, score_sums, event_sums = binned(scores, events, bins)
    seen = count > 0
    mean_score, share = score_sums[seen] / count[seen], event_sums[seen] / count[seen]
    edges = np.linspace(0, 1, bins + 1)
    hover = [
        f"scores {edges[i]:.2f} to {edges[i + 1]:.2f}: {count[i]:,} reviews, mean score {m:.3f}, {event} {s:.3f}"
        for i, m, s in zip(np.flatnonzero(seen), mean_score, share, strict=True)
    ]
    sizes = 2.5 + 5.5 * np.sqrt(count[seen] / max(count.max(), 1))
    ece = binned_error(scores, events, bins)
    return charts.line_chart(
        f"{title}: reliability",
        [
            charts.Line("perfectly calibrated", np.array([0, 1]), np.array([0, 1]), dashed=True),
            charts.Line(f"model (ECE {ece:.4f})", mean_score, share, hover, sizes),
        ],
        f"mean score in each of {bins} bins (point area: reviews in the bin)",
        event,
    )


PAGE_STYLE = (
    "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;"
    "color:#111827;padding:0 16px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #e5e7eb;padding-bottom:4px}.meta{color:#4b5563}table{border-collapse:collapse;"
    "margin:6px 0}td,th{padding:4px 10px;border-bottom:1px solid #f3f4f6;text-align:left}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}th{background:#f9fafb}.charts{display:flex;flex-wrap:wrap;gap:12px}"
)


def evaluation_page(metrics: dict[str, Any], plots: dict[str, str], title: str, overlap: str) -> str:
    """evaluation.html: the headline metrics, per-class figures and every plot on one self-contained
    page (styles inline, no script, no network), like the run report; with a shadow bundle, both
    models' metrics side by side and McNemar's test. `overlap`: a line per bundle."""
    headline = [("reviews", f"{metrics['examples']:,}"), ("accuracy", f"{metrics['accuracy']:.4f}"),
                ("macro-F1", f"{metrics['macro_f1']:.4f}")]  # fmt: skip
    if "roc_auc" in metrics:
        headline.append(
            ("ROC AUC", "n/a (one class only)" if metrics["roc_auc"] is None else f"{metrics['roc_auc']:.4f}")
        )
    if "mean_absolute_class_error" in metrics:
        headline.append(("mean absolute class error", f"{metrics['mean_absolute_class_error']:.3f}"))
    headline += [(f"ECE ({metrics['ece_bins']} bins)", f"{metrics['ece']:.4f}"), ("Brier", f"{metrics['brier']:.4f}"),
                 ("log loss", f"{metrics['log_loss']:.4f}"), ("calibration", str(metrics["calibration"]))]  # fmt: skip
    rows = "".join(f'<tr><td>{escape(k)}</td><td class="n">{escape(v)}</td></tr>' for k, v in headline)
    per_class = "".join(
        f'<tr><td>{escape(name)}</td><td class="n">{row["precision"]:.3f}</td><td class="n">{row["recall"]:.3f}</td>'
        f'<td class="n">{row["f1"]:.3f}</td><td class="n">{row["support"]:,}</td></tr>'
        for name, row in metrics["per_class"].items()
    )
    meta = "<br>".join(escape(line) for line in [str(metrics["data"]), *overlap.splitlines()])
    body = (
        f"<h1>{escape(title)}: evaluation</h1>"
        f'<div class="meta">{meta}</div>'
        f"<h2>Metrics</h2><table>{rows}</table>"
        f"{comparison_section(metrics) if 'comparison' in metrics else ''}"
        "<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>reviews</th></tr>"
        f"{per_class}</table>"
        f'<h2>Plots</h2><div class="charts">{"".join(plots.values())}</div>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}: evaluation</title><style>{PAGE_STYLE}{charts.CHART_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def comparison_section(metrics: dict[str, Any]) -> str:
    """The page's "Model and shadow" section: `comparison_rows` as a table, the test and its sentence."""
    shadow, comparison = metrics["shadow"], metrics["comparison"]
    header = (
        f"<tr><th>metric</th><th>model {escape(metrics[MODEL_VERSION])}</th>"
        f"<th>shadow {escape(shadow[MODEL_VERSION])} ({escape(str(shadow['model_name']))})</th></tr>"
    )
    rows = "".join(
        f'<tr><td>{escape(name)}</td><td class="n">{escape(ours)}</td><td class="n">{escape(theirs)}</td></tr>'
        for name, ours, theirs in comparison_rows(metrics)
    )
    test = (
        f"{comparison['test']} on the {comparison['only_model_right'] + comparison['only_shadow_right']:,} reviews "
        f"exactly one model labels right: p = {comparison['p_value']:.4g}"
    )
    return (
        f"<h2>Model and shadow</h2><table>{header}{rows}</table>"
        f'<p><b>{escape(comparison["sentence"])}</b></p><div class="meta">{escape(test)}</div>'
    )
