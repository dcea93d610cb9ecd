"""Train a sentiment model and export it as a bundle.

`train` reads top to bottom like the Keras examples, one named stage after another: load the
data, split it (validation and calibration parts held out by movie), pre-train word vectors on
the training and unlabelled text (optional), build the vocabulary, encode with the shared
preprocessing, fit with early stopping on the validation part (then fine-tune the embedding,
optional), calibrate on the calibration part, evaluate, and write the bundle with its report.
Each stage is a function of what the stages before it returned, so a test can run one alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import log_softmax

from pipeline.model.bundle import Bundle, write_bundle
from pipeline.model.calibration import Calibration
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.calibrated import make_scorer
from pipeline.model.engines.length_order import available_cores
from pipeline.model.labels import Labels
from pipeline.model.monitoring.training_profile import TrainingProfile
from pipeline.model.preprocessing import EncodedBatch, PreprocessingConfig, TextEncoder, Vocabulary, tokenize
from pipeline.model.progress import EPOCHS, Display, Step
from schemas.bundle import CALIBRATION_FILE, HISTORY_PLOT_FILE, METRICS_FILE, default_score_label
from training.architectures import WIDE_LAYER, Architecture, get_architecture, loss_for
from training.calibration_fit import calibration_metrics, choose_and_fit, expected_calibration_error, labels_for
from training.config import (
    PRETRAINED_EMBEDDING_DIM,
    REDUCE_LR_FACTOR,
    TrainingConfig,
    WordVectorSettings,
)
from training.datasets import DatasetError, LabelledReviews, load_labelled, load_sources, load_texts
from training.distillation import Targets, distilled_targets, label_targets, one_hot
from training.evaluation import classification_metrics, plot_history
from training.length_buckets import LengthBucketedBatches
from training.ngram import NgramModel
from training.onnx_export import write_onnx
from training.overlap import write_training_hashes
from training.pretraining import WordVectors, texts_fingerprint, word2vec
from training.sentences import review_sentences
from training.splits import group_keys, holdout_split
from training.teacher import Teacher, TeacherCache, combine, teacher_settings_record, timed_member
from training.wide_fit import FittedWide, fit_wide

__all__ = [  # train, and the stages it runs (each testable alone)
    "build_vocabulary",
    "calibrate",
    "distillation_record",
    "encode",
    "evaluate",
    "fit_model",
    "held_out_profile",
    "initial_embedding",
    "leave_out_empty_texts",
    "load_data",
    "preprocessing_for",
    "pretrain_word_vectors",
    "record_training_hashes",
    "split",
    "student_targets",
    "teach",
    "train",
    "unlabelled_reviews",
    "write_report",
]


def train(config: TrainingConfig) -> Bundle:
    """Train a model as `config` says and write it, with its report, as a bundle in `config.out`."""
    started = time.perf_counter()
    arch = get_architecture(config.architecture)
    data = load_data(config)
    preprocessing = preprocessing_for(arch, config)
    parts = leave_out_empty_texts(split(data, config), preprocessing)
    train_tokens = tokenize(parts.train.texts, preprocessing)
    vectors = pretrain_word_vectors(train_tokens, parts.train, preprocessing, config)
    vocabulary = build_vocabulary(train_tokens, vectors, preprocessing.vocab_size)
    embedding = initial_embedding(vectors, vocabulary, config)
    encoder = TextEncoder(preprocessing, vocabulary)
    encoded = encode(encoder, train_tokens, parts)
    unlabelled = unlabelled_reviews(encoder, vectors, config)
    member_arch = get_architecture(arch.teacher_member) if arch.teacher_member else arch
    recipe = Recipe(member_arch, preprocessing, len(vocabulary), embedding, train_tokens, encoded, parts)
    teacher = teach(recipe, data, unlabelled, config)
    targets = student_targets(teacher, encoded, parts, unlabelled, config)
    wide = fit_wide_part(arch, len(vocabulary), encoded, parts, config)

    fitted = fit_model(arch, len(vocabulary), embedding, targets, encoded, parts, config, wide)
    # Held-out logits through the same scorer as the pipeline, so calibration fits what scoring computes.
    scorer = make_scorer(fitted.model, preprocessing.max_length, ScorerSettings(engine="keras"))
    calibration_logits = scorer.logits(encoded.calibration.rows())
    calibration = calibrate(calibration_logits, parts, config)
    if calibration is not None:
        scorer.calibration = calibration
    validation_probabilities = scorer(encoded.validation.rows())

    metrics = evaluate(parts, fitted, validation_probabilities, calibration_logits, calibration, embedding, config)
    metrics.update(distillation_record(teacher, targets, unlabelled, parts, config))
    profile = held_out_profile(encoded, validation_probabilities, parts, scorer, config)
    write_report(metrics, fitted.history, config, started)
    hashes = record_training_hashes(parts, config.out)
    bundle = write_bundle(
        config.out,
        model=fitted.model,
        preprocessing=preprocessing,
        vocabulary=vocabulary,
        name=config.bundle_name,
        version=config.version,
        architecture=architecture_record(arch, fitted.model, embedding, wide),
        class_names=list(config.class_names),
        training_data=training_data_record(data, parts, embedding, metrics.get("distillation")),
        metrics=manifest_metrics(metrics, parts),
        ordinal=config.ordinal,
        calibration=calibration,
        profile=profile,
        extra_files=(METRICS_FILE, HISTORY_PLOT_FILE, hashes),
        write_onnx=write_onnx,
    )
    print(f"bundle: {bundle.path} (version {bundle.model_version}) in {metrics['wall_seconds']:.0f} s")
    return bundle


# Data: load, split, clean.


@dataclass(frozen=True)
class Parts:
    """The labelled data's three parts: training, validation (early stopping chooses the epoch on it)
    and calibration (the calibration is fitted on it, and the reported accuracy measured on it)."""

    train: LabelledReviews
    validation: LabelledReviews
    calibration: LabelledReviews
    """The validation part itself (the same object) when a separate validation file serves both."""
    description: dict[str, Any]
    """How the parts were drawn: the manifest's `validation_split`."""
    calibration_source: str
    """Where the calibration part came from, in words, for the report and the manifest."""
    empty_texts_left_out: int = 0

    @property
    def calibration_is_validation(self) -> bool:
        return self.calibration is self.validation


