"""The `reviewscore` command line: one Typer app for training, inspecting and scoring.

Heavy imports (TensorFlow, Beam) happen inside the commands, so `reviewscore --help` is instant.
Configuration mistakes exit with code 2 and one clear message, never a traceback.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

import pipeline
from pipeline.explain import METHODS as EXPLAIN_METHODS
from pipeline.job_options import JOB_OPTIONS, OPTIONS, REQUIRED
from pipeline.verdict import drifted_checks

app = typer.Typer(
    name="reviewscore",
    help="Batch sentiment scoring of reviews with a trained LSTM bundle.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

EXIT_CONFIG_ERROR = 2
DEFAULT_MODEL = OPTIONS["model"].cli_default
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "reviewscore"


# An Enum so --help lists the choices; pipeline.explain is cheap to import (no TensorFlow, no Beam).
ExplainMethod = StrEnum("ExplainMethod", [(m, m) for m in EXPLAIN_METHODS])
DEFAULT_EXPLAIN_METHOD = ExplainMethod(EXPLAIN_METHODS[0])


def fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_CONFIG_ERROR)


@app.command()
def train(
    data: Annotated[
        list[Path],
        typer.Option(
            help="Labelled reviews: an aclImdb folder (its train/ part is used) or Parquet with text and label. "
            "Repeat to train on several sources together (e.g. phrases and sentences)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Directory to write the model bundle into.")],
    arch: Annotated[
        str, typer.Option(help="Architecture: lstm, lstm-dropout, lstm-recurrent-dropout, cnn-lstm, bilstm-pool.")
    ] = "bilstm-pool",
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs to train; early stopping may end sooner.")] = 10,
    patience: Annotated[int, typer.Option(min=0, help="Epochs without better validation loss before stopping.")] = 2,
    reduce_lr_patience: Annotated[
        int,
        typer.Option(
            min=0, help="Epochs without better validation loss before the learning rate drops to 0.3x; 0: never."
        ),
    ] = 0,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Training batch size [default: the architecture's].")
    ] = None,
    vocab_size: Annotated[
        int | None, typer.Option(min=1, help="Words kept in the vocabulary [default: the architecture's].")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(min=1, help="Tokens kept per review [default: the architecture's].")
    ] = None,
    embedding_dim: Annotated[
        int | None,
        typer.Option(min=1, help="Embedding size [default: the architecture's; 100 with --pretrain-vectors]."),
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(min=0.0, help="Adam learning rate [default: the architecture's].")
    ] = None,
    group_column: Annotated[
        str,
        typer.Option(
            help="Column naming each review's group (its movie): a group never sits on both sides of the split. "
            "aclImdb folders take it from urls_*.txt. 'none': split review by review."
        ),
    ] = "movie_id",
    validation_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the reviews held out for early stopping.")
    ] = 0.1,
    calibration_fraction: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Share held out to fit the score calibration and measure accuracy; 0: none."
        ),
    ] = 0.1,
    validation_data: Annotated[
        Path | None,
        typer.Option(
            help="A separate labelled validation set (e.g. SST-5 dev): early stopping and calibration use it, "
            "and --data is not split."
        ),
    ] = None,
    class_names: Annotated[
        str,
        typer.Option(help="The classes, comma-separated, in label-index order; labels may be names or indices."),
    ] = "negative,positive",
    ordinal: Annotated[
        bool, typer.Option(help="The classes are ordered lowest to highest: evaluate reports the mean class error.")
    ] = False,
    pretrain_vectors: Annotated[
        list[Path] | None,
        typer.Option(
            help="Unlabelled reviews (Parquet with the text column, or aclImdb's root for train/unsup) to "
            "pre-train word vectors on with gensim, together with the training text; cached by data. Repeatable."
        ),
    ] = None,
    skip_gram: Annotated[
        bool, typer.Option(help="Pre-train the vectors with skip-gram instead of CBOW (slower; better for rare words).")
    ] = False,
    freeze_embedding: Annotated[
        bool, typer.Option(help="Keep the pre-trained word vectors fixed while the LSTM trains.")
    ] = False,
    ema: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9999,
            help="Keep an exponential moving average of the weights with this momentum (e.g. 0.999) and use it "
            "for validation, early stopping and the bundle; 0: off.",
        ),
    ] = 0.0,
    fine_tune_epochs: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --freeze-embedding: then up to N epochs with the embedding trainable at a tenth of the "
            "learning rate, kept only if validation loss improves.",
        ),
    ] = 0,
    cache_dir: Annotated[
        Path, typer.Option(help="Where pre-trained word vectors are cached, by a fingerprint of text and settings.")
    ] = DEFAULT_CACHE_DIR,
    seed: Annotated[int, typer.Option(help="Seed for the split, initialization and batch order.")] = 1337,
    expand_contractions: Annotated[
        bool, typer.Option(help='Rewrite "don\'t" as "do not" and so on before tokenizing.')
    ] = False,
    remove_stopwords: Annotated[
        bool, typer.Option(help="Drop common function words (negations are always kept).")
    ] = False,
    treebank: Annotated[
        bool,
        typer.Option(
            help="The text is Penn-Treebank tokenized (SST, Rotten Tomatoes phrases): undo it before cleaning, "
            "so users' ordinary text encodes the same way at scoring time."
        ),
    ] = False,
    name: Annotated[str | None, typer.Option(help="Bundle name [default: imdb-ARCH].")] = None,
    version: Annotated[
        str | None, typer.Option(help="Bundle version written into every scored row [default: date and model hash].")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column, for Parquet data.")] = "text",
    label_column: Annotated[
        str, typer.Option(help="Label column (class names or their indices), for Parquet data.")
    ] = "label",
) -> None:
    """Train a sentiment model and export it as a self-describing bundle."""
    from training.datasets import DatasetError
    from training.pretraining import WordVectorSettings
    from training.train import TrainingConfig
    from training.train import train as run_training

    classes = tuple(name.strip() for name in class_names.split(","))
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(classes):
        fail(f"--class-names needs at least two distinct names, got {class_names!r}")
    config = TrainingConfig(
        data=tuple(data),
        out=out,
        architecture=arch,
        epochs=epochs,
        patience=patience,
        reduce_lr_patience=reduce_lr_patience,
        batch_size=batch_size,
        vocab_size=vocab_size,
        max_length=max_length,
        embedding_dim=embedding_dim or (100 if pretrain_vectors else None),
        learning_rate=learning_rate,
        group_column=None if group_column.lower() == "none" else group_column,
        validation_fraction=validation_fraction,
        calibration_fraction=calibration_fraction,
        validation_data=validation_data,
        class_names=classes,
        ordinal=ordinal,
        pretrain_vectors=tuple(pretrain_vectors) if pretrain_vectors else None,
        word_vectors=WordVectorSettings(skip_gram=skip_gram),
        freeze_embedding=freeze_embedding,
        fine_tune_epochs=fine_tune_epochs,
        ema=ema,
        cache_dir=cache_dir,
        seed=seed,
        expand_contractions=expand_contractions,
        remove_stopwords=remove_stopwords,
        treebank=treebank,
        name=name,
        version=version,
        text_column=text_column,
        label_column=label_column,
        verbose=1 if sys.stdout.isatty() else 2,  # a progress bar only where someone watches it
    )
    try:
        run_training(config)
    except (DatasetError, ValueError) as e:
        fail(str(e))


@app.command()
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
    table.add_row("architecture", _describe(manifest.architecture))
    table.add_row("classes", ", ".join(manifest.class_names))
    table.add_row("vocabulary", f"{len(opened.vocabulary.tokens)} words + padding and unknown ids")
    table.add_row("preprocessing", _describe(opened.preprocessing.to_dict()))
    table.add_row("calibration", _describe_calibration(opened.calibration, len(manifest.class_names)))
    table.add_row("scoring engine", _engine_for(opened))
    table.add_row("training profile", _describe_profile(opened.profile))
    table.add_row("metrics", _describe(manifest.metrics))
    table.add_row("training data", _describe(manifest.training_data))
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


@app.command()
def profile(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory to add profile.json to.")],
    data: Annotated[
        list[Path],
        typer.Option(
            help="The bundle's own training data (its held-out movies are found again from the manifest), or "
            "in-distribution reviews to profile whole (e.g. its separate validation file). Repeatable."
        ),
    ],
    text_column: Annotated[str, typer.Option(help="Text column, for Parquet data.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column, for Parquet data.")] = "label",
) -> None:
    """Add the training profile drift checks compare every run with, to a bundle trained before train wrote one."""
    from pipeline.bundle import BundleError
    from training.datasets import DatasetError
    from training.profiling import profile_bundle

    try:
        updated = profile_bundle(bundle, data, text_column, label_column)
    except (BundleError, DatasetError) as e:
        fail(str(e))
    source = updated.profile.source
    console.print(
        f"wrote {updated.path / 'profile.json'}: {source['reviews']:,} reviews, {source['part']} of "
        f"{source['data']}; manifest updated (model and version unchanged)"
    )


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="The review to explain.")],
    model: Annotated[str, typer.Option(help="Model bundle folder.")] = DEFAULT_MODEL,
    steps: Annotated[
        int,
        typer.Option(
            min=2,
            help="Integrated-gradients steps to start with; doubled (up to 1,024) until the attributions sum "
            "to the logit difference within 5%.",
        ),
    ] = 64,
    top: Annotated[int, typer.Option(min=1, help="Words to list.")] = 10,
    method: Annotated[
        ExplainMethod,
        typer.Option(help="occlusion (leave one word out) or integrated-gradients (TensorFlow)."),
    ] = DEFAULT_EXPLAIN_METHOD,
) -> None:
    """Show which words pushed a review towards its label: the text highlighted, then its strongest words."""
    from rich.text import Text

    from pipeline.bundle import BundleError, open_bundle
    from pipeline.explain.explainer import (
        COMPLETENESS_TOLERANCE,
        Explainer,
        ExplainSettings,
        ExplainUnavailable,
        word_weights,
    )
    from pipeline.labels import Labels
    from pipeline.scorer import ScorerSettings, bundle_scorer

    try:
        bundle = open_bundle(model)
        encoded, words = bundle.encoder.encode_words([text])
        if not len(encoded.ids):
            fail("the text has no words left after cleaning")
        scorer = bundle_scorer(bundle, ScorerSettings())
        probabilities, logits = scorer.with_logits(encoded.rows())
        labels = Labels.of(bundle.manifest)
        predicted = labels.predicted(probabilities)
        explainer = Explainer(bundle, ExplainSettings(top, steps, method.value), scorer.logits, batch_size=1)
        while True:
            attributions = explainer(encoded.rows(), predicted, logits)
            error = float(attributions.completeness_error[0])
            if np.isnan(error) or error <= COMPLETENESS_TOLERANCE or steps >= 1024:
                break
            steps *= 2
            explainer = explainer.with_steps(steps)
    except (BundleError, ExplainUnavailable) as e:
        fail(str(e))
    label = labels.class_names[int(predicted[0])]
    weights = attributions.weights[0]
    strongest = float(np.abs(weights).max()) or 1.0
    shown = Text()
    for word, weight in zip(words[0], weights.tolist(), strict=True):
        share = min(abs(weight) / strongest, 1.0)
        colour = "green" if weight > 0 else "red"
        shown.append(word, style=f"bold {colour}" if share > 0.5 else colour if share > 0.15 else "dim")
        shown.append(" ")
    console.print(
        f"[bold]{label}[/] (score {float(labels.scores(probabilities, predicted)[0]):.3f}); "
        f"[green]green[/] pushed towards {label}, [red]red[/] against it, the stronger the bolder:"
    )
    console.print(shown)
    table = Table(title="strongest words", title_justify="left")
    table.add_column("word")
    table.add_column("weight", justify="right")
    for word, weight in word_weights(words[0], weights)[:top]:
        table.add_row(word, f"[{'green' if weight > 0 else 'red'}]{weight:+.3f}[/]")
    console.print(table)
    if np.isnan(error):
        console.print(
            "occlusion: each weight is how much the predicted class's logit "
            f"({float(attributions.target_logit[0]):+.3f}) drops when that word is left out"
        )
        return
    delta = float(attributions.target_logit[0] - attributions.baseline_logit[0])
    console.print(
        f"the weights sum to {weights.sum():+.3f}; the predicted class's logit moved {delta:+.3f} from the "
        f"all-zero-embedding baseline (integrated gradients, {steps} steps: completeness error {error:.1%})"
    )


@app.command("export-onnx")
def export_onnx(
    bundle: Annotated[Path, typer.Argument(help="Model bundle directory to add model.onnx to.")],
) -> None:
    """Add model.onnx to a bundle trained before it was exported (needs TensorFlow; the model is unchanged)."""
    from pipeline.bundle import BundleError, add_onnx

    try:
        updated = add_onnx(bundle)
    except BundleError as e:
        fail(str(e))
    checked = updated.manifest.onnx["checked_against_keras"]
    console.print(
        f"wrote {updated.path / 'model.onnx'}: max |probability difference| to Keras "
        f"{checked['max_abs_probability_difference']:.1e} on {checked['rows']} probe reviews; manifest updated"
    )


def score(ctx: typer.Context, verbose: bool, **values) -> None:
    """Score reviews with a model bundle on Beam; Beam options (runner, workers) go after `--`."""
    quiet_logging(verbose)
    from pipeline.job import CONFIG_ERRORS, ScoringJob, run_scoring

    values = {name: value.value if isinstance(value, StrEnum) else value for name, value in values.items()}
    job = ScoringJob.from_options(values, (ctx.obj or {}).get("beam_args", []), started=pipeline.STARTED)
    try:
        summary = run_scoring(job)
    except CONFIG_ERRORS as e:
        fail(str(e))
    if summary.get("dry_run"):
        top = sorted({step.split("/")[0] for step in summary["steps"]})
        console.print(f"dry run: job graph built with {len(summary['steps'])} steps ({', '.join(top)}); nothing ran")
        return
    if "job_description" in summary:  # --template_location: a template was written, nothing ran
        console.print(f"job description written to {summary['job_description']}; nothing ran")
        return
    if "submitted" in summary:  # a remote run that does not wait
        console.print(f"job submitted: {summary.get('job_id')}")
        return
    _print_summary(summary, job.output)
    verdict = summary["verdict"]
    for problem in verdict["problems"]:
        errors.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    drift = summary.get("drift") or {}
    where = f"; see {summary['report']}" if summary.get("report") else ""
    if not verdict["passed"]:
        if drift.get("detected"):
            errors.print(f"report: {summary['report']}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if drift.get("detected"):
        errors.print(
            f"[bold yellow]warning:[/] drift detected ({drifted_checks(drift)}); every record was scored{where}",
            highlight=False,
            soft_wrap=True,
        )


def score_parameters() -> list[inspect.Parameter]:
    """`score`'s Typer parameters, one per job option (pipeline/job_options.py), plus the terminal's own."""
    parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    for option in JOB_OPTIONS:
        annotation: Any = option.type
        default = option.default_for_cli()
        if option.choices:
            annotation = StrEnum(option.name.title().replace("_", ""), [(c, c) for c in option.choices])
            default = annotation(default)
        if option.many:
            info: Any = typer.Argument(help=option.help, metavar="INPUTS", show_default=False)
            annotation = list[annotation]
        else:
            info = typer.Option(option.flag, help=option.help, min=option.minimum, max=option.maximum)
        if default is None:
            annotation = annotation | None
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if default is REQUIRED else default,
                annotation=Annotated[annotation, info],
            )
        )
    verbose = typer.Option("--verbose", "-v", help="Show Beam and TensorFlow logs.")
    parameters.append(inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False,
                                        annotation=Annotated[bool, verbose]))  # fmt: skip
    return parameters


score.__signature__ = inspect.Signature(score_parameters())
app.command(context_settings={"help_option_names": ["-h", "--help"]})(score)


def quiet_logging(verbose: bool) -> None:
    """Keep the terminal for our own lines: Beam and TensorFlow chatter only with --verbose.

    Runs before TensorFlow or Beam is imported, so TensorFlow's native log level (pipeline/__init__.py)
    still takes effect, in this process and in the worker processes that inherit its environment.
    """
    if verbose and not pipeline.TF_LOG_LEVEL_CHOSEN_BY_USER:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    logging.getLogger().setLevel(logging.INFO if verbose else logging.ERROR)
    progress = logging.getLogger("reviewscore")
    progress.setLevel(logging.INFO)
    if not progress.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        progress.addHandler(handler)
    progress.propagate = False


def _print_summary(summary: dict, output: str) -> None:
    table = Table(title=f"scored with model {summary['model_version']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("records read", f"{summary['records_read']:,}")
    table.add_row("scored", f"{summary['records_scored']:,}")
    table.add_row("failed", f"{summary['records_failed']:,}")
    for label, count in summary["label_counts"].items():
        table.add_row(f"  {label}", f"{count:,}")
    table.add_row("wall time", f"{summary['wall_seconds']:.1f} s")
    table.add_row("throughput", f"{summary['reviews_per_second'] or 0:,.0f} reviews/s")
    if summary.get("model_loads") is not None:
        table.add_row("model loads", str(summary["model_loads"]))
    engines = summary.get("engines") or {}
    if engines:  # why each was chosen: in the log line above (local runs), the summary and the report
        table.add_row("engine", ", ".join(f"{name} ({entry['reviews']:,} reviews)" for name, entry in engines.items()))
    drift = summary.get("drift") or {}
    table.add_row("drift", _describe_drift(drift))
    console.print(table)
    outputs = f"{output}/scored-*.parquet" + (", errors-*.parquet" if summary["records_failed"] else "")
    console.print(f"output: {outputs}")
    if summary.get("report"):
        console.print(f"report: {_link(summary['report'])}", soft_wrap=True)


def _link(path: str) -> str:
    """A local file as a file:// URI, which terminals open on click; remote paths as they are."""
    return path if "://" in path else Path(path).resolve().as_uri()


