"""`reviewscore evaluate --shadow-model`: a second bundle scores the same labelled reviews; both models'
metrics side by side, McNemar's test on the reviews exactly one of them labels right, and the shadow's
columns in the predictions."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.model.labels import Labels
from schemas.bundle import METRICS_FILE
from schemas.output_names import (
    CORRECT,
    EVALUATION_PAGE_FILE,
    PREDICTED_LABEL,
    PREDICTIONS_FILE,
    SCORE,
    SHADOW_PREDICTED_LABEL,
    SHADOW_SCORE,
    TRUE_LABEL,
)
from tests.conftest import make_reviews
from tests.test_evaluate import FIVE_CLASS_BUNDLE, evaluate, evaluate_without, write_labelled
from training.evaluation import MCNEMAR_EXACT_LIMIT, compare, mcnemar_test, p_value_text


@pytest.fixture(scope="module")
def shadow_bundle(tmp_path_factory, labelled_parquet):
    """A second real binary bundle, unlike `tiny_bundle`: one epoch, a 30-word vocabulary and 12 tokens,
    its own name and version, so that the two models label some reviews differently."""
    from training.config import TrainingConfig
    from training.train import train

    return train(
        TrainingConfig(
            data=Path(labelled_parquet),
            out=tmp_path_factory.mktemp("shadow") / "bundle",
            architecture="lstm",
            epochs=1,
            batch_size=16,
            vocab_size=30,
            max_length=12,
            seed=7,
            name="tiny-shadow",
            version="0.9.0",
            verbose=0,
        )
    )


def binomial_test_by_hand(b: int, c: int) -> float:
    """The exact two-sided binomial test of b successes in b + c trials at 1/2, as textbooks define it:
    the probability of every outcome no more likely than the observed one."""
    n = b + c
    mass = [Fraction(math.comb(n, k), 2**n) for k in range(n + 1)]
    return float(min(Fraction(1), sum(m for m in mass if m <= mass[b])))


def test_mcnemar_exact_test_gives_known_values():
    assert mcnemar_test(10, 2) == (pytest.approx(0.0386, abs=5e-5), "exact binomial")
    assert mcnemar_test(10, 2)[0] == pytest.approx(2 * (1 + 12 + 66) / 4096, rel=1e-12)
    assert mcnemar_test(2, 10)[0] == mcnemar_test(10, 2)[0]
    assert mcnemar_test(0, 5)[0] == pytest.approx(2 / 32)
    assert mcnemar_test(0, 0)[0] == 1.0 and mcnemar_test(7, 7)[0] == 1.0
    for b, c in [(0, 1), (3, 9), (25, 40), (61, 41), (480, 520), (0, MCNEMAR_EXACT_LIMIT)]:
        assert mcnemar_test(b, c)[0] == pytest.approx(binomial_test_by_hand(b, c), rel=1e-9), (b, c)
    with pytest.raises(ValueError):
        mcnemar_test(-1, 3)


def test_mcnemar_matches_scipy_exactly_up_to_the_limit_and_approximately_beyond():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(10, 2), (1, 0), (13, 30), (100, 140), (499, 501), (400, 600)]:
        assert mcnemar_test(b, c)[0] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9), (b, c)
    for b, c in [(520, 600), (700, 700), (1500, 1300), (2000, 2400)]:
        p, test = mcnemar_test(b, c)
        assert test == "chi-square with continuity correction"
        assert p == pytest.approx(stats.chi2.sf(max(abs(b - c) - 1, 0) ** 2 / (b + c), 1), rel=1e-9)
        assert p == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, abs=2e-3)  # close to the exact test
    assert (
        mcnemar_test(MCNEMAR_EXACT_LIMIT // 2, MCNEMAR_EXACT_LIMIT // 2 + 1)[1]
        == "chi-square with continuity correction"
    )


def test_the_sentence_names_the_better_version_only_when_the_difference_is_significant():
    names = Labels(("negative", "positive"), "positive")
    labels = np.ones(100, dtype=np.int64)
    ours, theirs = np.full((100, 2), [0.2, 0.8]), np.full((100, 2), [0.2, 0.8])
    theirs[:10] = [0.9, 0.1]  # b = 10: only the model is right
    ours[10:12] = [0.9, 0.1]  # c = 2: only the shadow is right
    metrics = {"accuracy": 0.98, "shadow": {"accuracy": 0.90}}
    result = compare(labels, [ours, theirs], names, ("3.0.0", "2.0.0"), metrics)
    assert (result["only_model_right"], result["only_shadow_right"], result["both_right"]) == (10, 2, 88)
    assert result["p_value"] == pytest.approx(0.0386, abs=5e-5) and result["better"] == "3.0.0"
    assert result["sentence"] == "3.0.0 is better on this sample (accuracy 0.9800 against 0.9000), p = 0.039"

    reverse = compare(
        labels, [theirs, ours], names, ("3.0.0", "2.0.0"), {"accuracy": 0.9, "shadow": {"accuracy": 0.98}}
    )
    assert reverse["better"] == "2.0.0" and reverse["sentence"].startswith("2.0.0 is better")

    even = theirs.copy()
    even[:3] = [0.2, 0.8]  # right where `theirs` is wrong: c = 3
    even[10:13] = [0.9, 0.1]  # wrong where `theirs` is right: b = 3
    tie = compare(labels, [theirs, even], names, ("3.0.0", "2.0.0"), metrics)
    assert tie["only_model_right"] == tie["only_shadow_right"] == 3 and tie["better"] is None
    assert tie["sentence"] == "no significant difference between 3.0.0 and 2.0.0 on this sample, p = 1"
    assert p_value_text(0.41) == "p = 0.41" and p_value_text(0.0021) == "p = 0.0021"
    assert p_value_text(0.0004) == "p < 0.001"


def test_both_models_are_printed_and_written_with_mcnemars_test_on_the_predictions(
    tiny_bundle, shadow_bundle, tmp_path
):
    write_labelled(tmp_path / "d.parquet", make_reviews(200, seed=51))
    out = tmp_path / "out"
    result = evaluate(tmp_path / "d.parquet", "--model", tiny_bundle.path, "--shadow-model", shadow_bundle.path,
                      "--output", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / METRICS_FILE).read_text())
    shadow, comparison = metrics["shadow"], metrics["comparison"]
    assert shadow["model_version"] == "0.9.0" and shadow["model_name"] == "tiny-shadow"
    assert {"accuracy", "macro_f1", "ece", "brier", "roc_auc"} <= set(shadow)

    predictions = pd.read_parquet(out / PREDICTIONS_FILE)
    assert list(predictions.columns)[-2:] == [SHADOW_PREDICTED_LABEL, SHADOW_SCORE]
    model_right = predictions[CORRECT].to_numpy()
    shadow_right = (predictions[SHADOW_PREDICTED_LABEL] == predictions[TRUE_LABEL]).to_numpy()
    assert metrics["accuracy"] == pytest.approx(model_right.mean())
    assert shadow["accuracy"] == pytest.approx(shadow_right.mean())
    b, c = int((model_right & ~shadow_right).sum()), int((~model_right & shadow_right).sum())
    assert b + c > 0, "the two models must disagree on some reviews for this test to mean anything"
    assert (comparison["only_model_right"], comparison["only_shadow_right"]) == (b, c)
    assert comparison["p_value"] == pytest.approx(binomial_test_by_hand(b, c), rel=1e-9)
    assert comparison["sentence"] in result.stdout.replace("\n", " ")

    # Both accuracies side by side in the output, as on the page.
    row = next(line for line in result.stdout.splitlines() if "│" in line and line.strip("│ ").startswith("accuracy "))
    assert f"{metrics['accuracy']:.4f}" in row and f"{shadow['accuracy']:.4f}" in row
    page = (out / EVALUATION_PAGE_FILE).read_text()
    assert "Model and shadow" in page and f"{shadow['accuracy']:.4f}" in page and "McNemar" in page

    # Each model as it scores alone: the model's columns and metrics are a plain evaluation's, the shadow's
    # columns equal a plain evaluation of the shadow bundle (its own preprocessing and vocabulary).
    for i, (bundle, label, score) in enumerate(
        [(tiny_bundle, PREDICTED_LABEL, SCORE), (shadow_bundle, SHADOW_PREDICTED_LABEL, SHADOW_SCORE)]
    ):
        alone = tmp_path / f"alone{i}"
        plain = evaluate(tmp_path / "d.parquet", "--model", bundle.path, "--output", alone)
        assert plain.exit_code == 0, plain.output
        single = pd.read_parquet(alone / PREDICTIONS_FILE)
        assert SHADOW_PREDICTED_LABEL not in single.columns
        assert single[PREDICTED_LABEL].tolist() == predictions[label].tolist()
        np.testing.assert_allclose(single[SCORE], predictions[score], atol=1e-5)
        plain_metrics = json.loads((alone / METRICS_FILE).read_text())
        assert "shadow" not in plain_metrics and "comparison" not in plain_metrics
        assert plain_metrics["accuracy"] == (metrics, shadow)[i]["accuracy"]
        assert plain_metrics["brier"] == pytest.approx((metrics, shadow)[i]["brier"], abs=1e-6)


def test_the_shadow_is_compared_in_the_scoring_install(tiny_bundle, shadow_bundle, tmp_path):
    """No SciPy, scikit-learn, matplotlib or TensorFlow: McNemar's test is the standard library's."""
    write_labelled(tmp_path / "d.parquet", make_reviews(40, seed=52))
    out = tmp_path / "out"
    done = evaluate_without("", tmp_path / "d.parquet", "--model", tiny_bundle.path, "--shadow-model",
                            shadow_bundle.path, "--output", out)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    comparison = json.loads((out / METRICS_FILE).read_text())["comparison"]
    assert comparison["reviews"] == 40 and 0 < comparison["p_value"] <= 1
    assert "is better on this sample" in done.stdout or "no significant difference" in done.stdout


def test_a_shadow_with_other_classes_exits_2_before_any_model_loads(tiny_bundle, tmp_path):
    write_labelled(tmp_path / "d.parquet", make_reviews(20, seed=53))
    out = tmp_path / "out"
    # TensorFlow and ONNX Runtime blocked: had either model been loaded, it would fail otherwise.
    refused = evaluate_without("onnxruntime", tmp_path / "d.parquet", "--model", tiny_bundle.path,
                               "--shadow-model", FIVE_CLASS_BUNDLE, "--output", out)  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    message = refused.stderr
    assert str(FIVE_CLASS_BUNDLE) in message and str(tiny_bundle.path) in message and "--shadow-model" in message
    assert "somewhat negative" in message and "negative, positive" in message
    assert not out.exists()

    missing = evaluate(tmp_path / "d.parquet", "--model", tiny_bundle.path, "--shadow-model", tmp_path / "none",
                       "--output", out)  # fmt: skip
    assert missing.exit_code == 2 and "--shadow-model" in missing.output and str(tmp_path / "none") in missing.output
    assert not out.exists()


def test_progress_counts_both_passes_to_one_end(tiny_bundle, shadow_bundle, tmp_path, monkeypatch):
    from training import evaluation

    write_labelled(tmp_path / "d.parquet", make_reviews(30, seed=54))
    monkeypatch.setattr(evaluation, "DEFAULT_MAX_BATCH_SIZE", 20)
    calls = []
    evaluation.evaluate_bundle(
        str(tiny_bundle.path), [str(tmp_path / "d.parquet")], tmp_path / "o", "text", "label", "review_id",
        progress=lambda *call: calls.append(call), shadow_model=str(shadow_bundle.path),
    )  # fmt: skip
    assert calls == [(20, 60), (30, 60), (50, 60), (60, 60)]