def load_data(config: TrainingConfig) -> LabelledReviews:
    """The labelled training data: one source, or several concatenated in order."""
    group_column = config.group_column if config.validation_data is None else None
    return load_sources(config.data, config.text_column, config.label_column, group_column, config.class_names)


def split(data: LabelledReviews, config: TrainingConfig) -> Parts:
    """The three parts: whole groups (movies) dealt out by `holdout_split`, deterministic for a seed;
    or, given a separate validation file, all of `data` trains and that file is both held-out parts."""
    parts = _separate_validation(data, config) if config.validation_data is not None else _held_out(data, config)
    counts = parts.train.class_counts()
    empty = [name for name, count in zip(config.class_names, counts, strict=True) if count == 0]
    if empty:
        raise DatasetError(f"{data.source}: no training rows of class {', '.join(map(repr, empty))}")
    grouped = data.groups is not None and config.validation_data is None
    print(
        f"data: {len(data)} reviews from {data.source}; {parts.description['kind']}"
        f"{' split by ' + config.group_column if grouped else ''}: "
        f"training on {len(parts.train)}, validating on {len(parts.validation)}, "
        f"calibrating on {len(parts.calibration)}"
    )
    return parts


def _held_out(data: LabelledReviews, config: TrainingConfig) -> Parts:
    drawn = holdout_split(
        len(data),
        data.groups,
        config.validation_fraction,
        config.calibration_fraction,
        config.seed,
        config.group_column,
    )
    train, validation, calibration = (data.subset(rows) for rows in (drawn.train, drawn.validation, drawn.calibration))
    source = f"calibration fold: {drawn.description['kind']}, never used to choose weights or epochs"
    return Parts(train, validation, calibration, drawn.description, source)


def _separate_validation(data: LabelledReviews, config: TrainingConfig) -> Parts:
    validation = load_labelled(
        config.validation_data, config.text_column, config.label_column, class_names=config.class_names
    )
    training_texts = set(data.texts.to_pylist())
    description = {
        "kind": "separate validation data",
        "held_out_by": "file: the validation set is its own file, not drawn from the training data",
        "validation_source": validation.source,
        "validation_texts_also_in_training": sum(text in training_texts for text in validation.texts.to_pylist()),
        "rows": {"train": len(data), "validation": len(validation), "calibration": len(validation)},
    }
    source = f"the separate validation file {validation.source} (also used for early stopping)"
    return Parts(data, validation, validation, description, source)


def preprocessing_for(arch: Architecture, config: TrainingConfig) -> PreprocessingConfig:
    """The architecture's vocabulary size and length unless the config says otherwise."""
    return PreprocessingConfig(
        vocab_size=config.vocab_size or arch.vocab_size,
        max_length=config.max_length or arch.max_length,
        expand_contractions=config.expand_contractions,
        remove_stopwords=config.remove_stopwords,
        treebank=config.treebank,
    )


