"""The `reviewscore` command line: one Typer app for training, inspecting and scoring.

Heavy imports (TensorFlow, Beam) happen inside the commands, so `reviewscore --help` is instant.
Configuration mistakes exit with code 2 and one clear message, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

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


def fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_CONFIG_ERROR)


@app.command()
def train(
    data: Annotated[
        Path,
        typer.Option(
            help="Labelled reviews: an aclImdb folder (its train/ part is used) or Parquet with text and label."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Directory to write the model bundle into.")],
    arch: Annotated[
        str, typer.Option(help="Architecture: lstm, lstm-dropout, lstm-recurrent-dropout, cnn-lstm, bilstm-pool.")
    ] = "bilstm-pool",
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs to train; early stopping may end sooner.")] = 10,
    patience: Annotated[int, typer.Option(min=0, help="Epochs without better validation loss before stopping.")] = 2,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Training batch size [default: the architecture's].")
    ] = None,
    vocab_size: Annotated[
        int | None, typer.Option(min=1, help="Words kept in the vocabulary [default: the architecture's].")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(min=1, help="Tokens kept per review [default: the architecture's].")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(min=0.0, help="Adam learning rate [default: the architecture's].")
    ] = None,
    validation_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the data held out for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for the split, initialization and batch order.")] = 1337,
    expand_contractions: Annotated[
        bool, typer.Option(help='Rewrite "don\'t" as "do not" and so on before tokenizing.')
    ] = False,
    remove_stopwords: Annotated[
        bool, typer.Option(help="Drop common function words (negations are always kept).")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Bundle name [default: imdb-ARCH].")] = None,
    version: Annotated[
        str | None, typer.Option(help="Bundle version written into every scored row [default: date and model hash].")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column, for Parquet data.")] = "text",
    label_column: Annotated[
        str, typer.Option(help="Label column (0/1 or negative/positive), for Parquet data.")
    ] = "label",
) -> None:
    """Train a sentiment model and export it as a self-describing bundle."""
    import pipeline  # noqa: F401  (quiet TensorFlow before it loads)
    from training.datasets import DatasetError
    from training.train import TrainingConfig
    from training.train import train as run_training

    config = TrainingConfig(
        data=data,
        out=out,
        architecture=arch,
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        vocab_size=vocab_size,
        max_length=max_length,
        learning_rate=learning_rate,
        validation_fraction=validation_fraction,
        seed=seed,
        expand_contractions=expand_contractions,
        remove_stopwords=remove_stopwords,
        name=name,
        version=version,
        text_column=text_column,
        label_column=label_column,
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
    table.add_row("metrics", _describe(manifest.metrics))
    table.add_row("training data", _describe(manifest.training_data))
    table.add_row("files", "\n".join(f"{digest[:16]}…  {name}" for name, digest in manifest.files.items()))
    console.print(table)


def _describe(values: dict) -> str:
    return "\n".join(f"{k}: {round(v, 4) if isinstance(v, float) else v}" for k, v in values.items())


def main() -> None:
    app()
