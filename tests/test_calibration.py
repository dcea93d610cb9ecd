"""Calibration: fitting lowers the error of overconfident scores without reordering them, and the
fitted map travels in the bundle, where a missing or altered file makes the bundle unusable."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.model.bundle import Bundle, BundleError
from pipeline.model.calibration import Calibration, CalibrationError, logit, read_calibration
from schemas.bundle import CALIBRATION_FILE, MANIFEST_FILE
from training.calibration_fit import (
    brier_score,
    choose_and_fit,
    confidence_calibration_error,
    expected_calibration_error,
    fit,
    labels_for,
)
from training.evaluation import roc_auc


def overconfident(n: int = 4000, seed: int = 0, stretch: float = 3.0, shift: float = 0.0):
    """Labels drawn from sigmoid(z), and the logits a model 3x too sure of itself would report."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-true_logits))).astype(np.int8)
    return stretch * true_logits + shift, labels


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_fitting_lowers_ece_and_keeps_the_ranking(method):
    logits, labels = overconfident()
    before = Calibration().probabilities(logits)
    calibration = fit(method, logits, labels)
    after = calibration.probabilities(logits)
    assert after.shape == (len(labels), 2)
    assert expected_calibration_error(labels, before) > 0.08
    assert expected_calibration_error(labels, after) < 0.025
    assert confidence_calibration_error(labels, after) < confidence_calibration_error(labels, before)
    assert brier_score(labels, after) < brier_score(labels, before)
    # Monotone: the order of reviews is kept (float32 rounding can only merge neighbours into ties).
    assert np.all(np.diff(after[np.argsort(logits, kind="stable"), 1]) >= 0)
    assert roc_auc(labels, after[:, 1]) == pytest.approx(roc_auc(labels, logits), abs=1e-6)
    assert calibration.temperature == pytest.approx(3.0, rel=0.15)


def test_platt_is_chosen_when_the_model_leans_to_one_class():
    logits, labels = overconfident(shift=-2.5)  # says "negative" far too often
    groups = np.arange(len(labels)) // 10
    calibration = choose_and_fit(logits, labels, groups, seed=1)
    assert calibration.method == "platt" and calibration.intercept > 0
    details = calibration.details
    assert details["after"]["ece"] < details["before"]["ece"]
    assert details["cross_fitted"]["platt"]["log_loss"] < details["cross_fitted"]["temperature"]["log_loss"]


def test_temperature_is_chosen_for_a_centred_overconfident_model():
    logits, labels = overconfident(seed=3)
    calibration = choose_and_fit(logits, labels, np.arange(len(labels)), seed=1)
    assert calibration.details["after"]["ece"] < calibration.details["before"]["ece"] / 3
    assert calibration.method in ("temperature", "platt")  # either may win by noise; both must calibrate


def test_ece_matches_its_definition_on_a_small_example():
    labels = np.array([0, 1, 1, 0])
    scores = np.array([0.05, 0.95, 0.55, 0.45])  # bins 0, 14, 8, 6 of 15
    expected = (0.05 + 0.05 + 0.45 + 0.45) / 4
    assert expected_calibration_error(labels, np.stack([1 - scores, scores], axis=1)) == pytest.approx(expected)