def leave_out_empty_texts(parts: Parts, preprocessing: PreprocessingConfig) -> Parts:
    """Every part without its texts that have no token after cleaning ("," is a phrase of the RT data):
    such a text teaches nothing, and scoring reports it as a preprocess failure. A validation part
    that is also the calibration part stays one part, counted once."""
    train, train_left_out = _with_words(parts.train, preprocessing)
    validation, validation_left_out = _with_words(parts.validation, preprocessing)
    calibration, calibration_left_out = (
        (validation, 0) if parts.calibration_is_validation else _with_words(parts.calibration, preprocessing)
    )
    left_out = train_left_out + validation_left_out + calibration_left_out
    if left_out:
        print(f"left out {left_out} texts with no words after cleaning")
    return replace(parts, train=train, validation=validation, calibration=calibration, empty_texts_left_out=left_out)


def _with_words(part: LabelledReviews, preprocessing: PreprocessingConfig) -> tuple[LabelledReviews, int]:
    lengths = pc.list_value_length(tokenize(part.texts, preprocessing)).to_numpy(zero_copy_only=False)
    keep = np.flatnonzero(lengths > 0)
    return (part if len(keep) == len(part) else part.subset(keep)), len(part) - len(keep)


# Words: pre-trained vectors, vocabulary, encoding.


@dataclass(frozen=True)
class PretrainedVectors:
    vectors: WordVectors
    settings: WordVectorSettings
    unlabelled_tokens: pa.Array
    """The unlabelled reviews' tokens: the vocabulary is built from them too."""
    fingerprint: str
    """sha256 of the training part's and the unlabelled reviews' texts."""


def pretrain_word_vectors(
    train_tokens: pa.Array, train_part: LabelledReviews, preprocessing: PreprocessingConfig, config: TrainingConfig
) -> PretrainedVectors | None:
    """Word2vec vectors of the training part's and the unlabelled reviews' words, never the held-out
    parts', cached by text and settings; None without `pretrain_vectors`. Words seen only in the
    unlabelled text get ids and meaningful starting vectors."""
    if config.pretrain_vectors is None:
        return None
    unlabelled = pa.concat_arrays([load_texts(path, config.text_column) for path in config.pretrain_vectors])
    unlabelled_tokens = tokenize(unlabelled, preprocessing)
    fingerprint = texts_fingerprint(train_part.texts, unlabelled)
    settings = replace(config.word_vectors, dim=config.embedding_dim or PRETRAINED_EMBEDDING_DIM)
    vectors = word2vec(
        pa.concat_arrays([train_tokens, unlabelled_tokens]),
        settings,
        config.cache_dir,
        f"{fingerprint}:{json.dumps(preprocessing.model_dump(mode='json'), sort_keys=True)}",
        workers=available_cores(),
    )
    print(
        f"word vectors: {len(vectors.words)} words x {settings.dim} from {len(train_part) + len(unlabelled)} reviews "
        + (f"in {vectors.seconds:.0f} s" if vectors.seconds else f"(cached: {vectors.cache_file})")
    )
    return PretrainedVectors(vectors, settings, unlabelled_tokens, fingerprint)


def build_vocabulary(train_tokens: pa.Array, pretrained: PretrainedVectors | None, size: int) -> Vocabulary:
    """The `size` most frequent words of the training part (and of the unlabelled reviews when
    pre-training): never of the held-out parts, which must stay unseen."""
    tokens = train_tokens if pretrained is None else pa.concat_arrays([train_tokens, pretrained.unlabelled_tokens])
    return Vocabulary.build(tokens, size)


@dataclass(frozen=True)
class InitialEmbedding:
    weights: np.ndarray | None
    """(vocabulary ids, dim) starting weights; None: Keras's random initialisation."""
    pretraining: dict[str, Any] | None = None
    """What the manifest records of the pre-training; None without it."""

    @property
    def description(self) -> str:
        return "word2vec, " + self.pretraining["embedding"] if self.pretraining else "trained from random"


def initial_embedding(
    pretrained: PretrainedVectors | None, vocabulary: Vocabulary, config: TrainingConfig
) -> InitialEmbedding:
    """The embedding's starting weights: the pre-trained vector of each vocabulary word, or random."""
    if pretrained is None:
        return InitialEmbedding(None)
    weights, covered = pretrained.vectors.embedding_matrix(vocabulary, config.seed)
    if config.freeze_embedding and config.fine_tune_epochs:
        schedule = f"frozen, then fine-tuned for at most {config.fine_tune_epochs} epochs at a tenth of the rate"
    else:
        schedule = "frozen" if config.freeze_embedding else "fine-tuned"
    pretraining = {
        "method": "gensim Word2Vec " + ("skip-gram" if pretrained.settings.skip_gram else "CBOW"),
        "settings": asdict(pretrained.settings),
        "unlabelled_source": " + ".join(map(str, config.pretrain_vectors)),
        "unlabelled_rows": len(pretrained.unlabelled_tokens),
        "text_fingerprint": "sha256:" + pretrained.fingerprint,
        "vocabulary_words_with_vectors": covered,
        "seconds": round(pretrained.vectors.seconds, 1),
        "embedding": schedule,
    }
    return InitialEmbedding(weights, pretraining)


