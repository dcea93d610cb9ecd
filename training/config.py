"""What a training run is told: one `TrainingConfig`, built once from the command line (or a test).

Kept free of Keras and TensorFlow so that `reviewscore train --help` can show these defaults
without importing them: the CLI reads every default from here, so each is defined once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.model.cache import DEFAULT_CACHE_DIR
from schemas.bundle import BINARY_CLASS_NAMES
from schemas.output_names import LABEL, TEXT

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "PRETRAINED_EMBEDDING_DIM",
    "REDUCE_LR_FACTOR",
    "NgramSettings",
    "TeacherSettings",
    "TrainingConfig",
    "WordVectorSettings",
    "as_paths",
    "default_bundle_name",
]

DEFAULT_ARCHITECTURE = "bilstm-pool"
REDUCE_LR_FACTOR = 0.3
PRETRAINED_EMBEDDING_DIM = 100
"""The word vectors' size when pre-training and no --embedding-dim is given."""


@dataclass(frozen=True)
class WordVectorSettings:
    dim: int = PRETRAINED_EMBEDDING_DIM
    window: int = 5
    min_count: int = 2
    epochs: int = 5
    skip_gram: bool = False
    negative: int = 5
    seed: int = 1337


@dataclass(frozen=True)
class NgramSettings:
    """The teacher's n-gram model (training/ngram.py)."""

    max_n: int = 3
    """Longest n-gram: uni- to trigrams."""
    min_count: int = 2
    """An n-gram must occur in this many training texts to be a feature."""
    regularisation: float = 0.3
    """scikit-learn's C: the inverse of the L2 penalty's strength."""
    smoothing: float = 1.0
    """Added to every n-gram's count per class before the log-count ratio."""


@dataclass(frozen=True)
class TeacherSettings:
    """Which models the teacher combines (training/teacher.py); none: no distillation."""

    ngram: bool = False
    """An NB-weighted n-gram model is a member."""
    seeds: tuple[int, ...] = ()
    """One member of the run's own recipe (architecture, vectors, epochs) per seed."""
    ngram_settings: NgramSettings = field(default_factory=NgramSettings)
    labelled_weight: float = 0.0
    """On labelled training reviews the student's target is this share of the teacher's probabilities
    and the rest the review's own label; unlabelled reviews get the teacher's alone."""

    @property
    def enabled(self) -> bool:
        return self.ngram or bool(self.seeds)

    def members(self) -> list[tuple[str, int | None]]:
        """Each member's name and seed, in the order they are trained and combined; None: the n-gram model."""
        return ([("ngram", None)] if self.ngram else []) + [(f"seed {seed}", seed) for seed in self.seeds]

    def member_names(self) -> list[str]:
        return [name for name, _ in self.members()]


@dataclass(frozen=True)
class TrainingConfig:
    """Every setting of one training run. `data` and `pretrain_vectors` accept one path or several
    and are held as tuples of paths from construction on, so nothing downstream asks which it got."""

    data: tuple[Path, ...]
    """Labelled training data; several sources are concatenated (e.g. phrases and sentences)."""
    out: Path
    architecture: str = DEFAULT_ARCHITECTURE
    epochs: int = 10
    patience: int = 2
    """Epochs without a better validation loss before stopping; the best epoch's weights are kept."""
    reduce_lr_patience: int = 0
    """Epochs without a better validation loss before the learning rate is cut by REDUCE_LR_FACTOR; 0: never."""
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
    """Seed of the split (and of everything else unless `init_seed` is given)."""
    init_seed: int | None = None
    """Seed of the weights' initialisation and the batch order [default: `seed`]: another value trains
    another model on the same split (the teacher's members, a spread over seeds)."""
    pretrain_vectors: tuple[Path, ...] | None = None
    """Unlabelled reviews whose text, with the training part's, pre-trains the word vectors (several: all of them)."""
    word_vectors: WordVectorSettings = field(default_factory=WordVectorSettings)
    freeze_embedding: bool = False
    """Keep the pre-trained vectors as they are: the classifier cannot overfit millions of embedding weights."""
    ema: float = 0.0
    """Momentum of an exponential moving average of the weights (Polyak averaging; 0: off). Validation,
    early stopping and the bundle use the averaged weights, which move less from batch to batch."""
    fine_tune_epochs: int = 0
    """With freeze_embedding: then at most this many epochs with the embedding trainable, at a tenth
    of the learning rate, kept only if they lower the validation loss."""
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    """Distil: fit the model to a teacher's soft labels instead of the labels alone."""
    distill_unlabelled: tuple[Path, ...] | None = None
    """Unlabelled reviews the teacher labels for the student, besides the training part."""
    distill_sentences: int = 0
    """Cut the unlabelled reviews into sentences and keep this many (for a model of sentences); 0: whole reviews."""
    cache_dir: Path = DEFAULT_CACHE_DIR
    """Where word vectors and teacher outputs are cached, by a fingerprint of what they depend on."""
    expand_contractions: bool = False
    remove_stopwords: bool = False
    treebank: bool = False
    """The training text is Penn-Treebank tokenized (SST, RT phrases): undo that before cleaning."""
    name: str | None = None
    """The bundle's name; None: `default_bundle_name` of the data and architecture."""
    version: str | None = None
    text_column: str = TEXT
    label_column: str = LABEL
    verbose: int | str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", as_paths(self.data))
        for name in ("pretrain_vectors", "distill_unlabelled"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, as_paths(getattr(self, name)))
        if not self.data:
            raise ValueError("training needs labelled data (--data)")
        if self.freeze_embedding and self.pretrain_vectors is None:
            raise ValueError("--freeze-embedding keeps pre-trained vectors fixed; it needs --pretrain-vectors")
        if self.fine_tune_epochs and not self.freeze_embedding:
            raise ValueError("--fine-tune-epochs follows a frozen phase; it needs --freeze-embedding")
        if self.distill_sentences and not self.distill_unlabelled:
            raise ValueError("--distill-sentences cuts the --distill-unlabelled reviews into sentences; give those")
        if self.distill_unlabelled and not self.teacher.enabled:
            raise ValueError(
                "--distill-unlabelled gives the teacher reviews to label; it needs --teacher-ngram or --teacher-seeds"
            )

    @property
    def model_seed(self) -> int:
        return self.seed if self.init_seed is None else self.init_seed

    @property
    def bundle_name(self) -> str:
        return self.name or default_bundle_name(self.data, self.architecture)


def as_paths(sources: str | Path | Sequence[str | Path]) -> tuple[Path, ...]:
    """One path or several, as a tuple of paths."""
    if isinstance(sources, str | Path):
        return (Path(sources),)
    return tuple(Path(source) for source in sources)


def default_bundle_name(data: tuple[Path, ...], architecture: str) -> str:
    """The first data source's name (a Parquet file's stem, a folder's name) and the architecture, as
    a slug: `train.parquet` with bilstm-pool is "train-bilstm-pool", an aclImdb folder "aclimdb-...".
    Named after its data, a bundle trained on Rotten Tomatoes is never called an IMDB model."""
    first = data[0]
    slug = _slug(first.stem if first.suffix == ".parquet" else first.name) or _slug(first.resolve().name)
    return f"{slug}-{architecture}" if slug else architecture


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