def test_multiclass_scores_are_judged_as_the_predicted_class_being_right():
    """Five classes: the score is the predicted class's probability, and its ECE compares it with
    how often that prediction is right; temperature scaling, the one method that applies, lowers it."""
    rng = np.random.default_rng(4)
    true_logits = rng.normal(0.0, 1.5, (5000, 5))
    p = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    names = labels_for(["1 star", "2 stars", "3 stars", "4 stars", "5 stars"])
    overconfident_logits = 3.0 * true_logits
    calibration = choose_and_fit(overconfident_logits, labels, np.arange(len(labels)) // 10, seed=2, names=names)
    assert calibration.method == "temperature" and calibration.temperature == pytest.approx(3.0, rel=0.15)
    before, after = Calibration().probabilities(overconfident_logits), calibration.probabilities(overconfident_logits)
    assert after.shape == (5000, 5) and np.allclose(after.sum(axis=1), 1.0, atol=1e-6)
    assert np.array_equal(names.predicted(after), names.predicted(before))  # temperature never changes a class
    assert expected_calibration_error(labels, before, names) > 0.1
    assert expected_calibration_error(labels, after, names) < 0.03
    assert expected_calibration_error(labels, after, names) == confidence_calibration_error(labels, after, names)
    assert set(calibration.details["cross_fitted"]) == {"temperature"}


def test_multiclass_ece_on_a_small_example():
    names = labels_for(["a", "b", "c"])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    labels = np.array([0, 2, 2, 1])  # right, wrong, right, wrong; confidences 0.7, 0.8, 0.6, 0.5
    expected = (abs(0.7 - 1) + abs(0.8 - 0) + abs(0.6 - 1) + abs(0.5 - 0)) / 4  # each in a bin of its own
    assert expected_calibration_error(labels, probabilities, names) == pytest.approx(expected)


def test_probabilities_are_stable_in_the_tails():
    calibration = Calibration(method="temperature", slope=0.5)
    scores = calibration.probabilities(np.array([-200.0, -40.0, 0.0, 40.0, 200.0]))[:, 1]
    assert scores.dtype == np.float32 and np.all(np.isfinite(scores))
    assert scores[2] == 0.5 and scores[0] < 1e-40 and scores[-1] == 1.0


@pytest.mark.parametrize(
    "data, message",
    [
        ({"method": "isotonic", "slope": 1, "intercept": 0}, "unknown calibration method"),
        ({"method": "platt", "slope": -1.0, "intercept": 0}, "must be positive"),
        ({"method": "platt", "slope": float("nan"), "intercept": 0}, "finite"),
        ({"method": "temperature", "slope": 1.0}, "lacks 'intercept'"),
        ({"method": "temperature", "slope": 1.0, "intercept": 0.3}, "no intercept"),
    ],
)
def test_invalid_calibration_is_refused(data, message):
    with pytest.raises(CalibrationError, match=message):
        read_calibration(data)


@pytest.fixture
def calibrated_copy(tiny_bundle, tmp_path):
    assert CALIBRATION_FILE in tiny_bundle.manifest.files
    target = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, target)
    return target


def test_bundle_without_its_calibration_file_is_refused(calibrated_copy):
    (calibrated_copy / CALIBRATION_FILE).unlink()
    with pytest.raises(BundleError, match=f"missing {CALIBRATION_FILE}"):
        Bundle.open(calibrated_copy)


def test_bundle_with_altered_calibration_is_refused(calibrated_copy):
    data = json.loads((calibrated_copy / CALIBRATION_FILE).read_text())
    data["slope"] = data["slope"] * 2
    (calibrated_copy / CALIBRATION_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=f"checksum mismatch for {CALIBRATION_FILE}"):
        Bundle.open(calibrated_copy)


def test_invalid_calibration_with_a_matching_checksum_is_refused(calibrated_copy):
    from pipeline.model.bundle import sha256_file

    (calibrated_copy / CALIBRATION_FILE).write_text(json.dumps({"method": "platt", "slope": 0, "intercept": 0}))
    manifest = json.loads((calibrated_copy / MANIFEST_FILE).read_text())
    manifest["files"][CALIBRATION_FILE] = sha256_file(calibrated_copy / CALIBRATION_FILE)
    (calibrated_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"invalid calibration\.json: calibration slope must be positive"):
        Bundle.open(calibrated_copy)


def test_scores_are_the_calibration_of_the_model_logits(tiny_bundle):
    """What the bundle's scorer returns is its calibration applied to the bare model's logit."""
    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.engines.calibrated import make_scorer

    model = tiny_bundle.load_model()
    rows = tiny_bundle.encoder.encode(["wonderful superb film", "dreadful boring plot", "the camera"]).rows()
    scorer = make_scorer(model, tiny_bundle.preprocessing.max_length, ScorerSettings(), tiny_bundle.calibration)
    raw = np.array([float(model(row[None, :], training=False)[0, 0]) for row in rows], dtype=np.float64)
    expected = tiny_bundle.calibration.probabilities(logit(raw))
    np.testing.assert_allclose(scorer(rows), expected, atol=1e-5)


def test_a_model_without_signal_gets_a_positive_slope_and_its_base_rate():
    rng = np.random.default_rng(4)
    labels = (rng.random(500) < 0.3).astype(np.int8)
    logits = -3.0 * labels + rng.normal(0, 0.1, 500)  # anti-correlated: a fit without limits would flip it
    calibration = fit("platt", logits, labels)
    assert calibration.slope > 0
    assert calibration.probabilities(logits)[:, 1].mean() == pytest.approx(labels.mean(), abs=0.05)