@dataclass(frozen=True)
class EncodedParts:
    train: EncodedBatch
    validation: EncodedBatch
    calibration: EncodedBatch


def encode(encoder: TextEncoder, train_tokens: pa.Array, parts: Parts) -> EncodedParts:
    """Every part as token ids, by the same encoder scoring uses."""
    encoded = EncodedParts(
        encoder.encode_tokens(train_tokens),
        encoder.encode(parts.validation.texts),
        encoder.encode(parts.calibration.texts),
    )
    print(
        f"vocabulary: {len(encoder.vocabulary.tokens)} words; "
        f"mean review length {encoded.train.lengths.mean():.0f} tokens"
    )
    return encoded


# Teacher: unlabelled reviews, members, combination, the student's targets.


@dataclass(frozen=True)
class Unlabelled:
    """Unlabelled reviews the teacher labels for the student."""

    tokens: pa.Array
    encoded: EncodedBatch
    fingerprint: str
    source: str


def unlabelled_reviews(
    encoder: TextEncoder, pretrained: PretrainedVectors | None, config: TrainingConfig
) -> Unlabelled | None:
    """`distill_unlabelled`'s reviews, tokenized and encoded as scoring does (the word-vector stage's
    tokens when they are the same files); None without them."""
    if config.distill_unlabelled is None:
        return None
    texts = pa.concat_arrays([load_texts(path, config.text_column) for path in config.distill_unlabelled])
    source = " + ".join(map(str, config.distill_unlabelled))
    if config.distill_sentences:
        texts = review_sentences(texts, config.distill_sentences, config.seed)
        source = f"{len(texts)} sentences of {source}"
    same_files = pretrained is not None and config.pretrain_vectors == config.distill_unlabelled
    reuse = same_files and not config.distill_sentences
    tokens = pretrained.unlabelled_tokens if reuse else tokenize(texts, encoder.config)
    print(f"unlabelled texts for the teacher to label: {len(texts)} from {source}")
    return Unlabelled(tokens, encoder.encode_tokens(tokens), texts_fingerprint(texts), source)


@dataclass(frozen=True)
class Recipe:
    """What the teacher's members learn from: the run's own cleaning, vocabulary, vectors and parts."""

    arch: Architecture
    preprocessing: PreprocessingConfig
    vocabulary_size: int
    embedding: InitialEmbedding
    train_tokens: pa.Array
    encoded: EncodedParts
    parts: Parts


def teach(recipe: Recipe, data: LabelledReviews, unlabelled: Unlabelled | None, config: TrainingConfig):
    """The teacher (or None when the config asks for none): its members, each trained on the training
    part only or read from the cache, combined by weights chosen on the validation part."""
    if not config.teacher.enabled:
        return None
    labels = recipe.parts.validation.labels
    cache = TeacherCache(config.cache_dir, teacher_inputs(recipe, data, unlabelled, config))
    members = []
    for name, seed in config.teacher.members():
        member = cache.load(name)
        if member is None:
            print(f"teacher member {name}: training")
            outputs = ngram_outputs if seed is None else partial(bilstm_outputs, seed=seed)
            member = timed_member(name, partial(outputs, recipe, unlabelled, config))
            cache.save(member)
            how = f"trained in {member.seconds:.0f} s, cached as {cache.file(name)}"
        else:
            how = f"read from the cache ({cache.file(name)})"
        members.append(member)
        accuracy = float((member.log_probabilities["validation"].argmax(1) == labels).mean())
        print(f"teacher member {name}: {how}; validation accuracy {accuracy:.4f}")
    teacher = combine(members, labels)
    accuracy = float((teacher.log_probabilities("validation").argmax(1) == labels).mean())
    print(f"teacher: weights {np.round(teacher.weights, 3).tolist()}, validation accuracy {accuracy:.4f}")
    return teacher


NOT_MEMBER_INPUTS = (
    "data",
    "out",
    "pretrain_vectors",
    "distill_unlabelled",
    "distill_sentences",
    "cache_dir",
    "name",
    "version",
    "verbose",
    "init_seed",
)
"""TrainingConfig fields a teacher member's outputs do not depend on, or only through a fingerprint
that stands for them (the data's, the unlabelled texts'): paths, the bundle's name, the student's
own seed (members have theirs)."""


