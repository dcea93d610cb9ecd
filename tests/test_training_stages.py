"""Training's stages one at a time, on a few synthetic reviews and no model: the split, the
vocabulary, the empty-text filter and the calibration, the config's normalisation and the bundle's
default name, and the CLI's options against the config's defaults."""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import train as train_command
from pipeline.model.preprocessing import PreprocessingConfig, as_string_array, tokenize
from training.calibration_fit import choose_and_fit, labels_for
from training.config import TrainingConfig, default_bundle_name
from training.datasets import LabelledReviews
from training.splits import group_keys
from training.train import build_vocabulary, calibrate, leave_out_empty_texts, split

MOVIES, REVIEWS_PER_MOVIE = 20, 5


def movie_word(movie: int) -> str:
    """A word only the reviews of `movie` use (letters only, so the tokenizer keeps it whole)."""
    return "movie" + "".join(chr(ord("a") + int(digit)) for digit in str(movie))


def reviews(movies: int = MOVIES) -> LabelledReviews:
    """Five reviews per movie, each naming its movie by a word of its own; labels alternate."""
    rows = range(movies * REVIEWS_PER_MOVIE)
    texts = [f"{movie_word(i // REVIEWS_PER_MOVIE)} was {'good' if i % 2 else 'bad'}" for i in rows]
    groups = np.asarray([f"tt{i // REVIEWS_PER_MOVIE}" for i in rows], dtype=object)
    return LabelledReviews(
        as_string_array(texts), np.asarray([i % 2 for i in rows], dtype=np.int16), "synthetic", groups
    )


def config(**settings) -> TrainingConfig:
    return TrainingConfig(data=Path("synthetic.parquet"), out=Path("unused"), **settings)


def test_split_keeps_groups_apart_and_is_deterministic(capsys):
    data = reviews()
    parts = split(data, config(validation_fraction=0.2, calibration_fraction=0.2, seed=3))
    movies = [set(part.groups) for part in (parts.train, parts.validation, parts.calibration)]
    assert not (movies[0] & movies[1]) and not (movies[0] & movies[2]) and not (movies[1] & movies[2])
    assert sum(len(part) for part in (parts.train, parts.validation, parts.calibration)) == len(data)
    assert len(parts.validation) == len(parts.calibration) == 20  # four whole movies each
    assert parts.description["kind"] == "grouped" and parts.description["groups"]["validation"] == 4
    assert not parts.calibration_is_validation and parts.calibration_source.startswith("calibration fold: grouped")
    assert "split by movie_id: training on 60, validating on 20, calibrating on 20" in capsys.readouterr().out

    again = split(data, config(validation_fraction=0.2, calibration_fraction=0.2, seed=3))
    assert again.validation.texts.equals(parts.validation.texts) and again.train.texts.equals(parts.train.texts)
    other_seed = split(data, config(validation_fraction=0.2, calibration_fraction=0.2, seed=4))
    assert set(other_seed.validation.groups) != movies[1]


def test_a_separate_validation_file_is_both_held_out_parts(tmp_path):
    data = reviews()
    held_out = reviews(4)
    pq.write_table(pa.table({"text": held_out.texts, "label": held_out.labels}), tmp_path / "dev.parquet")
    parts = split(data, config(validation_data=tmp_path / "dev.parquet"))
    assert parts.train is data and parts.calibration_is_validation and len(parts.validation) == 20
    assert parts.description["kind"] == "separate validation data"
    assert parts.description["validation_texts_also_in_training"] == 20  # the first four movies' reviews again


def test_vocabulary_is_built_from_the_training_part_only():
    preprocessing = PreprocessingConfig(vocab_size=1000, max_length=20)
    parts = split(reviews(), config(validation_fraction=0.2, calibration_fraction=0.2))
    vocabulary = set(build_vocabulary(tokenize(parts.train.texts, preprocessing), None, 1000).tokens)

    def words(part: LabelledReviews) -> set[str]:
        return {movie_word(int(group[2:])) for group in part.groups}

    assert words(parts.train) <= vocabulary
    assert not (words(parts.validation) | words(parts.calibration)) & vocabulary


