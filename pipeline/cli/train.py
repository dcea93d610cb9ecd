"""`reviewscore train`: train a model and write it as a bundle (training/train.py does the work).

Each option is declared once below, as an `Annotated` alias with its help; its default is the
`TrainingConfig` field's (training/config.py, which imports no Keras), so `--help` shows what
training uses. `training_config` turns the one parse into the one config.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.common import Verbose, fail, quiet_logging
from training.architectures import ARCHITECTURES
from training.config import (
    PRETRAINED_EMBEDDING_DIM,
    REDUCE_LR_FACTOR,
    TeacherSettings,
    TrainingConfig,
    WordVectorSettings,
)

Data = Annotated[
    list[Path],
    typer.Option(
        metavar="PATH",
        help="Labelled reviews: an aclImdb folder (its train/ part is used) or Parquet with text and label. "
        "Repeat to train on several sources together (e.g. phrases and sentences).",
    ),
]
Out = Annotated[Path, typer.Option(help="Directory to write the model bundle into.")]
Arch = Annotated[
    str,
    typer.Option(
        metavar="ARCH",
        help=f"Architecture: {', '.join(ARCHITECTURES)}.",
    ),
]
Epochs = Annotated[int, typer.Option(min=1, help="Most epochs to train; early stopping may end sooner.")]
Patience = Annotated[int, typer.Option(min=0, help="Epochs without better validation loss before stopping.")]
ReduceLrPatience = Annotated[
    int,
    typer.Option(
        min=0,
        help=f"Epochs without better validation loss before the learning rate drops to {REDUCE_LR_FACTOR}x; 0: never.",
    ),
]
BatchSize = Annotated[int | None, typer.Option(min=1, help="Training batch size [default: the architecture's].")]
VocabSize = Annotated[
    int | None, typer.Option(min=1, help="Words kept in the vocabulary [default: the architecture's].")
]
MaxLength = Annotated[int | None, typer.Option(min=1, help="Tokens kept per review [default: the architecture's].")]
EmbeddingDim = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"Embedding size [default: the architecture's; {PRETRAINED_EMBEDDING_DIM} with --pretrain-vectors].",
    ),
]
LearningRate = Annotated[
    float | None, typer.Option(min=0.0, metavar="RATE", help="Adam learning rate [default: the architecture's].")
]
GroupColumn = Annotated[
    str,
    typer.Option(
        metavar="COLUMN",
        help="Column naming each review's group (its movie): a group never sits on both sides of the split. "
        "aclImdb folders take it from urls_*.txt. 'none': split review by review.",
    ),
]
ValidationFraction = Annotated[
    float, typer.Option(min=0.0, max=1.0, metavar="SHARE", help="Share of the reviews held out for early stopping.")
]
CalibrationFraction = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        metavar="SHARE",
        help="Share held out to fit the score calibration and measure accuracy; 0: none.",
    ),
]
ValidationData = Annotated[
    Path | None,
    typer.Option(
        help="A separate labelled validation set (e.g. SST-5 dev): early stopping and calibration use it, "
        "and --data is not split [default: none: both are held out of --data]."
    ),
]
ClassNames = Annotated[
    str,
    typer.Option(
        metavar="NAMES", help="The classes, comma-separated, in label-index order; labels may be names or indices."
    ),
]
Ordinal = Annotated[
    bool, typer.Option(help="The classes are ordered lowest to highest: evaluate reports the mean class error.")
]
PretrainVectors = Annotated[
    list[Path] | None,
    typer.Option(
        metavar="PATH",
        help="Unlabelled reviews (Parquet with the text column, or aclImdb's root for train/unsup) to "
        "pre-train word vectors on with gensim, together with the training text; cached by data. Repeatable "
        "[default: none: the embedding starts at random].",
    ),
]
SkipGram = Annotated[
    bool, typer.Option(help="Pre-train the vectors with skip-gram instead of CBOW (slower; better for rare words).")
]
FreezeEmbedding = Annotated[bool, typer.Option(help="Keep the pre-trained word vectors fixed while the LSTM trains.")]
Ema = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=0.9999,
        metavar="MOMENTUM",
        help="Keep an exponential moving average of the weights with this momentum (e.g. 0.999) and use it "
        "for validation, early stopping and the bundle; 0: off.",
    ),
]
FineTuneEpochs = Annotated[
    int,
    typer.Option(
        min=0,
        help="With --freeze-embedding: then up to N epochs with the embedding trainable at a tenth of the "
        "learning rate, kept only if validation loss improves.",
    ),
]
TeacherNgram = Annotated[
    bool,
    typer.Option(
        help="Distil: a teacher that includes an NB-weighted logistic regression on uni- to trigrams "
        "labels the training (and --distill-unlabelled) reviews, and the model learns its soft labels."
    ),
]
TeacherSeeds = Annotated[
    str,
    typer.Option(
        metavar="SEEDS",
        help="Distil: comma-separated seeds, one teacher member of this run's own recipe each (e.g. 1,2); "
        "combined with --teacher-ngram by weights chosen on the validation part [default: none].",
    ),
]
TeacherLabelledWeight = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        metavar="SHARE",
        help="Distilling: on labelled reviews, the share of the target that is the teacher's probability "
        "(the rest is the review's own label).",
    ),
]
DistillUnlabelled = Annotated[
    list[Path] | None,
    typer.Option(
        metavar="PATH",
        help="Distilling: unlabelled reviews (Parquet with the text column) the teacher labels for the "
        "model to learn from too. Repeatable [default: none].",
    ),
]
DistillSentences = Annotated[
    int,
    typer.Option(
        min=0,
        help="Distilling a model of sentences: cut the --distill-unlabelled reviews into sentences and keep "
        "this many (a sample fixed by --seed); 0: whole reviews.",
    ),
]
CacheDir = Annotated[
    Path,
    typer.Option(help="Where word vectors and teacher outputs are cached, by a fingerprint of what they depend on."),
]
Seed = Annotated[
    int, typer.Option(help="Seed for the split, and for initialization and batch order unless --init-seed.")
]
InitSeed = Annotated[
    int | None,
    typer.Option(
        help="Seed for initialization and batch order only: another model on the same split [default: --seed]."
    ),
]
ExpandContractions = Annotated[bool, typer.Option(help='Rewrite "don\'t" as "do not" and so on before tokenizing.')]
RemoveStopwords = Annotated[bool, typer.Option(help="Drop common function words (negations are always kept).")]
Treebank = Annotated[
    bool,
    typer.Option(
        help="The text is Penn-Treebank tokenized (SST, Rotten Tomatoes phrases): undo it before cleaning, "
        "so users' ordinary text encodes the same way at scoring time."
    ),
]
Name = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="Bundle name [default: the first --data's file or folder name and the architecture, "
        "e.g. train-bilstm-pool for train.parquet].",
    ),
]
Version = Annotated[
    str | None,
    typer.Option(
        metavar="VERSION", help="Bundle version written into every scored row [default: date and model hash]."
    ),
]
TextColumn = Annotated[str, typer.Option(metavar="COLUMN", help="Text column, for Parquet data.")]
LabelColumn = Annotated[
    str, typer.Option(metavar="COLUMN", help="Label column (class names or their indices), for Parquet data.")
]


DEFAULT_CLASS_NAMES = ",".join(TrainingConfig.class_names)


# The defaults are TrainingConfig's: a dataclass's class attributes are its fields' defaults.
def train(
    data: Data,
    out: Out,
    arch: Arch = TrainingConfig.architecture,
    epochs: Epochs = TrainingConfig.epochs,
    patience: Patience = TrainingConfig.patience,
    reduce_lr_patience: ReduceLrPatience = TrainingConfig.reduce_lr_patience,
    batch_size: BatchSize = TrainingConfig.batch_size,
    vocab_size: VocabSize = TrainingConfig.vocab_size,
    max_length: MaxLength = TrainingConfig.max_length,
    embedding_dim: EmbeddingDim = TrainingConfig.embedding_dim,
    learning_rate: LearningRate = TrainingConfig.learning_rate,
    group_column: GroupColumn = TrainingConfig.group_column,
    validation_fraction: ValidationFraction = TrainingConfig.validation_fraction,
    calibration_fraction: CalibrationFraction = TrainingConfig.calibration_fraction,
    validation_data: ValidationData = TrainingConfig.validation_data,
    class_names: ClassNames = DEFAULT_CLASS_NAMES,
    ordinal: Ordinal = TrainingConfig.ordinal,
    pretrain_vectors: PretrainVectors = TrainingConfig.pretrain_vectors,
    skip_gram: SkipGram = WordVectorSettings.skip_gram,
    freeze_embedding: FreezeEmbedding = TrainingConfig.freeze_embedding,
    ema: Ema = TrainingConfig.ema,
    fine_tune_epochs: FineTuneEpochs = TrainingConfig.fine_tune_epochs,
    teacher_ngram: TeacherNgram = TeacherSettings.ngram,
    teacher_seeds: TeacherSeeds = "",
    teacher_labelled_weight: TeacherLabelledWeight = TeacherSettings.labelled_weight,
    distill_unlabelled: DistillUnlabelled = TrainingConfig.distill_unlabelled,
    distill_sentences: DistillSentences = TrainingConfig.distill_sentences,
    cache_dir: CacheDir = TrainingConfig.cache_dir,
    seed: Seed = TrainingConfig.seed,
    init_seed: InitSeed = TrainingConfig.init_seed,
    expand_contractions: ExpandContractions = TrainingConfig.expand_contractions,
    remove_stopwords: RemoveStopwords = TrainingConfig.remove_stopwords,
    treebank: Treebank = TrainingConfig.treebank,
    name: Name = TrainingConfig.name,
    version: Version = TrainingConfig.version,
    text_column: TextColumn = TrainingConfig.text_column,
    label_column: LabelColumn = TrainingConfig.label_column,
    verbose: Verbose = False,
) -> None:
    """Train a sentiment model and export it as a self-describing bundle."""
    options = dict(locals())  # every option by its name, before anything else is assigned here
    quiet_logging(verbose)
    from training.datasets import DatasetError
    from training.train import train as run_training

    try:
        run_training(training_config(**options))
    except (DatasetError, ValueError) as e:
        fail(str(e))


def training_config(
    *,
    arch: str,
    class_names: str,
    group_column: str,
    embedding_dim: int | None,
    pretrain_vectors: list[Path] | None,
    skip_gram: bool,
    teacher_ngram: bool = False,
    teacher_seeds: str = "",
    teacher_labelled_weight: float = TeacherSettings.labelled_weight,
    distill_unlabelled: list[Path] | None = None,
    verbose: bool = False,
    **same_name: Any,
) -> TrainingConfig:
    """The TrainingConfig of the parsed options: those whose form differs from their field's are
    converted here; the rest are the fields of the same name. `verbose` is the terminal's logging
    (`quiet_logging`), not a training setting: Keras' own progress output follows the terminal."""
    classes = tuple(name.strip() for name in class_names.split(","))
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(classes):
        fail(f"--class-names needs at least two distinct names, got {class_names!r}")
    try:
        seeds = tuple(int(seed) for seed in teacher_seeds.split(",") if seed.strip())
    except ValueError:
        fail(f"--teacher-seeds takes comma-separated whole numbers, got {teacher_seeds!r}")
    return TrainingConfig(
        architecture=arch,
        class_names=classes,
        group_column=None if group_column.lower() == "none" else group_column,
        embedding_dim=embedding_dim or (PRETRAINED_EMBEDDING_DIM if pretrain_vectors else None),
        pretrain_vectors=tuple(pretrain_vectors) if pretrain_vectors else None,
        word_vectors=WordVectorSettings(skip_gram=skip_gram),
        teacher=TeacherSettings(ngram=teacher_ngram, seeds=seeds, labelled_weight=teacher_labelled_weight),
        distill_unlabelled=tuple(distill_unlabelled) if distill_unlabelled else None,
        verbose=1 if sys.stdout.isatty() else 2,  # a progress bar only where someone watches it
        **same_name,
    )