def teacher_inputs(
    recipe: Recipe, data: LabelledReviews, unlabelled: Unlabelled | None, config: TrainingConfig
) -> dict[str, Any]:
    """Everything a member's outputs depend on, for the cache key: the data, the split, the vectors and
    the recipe that trains members (not where files live, nor what only shapes the student)."""
    recipe_fields = asdict(config)
    for name in NOT_MEMBER_INPUTS:
        recipe_fields.pop(name)
    recipe_fields["architecture"] = recipe.arch.name  # the members', which a wide-and-deep student shares
    for name in ("labelled_weight", "ngram", "seeds"):  # which other members there are: not this one's input
        recipe_fields["teacher"].pop(name)
    return {
        "data": data.fingerprint(),
        "split": recipe.parts.description,
        "unlabelled": unlabelled.fingerprint if unlabelled else None,
        "pretraining": recipe.embedding.pretraining and recipe.embedding.pretraining["text_fingerprint"],
        "recipe": recipe_fields,
    }


def ngram_outputs(recipe: Recipe, unlabelled: Unlabelled | None, config: TrainingConfig) -> dict[str, np.ndarray]:
    """The n-gram member, fitted to the training part's labels: its log-probabilities on every part."""
    parts = recipe.parts
    model = NgramModel.fit(
        recipe.train_tokens, parts.train.labels, len(config.class_names), config.teacher.ngram_settings
    )
    print(f"n-gram model: {model.features} n-grams")
    tokens = {
        "train": recipe.train_tokens,
        "validation": tokenize(parts.validation.texts, recipe.preprocessing),
        "calibration": tokenize(parts.calibration.texts, recipe.preprocessing),
        "unlabelled": unlabelled.tokens if unlabelled else pa.array([], pa.large_list(pa.string())),
    }
    return {part: model.log_probabilities(part_tokens) for part, part_tokens in tokens.items()}


def bilstm_outputs(
    recipe: Recipe, unlabelled: Unlabelled | None, config: TrainingConfig, seed: int
) -> dict[str, np.ndarray]:
    """A member of the run's own architecture and seed `seed`, fitted to the training part's labels:
    its log-probabilities on every part."""
    targets = label_targets(recipe.encoded.train, recipe.parts.train.labels)
    fitted = fit_model(
        recipe.arch,
        recipe.vocabulary_size,
        recipe.embedding,
        targets,
        recipe.encoded,
        recipe.parts,
        replace(config, seed=seed),
    )
    scorer = make_scorer(fitted.model, recipe.preprocessing.max_length, ScorerSettings(engine="keras"))
    encoded = {
        "train": recipe.encoded.train,
        "validation": recipe.encoded.validation,
        "calibration": recipe.encoded.calibration,
        "unlabelled": unlabelled.encoded if unlabelled else None,
    }
    classes = len(config.class_names)
    return {
        part: log_probabilities(scorer.logits(batch.rows()), classes) if batch is not None else np.zeros((0, classes))
        for part, batch in encoded.items()
    }


def log_probabilities(logits: np.ndarray, classes: int) -> np.ndarray:
    """(texts, classes) log-probabilities from the model's logits: one per text for a sigmoid output."""
    if classes == 2:
        z = np.asarray(logits, dtype=np.float64).reshape(-1)
        return np.stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)], axis=1)
    return log_softmax(np.asarray(logits, dtype=np.float64), axis=1)


def student_targets(
    teacher: Teacher | None, encoded: EncodedParts, parts: Parts, unlabelled: Unlabelled | None, config: TrainingConfig
) -> Targets:
    """The training part's labels; or, with a teacher, its soft labels there and on the unlabelled reviews."""
    if teacher is None:
        return label_targets(encoded.train, parts.train.labels)
    extra = unlabelled.encoded if unlabelled else None
    targets = distilled_targets(teacher, encoded.train, parts.train.labels, extra, config.teacher.labelled_weight)
    print(f"student: {len(targets)} reviews with the teacher's soft labels ({targets.labelled} labelled)")
    return targets


