"""The compiled (XLA) and ONNX engines give Keras' scores for every architecture they accept, for two
classes (sigmoid head) and five (softmax head), and refuse the rest."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from pipeline.model.calibration import Calibration, class_probabilities, logit
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.calibrated import make_scorer
from pipeline.model.engines.keras_engine import KerasScorer
from pipeline.model.engines.onnx_engine import OnnxScorer
from pipeline.model.engines.plan import UnsupportedModel, plan_model
from pipeline.model.engines.registry import ENGINES
from pipeline.model.engines.xla import CompiledScorer, check_against_keras, compile_plan
from training.architectures import ARCHITECTURES
from training.onnx_export import export_onnx

WIDTH = 60
VOCABULARY = 300
COMPILED = sorted(set(ARCHITECTURES) - {"cnn-lstm"})


def random_model(name: str, classes: int = 2) -> keras.Model:
    """Untrained weights, large enough that any difference in arithmetic shows in the scores (larger
    ones make a 100-unit LSTM chaotic, and float32 rounding alone then moves scores by 1e-5)."""
    keras.utils.set_random_seed(11)
    model = ARCHITECTURES[name].build(input_dim=VOCABULARY, num_classes=classes)
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0, 0.25, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def reviews(count: int, seed: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, WIDTH + 1, size=count)
    lengths[:2] = (1, WIDTH)  # the shortest and the longest a bundle allows
    return [rng.integers(1, VOCABULARY, size=n).astype(np.int32) for n in lengths]


def keras_scores(model, rows) -> np.ndarray:
    """(rows, classes) probabilities of each review alone, unpadded: the reference every engine must reproduce."""
    return np.concatenate([class_probabilities(np.asarray(model(row[None, :], training=False))) for row in rows])


@pytest.mark.parametrize("classes", [2, 5])
@pytest.mark.parametrize("name", COMPILED)
@pytest.mark.slow
def test_compiled_engine_reproduces_keras_scores(name, classes):
    model = random_model(name, classes)
    rows = reviews(37)
    scorer = make_scorer(model, WIDTH, ScorerSettings(engine="xla", batch_size=16, threads=2))
    assert scorer.engine == "xla"
    expected = keras_scores(model, rows)
    assert expected.shape == (37, classes)
    assert np.abs(expected - 1 / classes).max() > 0.05, "weights too small for the comparison to mean anything"
    np.testing.assert_allclose(scorer(rows), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(scorer(rows).sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("classes", [2, 5])
@pytest.mark.parametrize("name", COMPILED)
@pytest.mark.slow
def test_onnx_export_reproduces_keras_scores(name, classes, tmp_path):
    """model.onnx on ONNX Runtime, no TensorFlow in the scoring path: Keras' logits within 1e-5."""
    model = random_model(name, classes)
    rows = reviews(37)
    recorded = export_onnx(model, tmp_path, occlusion=False)
    assert recorded["checked_against_keras"]["max_abs_probability_difference"] <= 1e-5
    scorer = OnnxScorer.from_file(tmp_path / "model.onnx", batch_size=16, threads=2)
    np.testing.assert_allclose(Calibration().probabilities(scorer(rows)), keras_scores(model, rows), atol=1e-5, rtol=0)