def _describe_drift(drift: dict) -> str:
    status = drift.get("status", "no_profile")
    if status == "drifted":
        return "detected: " + drifted_checks(drift)
    if status == "ok":
        return f"none ({len(drift['checks'])} checks against the training profile)"
    if status == "insufficient_data":
        return f"not judged: {drift['reviews']:,} reviews, {drift['min_reviews']:,} needed"
    return "not checked: the bundle has no training profile"


@app.command()
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
    table = Table(title=f"{metrics['examples']:,} reviews, model {metrics['model_version']}", title_justify="left")
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


def _describe(values: dict, prefix: str = "") -> str:
    """One line per setting; nested settings as dotted keys (heldout.accuracy: 0.9081)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, dict):
            lines.append(_describe(value, f"{prefix}{key}."))
        else:
            lines.append(f"{prefix}{key}: {round(value, 4) if isinstance(value, float) else value}")
    return "\n".join(line for line in lines if line)


def main() -> None:
    """Console entry point: everything after a bare `--` is handed to Beam as pipeline options."""
    argv = sys.argv[1:]
    beam_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, beam_args = argv[:split], argv[split + 1 :]
    try:
        app(args=argv, obj={"beam_args": beam_args}, prog_name="reviewscore")
        code = 0
    except SystemExit as e:  # Click ends every command this way, success included
        code = e.code
    exit_without_teardown(code)


def exit_without_teardown(code: int | str | None) -> NoReturn:
    """Exit at once: by now every output file is closed and published (or the command failed).

    Python's normal exit tears down TensorFlow, XLA and Beam's runner state, which took about
    1.5 s on the build machine: 15 % of a small job's wall time, spent after all its work is done.
    """
    if isinstance(code, str):
        errors.print(code)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code or 0)