def distillation_record(
    teacher: Teacher | None, targets: Targets, unlabelled: Unlabelled | None, parts: Parts, config: TrainingConfig
) -> dict[str, Any]:
    """The report's and manifest's account of the teacher; empty without one."""
    if teacher is None:
        return {}
    names = labels_for(config.class_names)
    labels = {"validation": parts.validation.labels, "calibration": parts.calibration.labels}

    def figures(y: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
        found = classification_metrics(y, probabilities, names, config.ordinal)
        kept = {key: found[key] for key in ("accuracy", "loss", "macro_f1", "roc_auc") if key in found}
        return {**kept, "ece": expected_calibration_error(y, probabilities, names)}  # uncalibrated

    return {
        "distillation": {
            "teacher": teacher.record(labels, figures),
            "settings": teacher_settings_record(config.teacher),
            "student_reviews": len(targets),
            "labelled_reviews": targets.labelled,
            "unlabelled_source": unlabelled.source if unlabelled else None,
            "unlabelled_rows": len(unlabelled.encoded) if unlabelled else 0,
        }
    }


# Model: fit, fine-tune, calibrate.


def fit_wide_part(
    arch: Architecture, vocabulary_size: int, encoded: EncodedParts, parts: Parts, config: TrainingConfig
) -> FittedWide | None:
    """A wide-and-deep architecture's wide part, fitted to the training part's labels before the
    network (training/wide_fit.py); None for an architecture without one."""
    ngrams = arch.hashed_ngrams(vocabulary_size)
    if ngrams is None:
        return None
    wide = fit_wide(
        ngrams,
        encoded.train,
        parts.train.labels,
        encoded.validation,
        parts.validation.labels,
        encoded.calibration,
        parts.calibration.labels,
        len(config.class_names),
    )
    print(
        f"wide part: {wide.table.shape[0]} rows, C={wide.regularisation}, fitted in {wide.seconds:.0f} s; "
        f"alone: held-out accuracy {wide.held_out_accuracy:.4f}"
    )
    return wide


@dataclass(frozen=True)
class Fitted:
    model: keras.Model
    """With the best epoch's weights."""
    history: dict[str, list[float]]
    """Keras's per-epoch history, the fine-tuning epochs after the first phase's."""
    seconds: float
    batch_size: int


def fit_model(
    arch: Architecture,
    vocabulary_size: int,
    embedding: InitialEmbedding,
    targets: Targets,
    encoded: EncodedParts,
    parts: Parts,
    config: TrainingConfig,
    wide: FittedWide | None = None,
) -> Fitted:
    """Build the architecture and fit it on length-bucketed batches of `targets` (the training part's
    labels, or a teacher's probabilities), with early stopping on the validation part; then fine-tune
    a frozen embedding when the config asks. A wide part's fitted table is set first and stays fixed;
    the classifier's bias starts at its intercept."""
    keras.utils.set_random_seed(config.model_seed)
    batch_size = config.batch_size or arch.batch_size
    classes = len(config.class_names)
    validation_labels = parts.validation.labels
    if targets.soft and classes > 2:
        validation_labels = one_hot(validation_labels, classes)  # one loss for both: categorical cross-entropy
    train_batches = LengthBucketedBatches(
        targets.encoded, targets.values, batch_size, shuffle=True, seed=config.model_seed
    )
    val_batches = LengthBucketedBatches(encoded.validation, validation_labels, batch_size, shuffle=False)
    model = arch.build(
        vocabulary_size,
        config.embedding_dim,
        embedding.weights,
        train_embedding=not config.freeze_embedding,
        num_classes=classes,
    )
    if wide is not None:
        model.get_layer(WIDE_LAYER).set_weights([wide.table])
        head = model.layers[-1]
        head.set_weights([head.get_weights()[0], wide.intercept])
    learning_rate = config.learning_rate or arch.learning_rate
    loss = loss_for(classes, soft=targets.soft)
    started = time.perf_counter()
    history = fit(model, train_batches, val_batches, learning_rate, config.epochs, loss, config)
    if config.freeze_embedding and config.fine_tune_epochs:
        history = fine_tune(model, train_batches, val_batches, learning_rate, history, loss, config)
    return Fitted(model, history, time.perf_counter() - started, batch_size)


def fit(
    model, train_batches, val_batches, learning_rate: float, epochs: int, loss: str, config: TrainingConfig
) -> dict:
    """Fit until the validation loss stops improving; the best epoch's weights are kept."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, use_ema=config.ema > 0, ema_momentum=config.ema or 0.99),
        loss=loss,
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
    if config.verbose != 0:
        callbacks.append(EpochProgress(epochs))
    return model.fit(
        train_batches.dataset(),
        validation_data=val_batches.dataset(),
        epochs=epochs,
        callbacks=callbacks,
        verbose=0,  # EpochProgress says it, in the form every long step's progress takes
    ).history


class EpochProgress(keras.callbacks.Callback):
    """Training's progress as every long step shows it: epoch k of at most N (early stopping may end
    sooner), the batches within it, and the time left for the run by the epochs' mean time so far; a
    bar on a terminal, a plain line every few seconds elsewhere. Each epoch's losses and accuracies
    follow on a line of their own, as Keras printed them."""

    async_safe = True
    """Its batch hook reads no logs, so Keras need not wait for each batch's values before the next."""

    def __init__(self, epochs: int, clock=time.monotonic, terminal: bool | None = None):
        super().__init__()
        self.step = Step("training", EPOCHS, epochs, at_most=True)
        self.display = Display([self.step], clock=clock, terminal=terminal)
        self.epoch = 0

    def on_train_begin(self, logs=None) -> None:
        self.display.started = self.display.last_line = self.display.clock()  # the time left counts from here

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        steps = (self.params or {}).get("steps")
        if steps:
            detail = f"batch {batch + 1:,} of {steps:,}"
            self.display.update(self.step.name, self.epoch + (batch + 1) / steps, detail=detail)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        figures = ", ".join(f"{name} {float(value):.4f}" for name, value in (logs or {}).items())
        self.display.note(f"epoch {epoch + 1}: {figures}")
        self.display.update(self.step.name, epoch + 1)

    def on_train_end(self, logs=None) -> None:
        self.display.close()


