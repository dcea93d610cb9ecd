"""Train a sentiment model and export it as a bundle.

Reads top to bottom like the Keras examples: load data, hold out validation and calibration parts
by movie, pre-train word vectors on the training and unlabelled text (optional), build the
vocabulary, encode with the shared preprocessing, fit with early stopping on the validation part,
fit the calibration on the calibration part, measure, and write the bundle with its report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.bundle import Bundle, write_bundle
from pipeline.engines.length_order import available_cores
from pipeline.labels import Labels
from pipeline.monitoring.training_profile import TrainingProfile
from pipeline.preprocessing import EncodedBatch, PreprocessingConfig, TextEncoder, Vocabulary, tokenize
from pipeline.scorer import ScorerSettings, make_scorer
from schemas.bundle import BINARY_CLASS_NAMES, HISTORY_PLOT_FILE, METRICS_FILE, default_score_label
from training.architectures import DEFAULT_ARCHITECTURE, get_architecture, loss_for
from training.length_buckets import LengthBucketedBatches
from training.calibration_fit import calibration_metrics, choose_and_fit, labels_for
from training.datasets import DatasetError, LabelledReviews, load_labelled, load_sources, load_texts
from training.evaluation import classification_metrics, plot_history
from training.pretraining import WordVectorSettings, texts_fingerprint, word2vec
from training.splits import group_keys, holdout_split

DEFAULT_CACHE = Path.home() / ".cache" / "reviewscore"
REDUCE_LR_FACTOR = 0.3


@dataclass(frozen=True)
class TrainingConfig:
    data: Path | tuple[Path, ...]
    """Labelled training data; several sources are concatenated (e.g. phrases and sentences)."""
    out: Path
    architecture: str = DEFAULT_ARCHITECTURE
    epochs: int = 10
    patience: int = 2
    """Epochs without a better validation loss before stopping; the best epoch's weights are kept."""
    reduce_lr_patience: int = 0
    """Epochs without a better validation loss before the learning rate is cut to 0.3x; 0: never."""
    batch_size: int | None = None
    vocab_size: int | None = None
    max_length: int | None = None
    embedding_dim: int | None = None
    learning_rate: float | None = None
    group_column: str | None = "movie_id"
    """Reviews sharing a value stay on one side of every split; None: each review is its own group."""
    validation_fraction: float = 0.1
    calibration_fraction: float = 0.1
    validation_data: Path | None = None
    """A separate validation set (e.g. SST-5's dev sentences): early stopping and the calibration fit
    use it, and the training data is not split at all."""
    class_names: tuple[str, ...] = BINARY_CLASS_NAMES
    """The classes, in label-index order; labels may be these names or their indices."""
    ordinal: bool = False
    """The classes are ordered from lowest to highest (star ratings): evaluation reports class errors' size."""
    seed: int = 1337
    pretrain_vectors: Path | tuple[Path, ...] | None = None
    """Unlabelled reviews whose text, with the training part's, pre-trains the word vectors (several: all of them)."""
    word_vectors: WordVectorSettings = field(default_factory=WordVectorSettings)
    freeze_embedding: bool = False
    """Keep the pre-trained vectors as they are: the classifier cannot overfit 3 million embedding weights."""
    ema: float = 0.0
    """Momentum of an exponential moving average of the weights (Polyak averaging; 0: off). Validation,
    early stopping and the bundle use the averaged weights, which move less from batch to batch."""
    fine_tune_epochs: int = 0
    """With freeze_embedding: then at most this many epochs with the embedding trainable, at a tenth
    of the learning rate, kept only if they lower the validation loss."""
    cache_dir: Path = DEFAULT_CACHE
    expand_contractions: bool = False
    remove_stopwords: bool = False
    treebank: bool = False
    """The training text is Penn-Treebank tokenized (SST, RT phrases): undo that before cleaning."""
    name: str | None = None
    version: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    verbose: int | str = "auto"


