"""`reviewscore train`: train a model and write it as a bundle (training/train.py does the work)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import DEFAULT_CACHE_DIR, fail


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