def fine_tune(
    model, train_batches, val_batches, learning_rate: float, history: dict, loss: str, config: TrainingConfig
) -> dict:
    """Let the frozen vectors move, slowly: sentiment separates words that contexts put together
    ("good", "bad"), but at full speed the embedding memorises the training reviews. The tuned
    weights are kept only if they lower the validation loss; returns both phases' history."""
    frozen_best, frozen_weights = min(history["val_loss"]), model.get_weights()
    model.get_layer("embedding").trainable = True
    tuned = fit(model, train_batches, val_batches, learning_rate / 10, config.fine_tune_epochs, loss, config)
    if min(tuned["val_loss"]) >= frozen_best:
        model.set_weights(frozen_weights)
    print(f"fine-tuning the embedding: validation loss {frozen_best:.4f} -> {min(tuned['val_loss']):.4f}")
    return {k: history[k] + tuned[k] for k in history}


def calibrate(logits: np.ndarray, parts: Parts, config: TrainingConfig) -> Calibration | None:
    """The calibration fitted on the calibration part's logits (the method chosen by cross-fitting
    over its groups); None when there is no calibration part."""
    part = parts.calibration
    if not len(part):
        return None
    groups = group_keys(part.groups, len(part))
    names = labels_for(config.class_names)
    return choose_and_fit(logits, part.labels, groups, config.seed, names, parts.calibration_source)


# Report: evaluate, profile, write.


def evaluate(
    parts: Parts,
    fitted: Fitted,
    validation_probabilities: np.ndarray,
    calibration_logits: np.ndarray,
    calibration: Calibration | None,
    embedding: InitialEmbedding,
    config: TrainingConfig,
) -> dict[str, Any]:
    """The training report (metrics.json): the validation part's figures as the finished, calibrated
    model scores it, the calibration part's (the accuracy to quote: nothing chose weights on it), and
    the fit's history."""
    names = labels_for(config.class_names)
    metrics: dict[str, Any] = {
        "validation_split": parts.description,
        "validation": {
            **classification_metrics(parts.validation.labels, validation_probabilities, names, config.ordinal),
            **calibration_metrics(parts.validation.labels, validation_probabilities, names),
            "split": f"validation ({parts.description['kind']}, used for early stopping)",
        },
        "epochs_run": len(fitted.history["loss"]),
        "best_epoch": int(np.argmin(fitted.history["val_loss"])) + 1,
        "history": {k: [float(v) for v in values] for k, values in fitted.history.items()},
        "fit_seconds": round(fitted.seconds, 1),
        "wall_seconds": None,  # filled in by write_report
        "batch_size": fitted.batch_size,
        "seed": config.seed,
        "init_seed": config.model_seed,
    }
    if calibration is not None:
        calibrated = calibration.probabilities(calibration_logits)
        metrics["calibration"] = {
            **classification_metrics(parts.calibration.labels, calibrated, names, config.ordinal),
            **calibration.details["after"],  # choose_and_fit measured these on the same scores
            "split": f"{parts.calibration_source}; calibration fitted on it "
            f"(cross-fitted figures in {CALIBRATION_FILE})",
            "uncalibrated": calibration.details["before"],
            "method": calibration.method,
        }
    if embedding.pretraining:
        metrics["pretraining"] = embedding.pretraining
    print_figures(metrics)
    return metrics


def print_figures(metrics: dict[str, Any]) -> None:
    validation, held_out = metrics["validation"], metrics.get("calibration")
    print(
        f"validation: accuracy {validation['accuracy']:.4f}, macro-F1 {validation['macro_f1']:.4f}, "
        f"best epoch {metrics['best_epoch']}"
        + (
            f"; calibration: accuracy {held_out['accuracy']:.4f}, "
            f"ECE {held_out['uncalibrated']['ece']:.4f} -> {held_out['ece']:.4f} ({held_out['method']})"
            if held_out is not None
            else ""
        )
    )


