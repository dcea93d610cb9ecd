"""Distillation: the n-gram member, the teacher's combination and cache, the student's targets, and
a real distilled training run (two and five classes) through the CLI, with the teacher's outputs
read back from the cache on a rerun."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.model.bundle import Bundle
from pipeline.model.preprocessing import EncodedBatch, PreprocessingConfig, tokenize
from tests.conftest import make_five_class_reviews, make_reviews
from training.config import NgramSettings, TeacherSettings, TrainingConfig
from training.distillation import distilled_targets, label_targets, one_hot
from training.ngram import NgramModel
from training.sentences import review_sentences
from training.teacher import PARTS, Member, Teacher, TeacherCache, combine

runner = CliRunner()


def tokens_of(reviews):
    return tokenize([text for text, _ in reviews], PreprocessingConfig(vocab_size=100, max_length=40))


def test_ngram_model_learns_phrases_a_bag_of_words_cannot():
    """Each review holds both "not good" and "not bad"... except for the one phrase that decides it:
    unigrams are useless; bigrams are what the label depends on."""
    texts = [("it was not bad , i laughed" if i % 2 else "it was not good , i left") for i in range(200)]
    labels = np.asarray([i % 2 for i in range(200)])
    model = NgramModel.fit(tokens_of([(t, 0) for t in texts]), labels, 2, NgramSettings())
    log_p = model.log_probabilities(tokens_of([("not bad", 0), ("not good", 0)]))
    assert log_p.shape == (2, 2) and np.allclose(np.exp(log_p).sum(1), 1.0)
    assert log_p[0].argmax() == 1 and log_p[1].argmax() == 0
    assert model.ratios is not None and model.features > 10


def test_ngram_model_with_five_classes_is_multinomial():
    reviews = make_five_class_reviews(300)
    model = NgramModel.fit(tokens_of(reviews), np.asarray([y for _, y in reviews]), 5, NgramSettings())
    log_p = model.log_probabilities(tokens_of(reviews[:50]))
    assert log_p.shape == (50, 5) and model.ratios is None
    assert (log_p.argmax(1) == [y for _, y in reviews[:50]]).mean() > 0.9


def member(name, validation, rest=None):
    rest = validation if rest is None else rest
    return Member(name, {"train": rest, "validation": validation, "calibration": rest, "unlabelled": rest}, 1.0)


def test_combination_weights_the_informative_member_and_ignores_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    signal = np.where(labels == 1, 1.5, -1.5) + rng.normal(0, 1.5, 2000)
    noise = rng.normal(0, 1.5, 2000)

    def log_p(z):
        return np.stack([-np.logaddexp(0, z), -np.logaddexp(0, -z)], axis=1)

    teacher = combine([member("signal", log_p(signal)), member("noise", log_p(noise))], labels)
    assert teacher.weights[0] > 0.5 and abs(teacher.weights[1]) < 0.1
    probabilities = teacher.probabilities("validation")
    assert probabilities.shape == (2000, 2) and np.allclose(probabilities.sum(1), 1.0)
    accuracy = (probabilities.argmax(1) == labels).mean()
    assert accuracy == pytest.approx(((signal > 0) == labels).mean(), abs=0.02)


def test_teacher_cache_round_trip_and_key(tmp_path):
    outputs = np.log(np.full((3, 2), 0.5))
    cache = TeacherCache(tmp_path, {"data": "sha256:1", "recipe": {"epochs": 2}})
    assert cache.load("ngram") is None
    cache.save(Member("ngram", {part: outputs for part in PARTS}, 12.5))
    loaded = cache.load("ngram")
    assert loaded.seconds == 12.5 and all(np.array_equal(loaded.log_probabilities[p], outputs) for p in PARTS)
    assert TeacherCache(tmp_path, {"data": "sha256:1", "recipe": {"epochs": 3}}).load("ngram") is None
    assert cache.load("seed 1") is None


def test_student_targets_mix_labels_and_teacher():
    labels = np.asarray([0, 1, 1])
    encoded = EncodedBatch.concatenate([EncodedBatch(np.asarray([2, 3, 4, 5]), np.asarray([0, 1, 3, 4]))])
    unlabelled = EncodedBatch(np.asarray([6, 7]), np.asarray([0, 1, 2]))
    teacher_p = np.asarray([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7], [0.5, 0.5]])
    outputs = {"train": np.log(teacher_p[:3]), "unlabelled": np.log(teacher_p[3:])}
    teacher = Teacher((Member("m", outputs, 0.0),), weights=np.asarray([1.0]), bias=np.zeros(2))
    targets = distilled_targets(teacher, encoded, labels, unlabelled, weight=0.25)
    assert targets.soft and targets.labelled == 3 and len(targets) == 5 and len(targets.encoded) == 5
    expected_labelled = 0.25 * teacher_p[:3, 1] + 0.75 * labels
    assert np.allclose(targets.values[:3], expected_labelled) and np.allclose(targets.values[3:], teacher_p[3:, 1])
    plain = label_targets(encoded, labels)
    assert not plain.soft and np.array_equal(plain.values, labels)
    assert np.array_equal(one_hot(np.asarray([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_config_refuses_unlabelled_reviews_without_a_teacher(tmp_path):
    with pytest.raises(ValueError, match="needs --teacher-ngram or --teacher-seeds"):
        TrainingConfig(data=tmp_path / "a.parquet", out=tmp_path, distill_unlabelled=tmp_path / "u.parquet")
    assert not TeacherSettings().enabled and TeacherSettings(seeds=(1,)).member_names() == ["seed 1"]


def write(path, reviews, labelled=True):
    columns = {"text": [text for text, _ in reviews]}
    if labelled:
        columns["label"] = [label for _, label in reviews]
        columns["movie_id"] = [f"tt{i // 4:07d}" for i in range(len(reviews))]
    pq.write_table(pa.table(columns), path)
    return str(path)


def distil(data, unlabelled, out, cache, *extra):
    return runner.invoke(
        app,
        ["train", "--data", data, "--out", str(out), "--arch", "bilstm-pool", "--epochs", "2",
         "--vocab-size", "100", "--max-length", "30", "--batch-size", "16", "--embedding-dim", "8",
         "--teacher-ngram", "--teacher-seeds", "5", "--teacher-labelled-weight", "0.5",
         "--distill-unlabelled", unlabelled, "--cache-dir", str(cache), *extra],
    )  # fmt: skip


@pytest.mark.slow
def test_distilled_training_end_to_end_then_cached(tmp_path):
    data = write(tmp_path / "labelled.parquet", make_reviews(240, seed=1))
    unlabelled = write(tmp_path / "unlabelled.parquet", make_reviews(120, seed=2), labelled=False)
    result = distil(data, unlabelled, tmp_path / "student", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "teacher member ngram: training" in result.output and "teacher member seed 5: training" in result.output
    assert "student: 312 reviews with the teacher's soft labels (192 labelled)" in result.output

    bundle = Bundle.open(tmp_path / "student")
    record = bundle.manifest.training_data["distillation"]
    assert record["teacher_members"] == ["ngram", "seed 5"] and record["student_reviews"] == 312
    assert record["labelled_weight"] == 0.5 and record["unlabelled_source"] == unlabelled
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    teacher = metrics["distillation"]["teacher"]
    assert {m["name"] for m in teacher["members"]} == {"ngram", "seed 5"}
    assert 0.5 < teacher["calibration"]["accuracy"] <= 1.0 and teacher["validation"]["loss"] > 0
    assert len(list((tmp_path / "cache").glob("teacher-*.npz"))) == 2

    again = distil(data, unlabelled, tmp_path / "again", tmp_path / "cache")
    assert again.exit_code == 0, again.output
    assert "teacher member ngram: read from the cache" in again.output
    assert (
        "teacher member seed 5: read from the cache" in again.output and "member seed 5: training" not in again.output
    )
    first = json.loads((tmp_path / "student" / "metrics.json").read_text())["distillation"]["teacher"]
    second = json.loads((tmp_path / "again" / "metrics.json").read_text())["distillation"]["teacher"]
    assert first["validation"] == second["validation"]  # the same members' outputs, from the cache

    # a member's outputs do not depend on which other members there are: adding one trains it alone
    more = distil(data, unlabelled, tmp_path / "more", tmp_path / "cache", "--teacher-seeds", "5,6")
    assert more.exit_code == 0, more.output
    assert "teacher member seed 5: read from the cache" in more.output
    assert "teacher member seed 6: training" in more.output


def test_review_sentences_cut_at_breaks_and_sentence_ends_and_sample_deterministically():
    texts = pa.array(
        [
            "A fine film with a great cast. I loved every minute of it!<br /><br />The end drags a little though.",
            'Too short. "Really good stuff," she said of the score. e.g. this stays one sentence.',
            "A fine film with a great cast. Ok.",
        ]
    )
    assert review_sentences(texts, 100, seed=0).to_pylist() == [
        "A fine film with a great cast.",
        "I loved every minute of it!",
        "The end drags a little though.",
        '"Really good stuff," she said of the score. e.g. this stays one sentence.',
    ]
    sample = review_sentences(texts, 2, seed=3).to_pylist()
    assert len(sample) == 2 and sample == review_sentences(texts, 2, seed=3).to_pylist()


@pytest.mark.slow
def test_distilled_five_class_training_on_sentences(tmp_path):
    classes = "awful,poor,fine,good,superb"
    data = write(tmp_path / "five.parquet", make_five_class_reviews(300))
    reviews = make_five_class_reviews(120, seed=9)
    paragraphs = [(". ".join(text.capitalize() for text, _ in reviews[i : i + 3]) + ".", 0) for i in range(0, 120, 3)]
    unlabelled = write(tmp_path / "u.parquet", paragraphs, labelled=False)
    result = distil(
        data, unlabelled, tmp_path / "five", tmp_path / "cache", "--class-names", classes, "--distill-sentences", "90"
    )
    assert result.exit_code == 0, result.output
    bundle = Bundle.open(tmp_path / "five")
    assert bundle.manifest.class_names == classes.split(",")
    record = bundle.manifest.training_data["distillation"]
    assert record["student_reviews"] == 240 + 90 and record["unlabelled_source"].startswith("90 sentences of ")
