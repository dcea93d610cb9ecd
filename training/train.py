"""Train a sentiment model on labelled reviews and export it as a bundle.

Reads top to bottom like the Keras examples: load data, hold out a stratified validation split,
build the vocabulary on the training part only, encode with the shared preprocessing, fit with
early stopping on validation loss, measure, and write the bundle with its report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from pipeline.bundle import Bundle, write_bundle
from pipeline.preprocessing import PreprocessingConfig, TextEncoder, Vocabulary, tokenize
from schemas.bundle import BINARY_CLASS_NAMES, HISTORY_PLOT_FILE, METRICS_FILE
from training.architectures import DEFAULT_ARCHITECTURE, get_architecture
from training.batching import LengthBucketedBatches
from training.datasets import load_labelled
from training.evaluation import binary_metrics, plot_history


@dataclass(frozen=True)
class TrainingConfig:
    data: Path
    out: Path
    architecture: str = DEFAULT_ARCHITECTURE
    epochs: int = 10
    patience: int = 2
    """Epochs without a better validation loss before stopping; the best epoch's weights are kept."""
    batch_size: int | None = None
    vocab_size: int | None = None
    max_length: int | None = None
    learning_rate: float | None = None
    validation_fraction: float = 0.1
    seed: int = 1337
    expand_contractions: bool = False
    remove_stopwords: bool = False
    name: str | None = None
    version: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    verbose: int | str = "auto"


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices, each class split in the same proportion; sorted for stable order."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    validation = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        validation.append(members[: max(1, round(len(members) * fraction))])
    validation_idx = np.sort(np.concatenate(validation))
    train_idx = np.setdiff1d(np.arange(len(labels)), validation_idx)
    return train_idx, validation_idx


def train(config: TrainingConfig) -> Bundle:
    started = time.perf_counter()
    arch = get_architecture(config.architecture)
    keras.utils.set_random_seed(config.seed)

    data = load_labelled(config.data, config.text_column, config.label_column)
    train_idx, val_idx = stratified_split(data.labels, config.validation_fraction, config.seed)
    train_set, val_set = data.subset(train_idx), data.subset(val_idx)
    print(f"data: {len(data)} reviews from {data.source}; training on {len(train_set)}, validating on {len(val_set)}")

    preprocessing = PreprocessingConfig(
        vocab_size=config.vocab_size or arch.vocab_size,
        max_length=config.max_length or arch.max_length,
        expand_contractions=config.expand_contractions,
        remove_stopwords=config.remove_stopwords,
    )
    train_tokens = tokenize(train_set.texts, preprocessing)
    vocabulary = Vocabulary.build(train_tokens, preprocessing.vocab_size)
    encoder = TextEncoder(preprocessing, vocabulary)
    train_encoded, val_encoded = encoder.encode_tokens(train_tokens), encoder.encode(val_set.texts)
    print(f"vocabulary: {len(vocabulary.tokens)} words; mean review length {train_encoded.lengths.mean():.0f} tokens")

    batch_size = config.batch_size or arch.batch_size
    train_batches = LengthBucketedBatches(train_encoded, train_set.labels, batch_size, shuffle=True, seed=config.seed)
    val_batches = LengthBucketedBatches(val_encoded, val_set.labels, batch_size, shuffle=False)

    model = arch.build(len(vocabulary))
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate or arch.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,  # batches vary in length; XLA would recompile for every shape
    )
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
    )
    fit_started = time.perf_counter()
    history = model.fit(
        train_batches.dataset(),
        validation_data=val_batches.dataset(),
        epochs=config.epochs,
        callbacks=[early_stopping],
        verbose=config.verbose,
    ).history
    fit_seconds = time.perf_counter() - fit_started

    val_scores = model.predict(val_batches.dataset(), verbose=0)[:, 0]
    val_labels = val_set.labels[val_batches.order()]
    metrics = {
        "validation": binary_metrics(val_labels, val_scores),
        "epochs_run": len(history["loss"]),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "history": {k: [float(v) for v in values] for k, values in history.items()},
        "fit_seconds": round(fit_seconds, 1),
        "wall_seconds": None,  # filled in below, once the report is written
        "batch_size": batch_size,
        "seed": config.seed,
        "validation_fraction": config.validation_fraction,
    }
    print(
        f"validation: accuracy {metrics['validation']['accuracy']:.4f}, "
        f"ROC AUC {metrics['validation']['roc_auc']:.4f}, best epoch {metrics['best_epoch']}"
    )

    name = config.name or f"imdb-{arch.name}"
    config.out.mkdir(parents=True, exist_ok=True)
    plot_history(history, config.out / HISTORY_PLOT_FILE, f"{name}: training history")
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    (config.out / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")

    bundle = write_bundle(
        config.out,
        model=model,
        preprocessing=preprocessing,
        vocabulary=vocabulary,
        name=name,
        version=config.version,
        architecture={"name": arch.name, "description": arch.description, "parameters": model.count_params()},
        class_names=list(BINARY_CLASS_NAMES),
        training_data={
            "fingerprint": data.fingerprint(),
            "rows": len(data),
            "training_rows": len(train_set),
            "validation_rows": len(val_set),
            "source": data.source,
        },
        metrics={
            "validation_accuracy": metrics["validation"]["accuracy"],
            "validation_loss": metrics["validation"]["loss"],
            "validation_roc_auc": metrics["validation"]["roc_auc"],
            "epochs_run": metrics["epochs_run"],
            "best_epoch": metrics["best_epoch"],
            "wall_seconds": metrics["wall_seconds"],
        },
        extra_files=(METRICS_FILE, HISTORY_PLOT_FILE),
    )
    print(f"bundle: {bundle.path} (version {bundle.model_version}) in {metrics['wall_seconds']:.0f} s")
    return bundle