def held_out_profile(
    encoded: EncodedParts, validation_probabilities: np.ndarray, parts: Parts, scorer, config: TrainingConfig
) -> TrainingProfile | None:
    """The training profile drift checks compare scoring runs with: every held-out review (validation
    and calibration parts, movies never trained on) as the finished, calibrated model scores it."""
    ids, probabilities = encoded.validation, validation_probabilities
    if not parts.calibration_is_validation and len(encoded.calibration):
        ids = EncodedBatch.concatenate([encoded.validation, encoded.calibration])
        probabilities = np.concatenate([validation_probabilities, scorer(encoded.calibration.rows())])
    if not len(ids):
        return None
    labels = Labels(config.class_names, default_score_label(list(config.class_names)))
    if config.validation_data is not None:
        source = {"data": str(config.validation_data), "part": "every review of the separate validation data"}
    else:
        source = {
            "data": " + ".join(map(str, config.data)),
            "part": "the held-out validation and calibration parts of the training data (never trained on)",
        }
    return TrainingProfile.of(ids, probabilities, labels, source)


def write_report(metrics: dict[str, Any], history: dict[str, list[float]], config: TrainingConfig, started: float):
    """The history plot and metrics.json, written into the bundle folder before the bundle checksums them."""
    out: Path = config.out
    out.mkdir(parents=True, exist_ok=True)
    plot_history(history, out / HISTORY_PLOT_FILE, f"{config.bundle_name}: training history")
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")


def record_training_hashes(parts: Parts, folder: Path) -> str:
    """Each part's review hashes, so that `reviewscore evaluate` can tell how many evaluated reviews
    the model saw (training/overlap.py); a validation part that is also the calibration part once."""
    texts = {"training": parts.train.texts, "validation": parts.validation.texts}
    if not parts.calibration_is_validation:
        texts["calibration"] = parts.calibration.texts
    return write_training_hashes(texts, folder)


def manifest_metrics(metrics: dict[str, Any], parts: Parts) -> dict[str, Any]:
    """The report's headline figures, for the manifest."""
    validation = metrics["validation"]
    summary = {
        "validation_split": parts.description,
        "validation_accuracy": validation["accuracy"],
        "validation_macro_f1": validation["macro_f1"],
        "validation_loss": validation["loss"],
        **({"validation_roc_auc": validation["roc_auc"]} if "roc_auc" in validation else {}),
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "wall_seconds": metrics["wall_seconds"],
    }
    held_out = metrics.get("calibration")
    if held_out is not None:
        summary["heldout"] = {
            "split": parts.calibration_source,
            "accuracy": held_out["accuracy"],
            "macro_f1": held_out["macro_f1"],
            **({"roc_auc": held_out["roc_auc"]} if "roc_auc" in held_out else {}),
            "ece": held_out["ece"],
            "ece_uncalibrated": held_out["uncalibrated"]["ece"],
            "brier": held_out["brier"],
            "rows": held_out["examples"],
        }
    return summary


def training_data_record(
    data: LabelledReviews, parts: Parts, embedding: InitialEmbedding, distillation: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the manifest records of the data: its fingerprint (`reviewscore profile` finds it again) and parts."""
    record = {
        "fingerprint": data.fingerprint(),
        "rows": len(data),
        "training_rows": len(parts.train),
        "validation_rows": len(parts.validation),
        "calibration_rows": len(parts.calibration),
        "empty_texts_left_out": parts.empty_texts_left_out,
        "source": data.source,
    }
    if embedding.pretraining:
        record["pretraining"] = embedding.pretraining
    if distillation:
        teacher = distillation["teacher"]
        record["distillation"] = {
            "teacher_members": [member["name"] for member in teacher["members"]],
            "teacher_weights": [member["weight"] for member in teacher["members"]],
            "teacher_validation_accuracy": teacher["validation"]["accuracy"],
            "teacher_heldout_accuracy": teacher["calibration"]["accuracy"],
            **{key: distillation[key] for key in ("student_reviews", "labelled_reviews", "unlabelled_source")},
            "labelled_weight": distillation["settings"]["labelled_weight"],
        }
    return record


def architecture_record(
    arch: Architecture, model: keras.Model, embedding: InitialEmbedding, wide: FittedWide | None = None
) -> dict[str, Any]:
    record = {
        "name": arch.name,
        "description": arch.description,
        "parameters": model.count_params(),
        "embedding_dim": model.get_layer("embedding").output_dim,
        "embedding": embedding.description,
    }
    if wide is not None:
        record["wide"] = wide.record()
    return record