def fit(model, train_batches, val_batches, learning_rate: float, epochs: int, config: TrainingConfig) -> dict:
    """Fit until the validation loss stops improving; the best epoch's weights are kept."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, use_ema=config.ema > 0, ema_momentum=config.ema or 0.99),
        loss=loss_for(len(config.class_names)),
        metrics=["accuracy"],
        jit_compile=False,  # batches vary in length; XLA would recompile for every shape
    )
    # With EMA, the averaged weights are swapped in for validation and at each epoch's end, so early
    # stopping keeps (and restores) the best epoch's averaged weights; it must come after the swap.
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema else []
    callbacks.append(
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
        )
    )
    if config.reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=REDUCE_LR_FACTOR, patience=config.reduce_lr_patience, verbose=1
            )
        )
    return model.fit(
        train_batches.dataset(),
        validation_data=val_batches.dataset(),
        epochs=epochs,
        callbacks=callbacks,
        verbose=config.verbose,
    ).history


def load_data(config: TrainingConfig) -> LabelledReviews:
    """The labelled training data: one source, or several concatenated in order."""
    sources = config.data if isinstance(config.data, tuple | list) else (config.data,)
    group_column = config.group_column if config.validation_data is None else None
    return load_sources(sources, config.text_column, config.label_column, group_column, config.class_names)


def drop_empty(preprocessing: PreprocessingConfig, *parts: LabelledReviews) -> tuple:
    """Each part without its texts that have no token after cleaning, and how many texts were dropped
    (a part passed twice, as validation and calibration can be, is counted once)."""
    kept, dropped, seen = [], 0, set()
    for part in parts:
        lengths = pc.list_value_length(tokenize(part.texts, preprocessing)).to_numpy(zero_copy_only=False)
        keep = np.flatnonzero(lengths > 0)
        kept.append(part if len(keep) == len(part) else part.subset(keep))
        if id(part) not in seen:
            seen.add(id(part))
            dropped += len(part) - len(keep)
    return (*kept, dropped)


def held_out_profile(val_encoded, val_probabilities, cal_encoded, same_part: bool, scorer, config: TrainingConfig):
    """The training profile drift checks compare scoring runs with: every held-out review (validation
    and calibration parts, movies never trained on) as the finished, calibrated model scores it."""
    ids, probabilities = val_encoded, val_probabilities
    if not same_part and len(cal_encoded):
        ids = EncodedBatch.concatenate([val_encoded, cal_encoded])
        probabilities = np.concatenate([val_probabilities, scorer(cal_encoded.rows())])
    if not len(ids):
        return None
    labels = Labels(config.class_names, default_score_label(list(config.class_names)))
    if config.validation_data is not None:
        source = {"data": str(config.validation_data), "part": "every review of the separate validation data"}
    else:
        sources = config.data if isinstance(config.data, tuple | list) else (config.data,)
        source = {
            "data": " + ".join(map(str, sources)),
            "part": "the held-out validation and calibration parts of the training data (never trained on)",
        }
    return TrainingProfile.of(ids, probabilities, labels, source)


def train(config: TrainingConfig) -> Bundle:
    started = time.perf_counter()
    arch = get_architecture(config.architecture)
    if config.freeze_embedding and config.pretrain_vectors is None:
        raise ValueError("--freeze-embedding keeps pre-trained vectors fixed; it needs --pretrain-vectors")
    if config.fine_tune_epochs and not config.freeze_embedding:
        raise ValueError("--fine-tune-epochs follows a frozen phase; it needs --freeze-embedding")
    keras.utils.set_random_seed(config.seed)

    names = labels_for(config.class_names)
    data = load_data(config)
    if config.validation_data is not None:
        # Validation (early stopping) and calibration both on the given set; all the data trains.
        train_set = data
        val_set = cal_set = load_labelled(
            config.validation_data, config.text_column, config.label_column, class_names=config.class_names
        )
        training_texts = set(train_set.texts.to_pylist())
        split_description = {
            "kind": "separate validation data",
            "held_out_by": "file: the validation set is its own file, not drawn from the training data",
            "validation_source": val_set.source,
            "validation_texts_also_in_training": sum(text in training_texts for text in val_set.texts.to_pylist()),
            "rows": {"train": len(train_set), "validation": len(val_set), "calibration": len(val_set)},
        }
        calibration_part = f"the separate validation file {val_set.source} (also used for early stopping)"
    else:
        split = holdout_split(
            len(data),
            data.groups,
            config.validation_fraction,
            config.calibration_fraction,
            config.seed,
            config.group_column,
        )
        train_set, val_set, cal_set = (data.subset(idx) for idx in (split.train, split.validation, split.calibration))
        split_description = split.description
        calibration_part = f"calibration fold: {split_description['kind']}, never used to choose weights or epochs"
    empty = [name for name, count in zip(config.class_names, train_set.class_counts(), strict=True) if count == 0]
    if empty:
        raise DatasetError(f"{data.source}: no training rows of class {', '.join(map(repr, empty))}")
    print(
        f"data: {len(data)} reviews from {data.source}; {split_description['kind']}"
        f"{' split by ' + config.group_column if data.groups is not None and config.validation_data is None else ''}: "
        f"training on {len(train_set)}, validating on {len(val_set)}, calibrating on {len(cal_set)}"
    )

    preprocessing = PreprocessingConfig(
        vocab_size=config.vocab_size or arch.vocab_size,
        max_length=config.max_length or arch.max_length,
        expand_contractions=config.expand_contractions,
        remove_stopwords=config.remove_stopwords,
        treebank=config.treebank,
    )
    # A text with no token left after cleaning ("," is a phrase of the RT data) teaches nothing, and
    # scoring reports such a review as a preprocess failure; it is left out of every part.
    train_set, val_set, cal_set, empty_dropped = drop_empty(preprocessing, train_set, val_set, cal_set)
    if empty_dropped:
        print(f"left out {empty_dropped} texts with no words after cleaning")
    train_tokens = tokenize(train_set.texts, preprocessing)
    vocabulary_tokens, pretraining, embeddings = train_tokens, None, None
    if config.pretrain_vectors is not None:
        # Unlabelled text joins the training part's (never the held-out parts') for the vectors
        # and the vocabulary: words seen only there get ids and meaningful starting vectors.
        sources = (
            config.pretrain_vectors if isinstance(config.pretrain_vectors, tuple | list) else (config.pretrain_vectors,)
        )
        unlabelled = pa.concat_arrays([load_texts(path, config.text_column) for path in sources])
        vocabulary_tokens = pa.concat_arrays([train_tokens, tokenize(unlabelled, preprocessing)])
        fingerprint = texts_fingerprint(train_set.texts, unlabelled)
        settings = WordVectorSettings(**{**config.word_vectors.__dict__, "dim": config.embedding_dim or 100})
        vectors = word2vec(
            vocabulary_tokens,
            settings,
            config.cache_dir,
            f"{fingerprint}:{json.dumps(preprocessing.to_dict(), sort_keys=True)}",
            workers=available_cores(),
        )
        reviews = len(train_set) + len(unlabelled)
        print(
            f"word vectors: {len(vectors.words)} words x {settings.dim} from {reviews} reviews "
            + (f"in {vectors.seconds:.0f} s" if vectors.seconds else f"(cached: {vectors.cache_file})")
        )
    vocabulary = Vocabulary.build(vocabulary_tokens, preprocessing.vocab_size)
    if config.pretrain_vectors is not None:
        embeddings, covered = vectors.embedding_matrix(vocabulary, config.seed)
        pretraining = {
            "method": "gensim Word2Vec " + ("skip-gram" if settings.skip_gram else "CBOW"),
            "settings": settings.__dict__,
            "unlabelled_source": " + ".join(map(str, sources)),
            "unlabelled_rows": len(unlabelled),
            "text_fingerprint": "sha256:" + fingerprint,
            "vocabulary_words_with_vectors": covered,
            "seconds": round(vectors.seconds, 1),
            "embedding": (
                f"frozen, then fine-tuned for at most {config.fine_tune_epochs} epochs at a tenth of the rate"
                if config.freeze_embedding and config.fine_tune_epochs
                else "frozen"
                if config.freeze_embedding
                else "fine-tuned"
            ),
        }
    encoder = TextEncoder(preprocessing, vocabulary)
    train_encoded = encoder.encode_tokens(train_tokens)
    val_encoded, cal_encoded = encoder.encode(val_set.texts), encoder.encode(cal_set.texts)
    print(f"vocabulary: {len(vocabulary.tokens)} words; mean review length {train_encoded.lengths.mean():.0f} tokens")

    batch_size = config.batch_size or arch.batch_size
    train_batches = LengthBucketedBatches(train_encoded, train_set.labels, batch_size, shuffle=True, seed=config.seed)
    val_batches = LengthBucketedBatches(val_encoded, val_set.labels, batch_size, shuffle=False)

    model = arch.build(
        len(vocabulary),
        config.embedding_dim,
        embeddings,
        train_embedding=not config.freeze_embedding,
        num_classes=len(config.class_names),
    )
    learning_rate = config.learning_rate or arch.learning_rate
    fit_started = time.perf_counter()
    history = fit(model, train_batches, val_batches, learning_rate, config.epochs, config)
    if config.freeze_embedding and config.fine_tune_epochs:
        # Then let the vectors move, slowly: sentiment separates words that contexts put together
        # ("good", "bad"), but at full speed the embedding memorises the training reviews.
        frozen_best, frozen_weights = min(history["val_loss"]), model.get_weights()
        model.get_layer("embedding").trainable = True
        tuned = fit(model, train_batches, val_batches, learning_rate / 10, config.fine_tune_epochs, config)
        if min(tuned["val_loss"]) >= frozen_best:
            model.set_weights(frozen_weights)
        history = {k: history[k] + tuned[k] for k in history}
        print(f"fine-tuning the embedding: validation loss {frozen_best:.4f} -> {min(tuned['val_loss']):.4f}")
    fit_seconds = time.perf_counter() - fit_started

    # Held-out logits through the same scorer as the pipeline, so calibration fits what scoring computes.
    scorer = make_scorer(model, preprocessing.max_length, ScorerSettings(engine="keras"))
    cal_logits = scorer.logits(cal_encoded.rows())
    calibration = None
    if len(cal_set):
        groups = group_keys(cal_set.groups, len(cal_set))
        calibration = choose_and_fit(cal_logits, cal_set.labels, groups, config.seed, names, calibration_part)
        scorer.calibration = calibration
    val_probabilities = scorer(val_encoded.rows())
    metrics = {
        "validation_split": split_description,
        "validation": {
            **classification_metrics(val_set.labels, val_probabilities, names, config.ordinal),
            **calibration_metrics(val_set.labels, val_probabilities, names),
            "split": f"validation ({split_description['kind']}, used for early stopping)",
        },
        "epochs_run": len(history["loss"]),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "history": {k: [float(v) for v in values] for k, values in history.items()},
        "fit_seconds": round(fit_seconds, 1),
        "wall_seconds": None,  # filled in below, once the report is written
        "batch_size": batch_size,
        "seed": config.seed,
    }
    if calibration is not None:
        held_out_probabilities = calibration.probabilities(cal_logits)
        metrics["calibration"] = {
            **classification_metrics(cal_set.labels, held_out_probabilities, names, config.ordinal),
            **calibration.details["after"],  # choose_and_fit measured these on the same scores
            "split": f"{calibration_part}; calibration fitted on it (cross-fitted figures in calibration.json)",
            "uncalibrated": calibration.details["before"],
            "method": calibration.method,
        }
    if pretraining:
        metrics["pretraining"] = pretraining
    profile = held_out_profile(val_encoded, val_probabilities, cal_encoded, cal_set is val_set, scorer, config)
    held_out, validation = metrics.get("calibration", metrics["validation"]), metrics["validation"]
    print(
        f"validation: accuracy {validation['accuracy']:.4f}, macro-F1 {validation['macro_f1']:.4f}, "
        f"best epoch {metrics['best_epoch']}"
        + (
            f"; calibration: accuracy {held_out['accuracy']:.4f}, "
            f"ECE {held_out['uncalibrated']['ece']:.4f} -> {held_out['ece']:.4f} ({calibration.method})"
            if calibration is not None
            else ""
        )
    )

    name = config.name or f"imdb-{arch.name}"
    config.out.mkdir(parents=True, exist_ok=True)
    plot_history(history, config.out / HISTORY_PLOT_FILE, f"{name}: training history")
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    (config.out / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")

    summary = {
        "validation_split": split_description,
        "validation_accuracy": metrics["validation"]["accuracy"],
        "validation_macro_f1": metrics["validation"]["macro_f1"],
        "validation_loss": metrics["validation"]["loss"],
        **({"validation_roc_auc": metrics["validation"]["roc_auc"]} if "roc_auc" in metrics["validation"] else {}),
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "wall_seconds": metrics["wall_seconds"],
    }
    if calibration is not None:
        summary["heldout"] = {
            "split": calibration_part,
            "accuracy": held_out["accuracy"],
            "macro_f1": held_out["macro_f1"],
            **({"roc_auc": held_out["roc_auc"]} if "roc_auc" in held_out else {}),
            "ece": held_out["ece"],
            "ece_uncalibrated": held_out["uncalibrated"]["ece"],
            "brier": held_out["brier"],
            "rows": held_out["examples"],
        }
    training_data = {
        "fingerprint": data.fingerprint(),
        "rows": len(data),
        "training_rows": len(train_set),
        "validation_rows": len(val_set),
        "calibration_rows": len(cal_set),
        "empty_texts_left_out": empty_dropped,
        "source": data.source,
    }
    if pretraining:
        training_data["pretraining"] = pretraining
    bundle = write_bundle(
        config.out,
        model=model,
        preprocessing=preprocessing,
        vocabulary=vocabulary,
        name=name,
        version=config.version,
        architecture={
            "name": arch.name,
            "description": arch.description,
            "parameters": model.count_params(),
            "embedding_dim": model.get_layer("embedding").output_dim,
            "embedding": ("word2vec, " + pretraining["embedding"]) if pretraining else "trained from random",
        },
        class_names=list(config.class_names),
        training_data=training_data,
        metrics=summary,
        ordinal=config.ordinal,
        calibration=calibration,
        profile=profile,
        extra_files=(METRICS_FILE, HISTORY_PLOT_FILE),
    )
    print(f"bundle: {bundle.path} (version {bundle.model_version}) in {metrics['wall_seconds']:.0f} s")
    return bundle