def test_empty_texts_are_left_out_and_a_shared_part_counted_once(capsys):
    texts = ["good film", ",", "bad film", "..."]
    part = LabelledReviews(as_string_array(texts), np.asarray([1, 0, 0, 1], dtype=np.int16), "synthetic")
    data = LabelledReviews(as_string_array(texts * 5), np.tile(part.labels, 5), "synthetic")
    parts = replace(split(data, config(group_column=None)), validation=part, calibration=part)
    assert parts.calibration_is_validation
    cleaned = leave_out_empty_texts(parts, PreprocessingConfig(vocab_size=10, max_length=10))
    assert cleaned.calibration_is_validation and cleaned.validation.texts.to_pylist() == ["good film", "bad film"]
    empty_in_training = sum(text in (",", "...") for text in parts.train.texts.to_pylist())
    assert empty_in_training and len(cleaned.train) == len(parts.train) - empty_in_training
    assert cleaned.empty_texts_left_out == empty_in_training + 2  # the shared part counted once
    assert f"left out {empty_in_training + 2} texts" in capsys.readouterr().out


def test_calibrate_fits_on_the_calibration_part():
    parts = split(reviews(), config(validation_fraction=0.2, calibration_fraction=0.2, seed=5))
    rng = np.random.default_rng(0)
    labels = parts.calibration.labels
    logits = (2.5 * (2 * labels - 1) + rng.normal(0, 2, len(labels)))[:, None]  # overconfident sigmoid logits
    calibration = calibrate(logits, parts, config(seed=5))
    expected = choose_and_fit(
        logits, labels, group_keys(parts.calibration.groups, len(labels)), 5, labels_for(("negative", "positive"))
    )
    assert calibration.details["rows"] == len(parts.calibration) == 20
    assert calibration.details["fitted_on"] == parts.calibration_source
    assert (calibration.method, calibration.slope, calibration.intercept) == (
        expected.method,
        expected.slope,
        expected.intercept,
    )
    without = split(reviews(), config(calibration_fraction=0.0))
    assert calibrate(np.zeros((0, 1)), without, config()) is None


@pytest.mark.parametrize(
    ("data", "architecture", "name"),
    [
        ("../shared/data/imdb/train.parquet", "bilstm-pool", "train-bilstm-pool"),
        ("../shared/data/rt/rt_phrases.parquet", "bilstm-pool-short", "rt-phrases-bilstm-pool-short"),
        ("data/aclImdb/", "cnn-lstm", "aclimdb-cnn-lstm"),
        ("reviews.v2", "lstm", "reviews-v2-lstm"),
    ],
)
def test_the_default_bundle_name_comes_from_the_data(data, architecture, name):
    assert default_bundle_name((Path(data), Path("other.parquet")), architecture) == name
    assert TrainingConfig(data=data, out=Path("o"), architecture=architecture).bundle_name == name
    assert TrainingConfig(data=data, out=Path("o"), name="mine").bundle_name == "mine"


def test_the_config_holds_its_sources_as_tuples_of_paths():
    one = TrainingConfig(data="a.parquet", out=Path("o"), pretrain_vectors="u.parquet")
    assert one.data == (Path("a.parquet"),) and one.pretrain_vectors == (Path("u.parquet"),)
    several = TrainingConfig(data=["a.parquet", Path("b.parquet")], out=Path("o"))
    assert several.data == (Path("a.parquet"), Path("b.parquet")) and several.pretrain_vectors is None
    with pytest.raises(ValueError, match="needs --pretrain-vectors"):
        TrainingConfig(data="a.parquet", out=Path("o"), freeze_embedding=True)
    with pytest.raises(ValueError, match="needs --freeze-embedding"):
        TrainingConfig(data="a.parquet", out=Path("o"), pretrain_vectors="u.parquet", fine_tune_epochs=2)


def test_the_cli_defaults_are_the_config_defaults():
    parameters = inspect.signature(train_command.train).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    built = train_command.training_config(data=[Path("a.parquet")], out=Path("o"), **defaults)
    assert built == replace(TrainingConfig(data=Path("a.parquet"), out=Path("o")), verbose=built.verbose)


def test_train_help_shows_every_option_and_every_default():
    from pipeline.cli import app
    from training.architectures import ARCHITECTURES

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert result.exit_code == 0, result.output
    for parameter in inspect.signature(train_command.train).parameters:
        assert "--" + parameter.replace("_", "-") in result.output
    for architecture in ARCHITECTURES:
        assert architecture in result.output
    assert TrainingConfig.architecture in ARCHITECTURES
    assert result.output.count("[default:") == len(inspect.signature(train_command.train).parameters) - 2
    assert " ." not in result.output and "[default: the architecture's]" in result.output