def test_onnx_export_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(UnsupportedModel, match="MaskedConv1D"):
        export_onnx(random_model("cnn-lstm"), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_results_follow_input_order_whatever_the_threads_and_batch_sizes():
    model = random_model("bilstm-pool", classes=5)
    graph = compile_plan(plan_model(model), WIDTH)
    rows = reviews(70, seed=8)
    one = CompiledScorer(graph, WIDTH, 5, batch_size=32, threads=1)(rows)
    assert one.shape == (70, 5)
    np.testing.assert_array_equal(CompiledScorer(graph, WIDTH, 5, batch_size=32, threads=3)(rows), one)
    np.testing.assert_allclose(CompiledScorer(graph, WIDTH, 5, batch_size=8, threads=2)(rows), one, atol=1e-6)
    np.testing.assert_allclose(KerasScorer(model, 16)(rows), one, atol=1e-5)


@pytest.mark.slow
def test_architecture_it_cannot_reproduce_falls_back_to_keras():
    model = random_model("cnn-lstm")
    with pytest.raises(UnsupportedModel, match="MaskedConv1D"):
        plan_model(model)
    scorer = make_scorer(model, WIDTH, ScorerSettings(engine="auto", batch_size=16))
    assert scorer.engine == "keras" and "MaskedConv1D" in scorer.reason
    rows = reviews(9)
    np.testing.assert_allclose(scorer(rows), keras_scores(model, rows), atol=1e-5)
    with pytest.raises(UnsupportedModel):
        make_scorer(model, WIDTH, ScorerSettings(engine="xla"))


@pytest.mark.slow
def test_keras_engine_on_request_and_each_engine_its_own_batch_size():
    keras_scorer = make_scorer(random_model("lstm"), WIDTH, ScorerSettings(engine="keras"))
    assert keras_scorer.engine == "keras" and keras_scorer.engine_scorer.batch_size == ENGINES["keras"].best_batch_size
    compiled = make_scorer(random_model("lstm"), WIDTH, ScorerSettings(threads=1))
    assert compiled.engine == "xla" and compiled.engine_scorer.batch_size == ENGINES["xla"].best_batch_size


@pytest.mark.parametrize(
    ("name", "classes", "calibration"),
    [
        ("lstm", 2, Calibration(method="platt", slope=0.6, intercept=-0.4)),
        ("bilstm-pool", 2, Calibration(method="platt", slope=0.6, intercept=-0.4)),
        ("bilstm-pool", 5, Calibration(method="temperature", slope=0.6)),
    ],
)
@pytest.mark.slow
def test_calibrated_scores_agree_across_engines(name, classes, calibration):
    """Each engine's logits go through the same calibration: scores agree to 1e-5, and equal the
    calibration applied to Keras' own logits of each review alone."""
    model = random_model(name, classes)
    rows = reviews(41, seed=13)
    keras_engine = make_scorer(model, WIDTH, ScorerSettings(engine="keras", batch_size=16), calibration)
    compiled = make_scorer(model, WIDTH, ScorerSettings(engine="xla", batch_size=16, threads=2), calibration)
    probabilities = keras_scores(model, rows)
    # Keras' own logits: a sigmoid's log-odds, or a softmax's log-probabilities (equal up to a constant per row).
    reference = calibration.probabilities(logit(probabilities[:, 1]) if classes == 2 else np.log(probabilities))
    np.testing.assert_allclose(compiled(rows), keras_engine(rows), atol=1e-5, rtol=0)
    np.testing.assert_allclose(compiled(rows), reference, atol=1e-5, rtol=0)
    assert np.abs(compiled(rows) - make_scorer(model, WIDTH, ScorerSettings(engine="xla"))(rows)).max() > 0.01


def test_asking_for_xla_on_a_model_it_cannot_reproduce_is_a_configuration_error():
    from pipeline.job.scoring import check_compilable
    from pipeline.model.bundle import BundleError

    with pytest.raises(BundleError, match="--engine xla cannot score this model"):
        check_compilable(random_model("cnn-lstm"))
    check_compilable(random_model("bilstm-pool"))


@pytest.mark.slow
def test_probe_catches_a_graph_that_is_not_the_model():
    """The safety net: had the graph read the directions' weights crosswise, the probe refuses it."""
    model = random_model("bilstm-pool")
    plan = plan_model(model)
    forward, backward = plan.directions
    crossed = dataclasses.replace(
        plan,
        directions=(
            dataclasses.replace(forward, recurrent_kernel=backward.recurrent_kernel),
            dataclasses.replace(backward, recurrent_kernel=forward.recurrent_kernel),
        ),
    )
    scorer = CompiledScorer(compile_plan(crossed, WIDTH), WIDTH, 1, batch_size=16, threads=1)
    with pytest.raises(UnsupportedModel, match="differs from Keras"):
        check_against_keras(scorer, model, VOCABULARY)
