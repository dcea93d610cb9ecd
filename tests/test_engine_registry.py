"""Adding an engine is one class and one `register` line: a toy engine, registered through the same
API as the real ones, is an `--engine` choice, is kept by `choose_engine`, and scores a real job.

The 'auto' rule and `--engine`'s help are generated from the registry's data; the texts they
produce for today's engines are pinned here, word for word.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.model.engines import base
from pipeline.model.engines.base import EngineUnavailable, ScorerSettings
from pipeline.model.engines.calibrated import bundle_scorer
from pipeline.model.engines.choice import auto_help, choose_engine
from pipeline.model.engines.plan import UnsupportedModel
from pipeline.model.engines.registry import ENGINES, engine_choices, register, unregister
from schemas.bundle import ONNX_FILE

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "models" / "imdb-bilstm"
WITH_ONNX, WITHOUT_ONNX = {ONNX_FILE}, set()


class ToyScorer:
    engine = "toy"

    def __init__(self, reason: str):
        self.reason = reason

    def __call__(self, rows):
        """One logit per review: positive for reviews of more than five tokens."""
        return np.array([[len(row) - 5.5] for row in rows], dtype=np.float32)


class ToyEngine:
    """An engine that needs nothing: its 'model' is a NumPy function of the ids."""

    name = "toy"
    title = "Toy"
    description = "a NumPy function of the ids"
    module = None
    bundle_file = None
    best_batch_size = 8
    gradients = False
    auto_from_reviews = None
    fallback = None

    def load(self, bundle, settings: ScorerSettings) -> ToyScorer:
        return ToyScorer(settings.reason)


class UnreproducibleEngine(ToyEngine):
    """'auto' chooses it for jobs of unknown size; it cannot reproduce any model, and the toy engine stands in."""

    name = "unreproducible"
    auto_from_reviews = 10**12
    fallback = "toy"

    def load(self, bundle, settings: ScorerSettings) -> ToyScorer:
        raise UnsupportedModel("no model is reproducible here")


@pytest.fixture
def toy_engine():
    register(ToyEngine())
    yield ENGINES["toy"]
    unregister("toy")


def test_a_registered_engine_is_a_choice_and_choose_engine_keeps_it(toy_engine):
    assert engine_choices() == ("auto", "onnx", "xla", "keras", "toy")
    assert choose_engine("toy", WITHOUT_ONNX, 10) == ("toy", "asked for")
    assert choose_engine("auto", WITH_ONNX, 10)[0] == "onnx"  # 'auto' never chooses an engine without auto data
    with pytest.raises(EngineUnavailable, match=r"or score with --engine xla or keras or toy$"):
        choose_engine("onnx", WITHOUT_ONNX, 10)
    with pytest.raises(ValueError, match=r"choose one of: auto, onnx, xla, keras, toy$"):
        choose_engine("nonesuch", WITHOUT_ONNX, 10)
    with pytest.raises(ValueError, match="already registered"):
        register(ToyEngine())


def test_an_unregistered_engine_is_no_choice():
    assert "toy" not in engine_choices()
    with pytest.raises(ValueError, match="unknown engine 'toy'"):
        choose_engine("toy", WITHOUT_ONNX, 10)


def test_the_score_command_lists_a_registered_engine():
    """Registered before the CLI is built, as the registry's own lines are: `--engine` offers it."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json\n"
            "from typer.testing import CliRunner\n"
            "from pipeline.model.engines.registry import register\n"
            "from tests.test_engine_registry import ToyEngine\n"
            "register(ToyEngine())\n"
            "from pipeline.cli import app\n"
            "from pipeline.job.options import OPTIONS\n"
            "result = CliRunner().invoke(app, ['score', '--help'], env={'COLUMNS': '200'})\n"
            "print(json.dumps({'help': result.output, 'choices': list(OPTIONS['engine'].choices),"
            " 'regex': OPTIONS['engine'].regex()}))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr
    shown = json.loads(probe.stdout.strip().splitlines()[-1])
    assert shown["choices"] == ["auto", "onnx", "xla", "keras", "toy"]
    assert shown["regex"] == "^(auto|onnx|xla|keras|toy)$"
    assert "auto, onnx, xla, keras or toy." in " ".join(shown["help"].split())  # --engine's help names every choice
    assert "toy 8" in shown["help"]  # --inference-batch-size names its best batch size too


def test_a_job_scores_with_a_registered_engine(toy_engine, tmp_path):
    from pipeline.job.scoring import ScoringJob, run_scoring

    texts = ["wonderful film", "a long and dreadful and boring film with a bad plot", "the plot"]
    pq.write_table(pa.table({"review_id": ["a", "b", "c"], "text": texts}), tmp_path / "in.parquet")
    out = tmp_path / "out"
    run_scoring(ScoringJob([str(tmp_path / "in.parquet")], str(out), str(BUNDLE), scorer=ScorerSettings(engine="toy")))
    summary = json.loads((out / "_SUMMARY.json").read_text())
    assert summary["engines"] == {"toy": {"reviews": 3, "why": ["asked for"]}}
    scored = pd.concat(pd.read_parquet(f) for f in sorted(out.glob("scored-*.parquet"))).set_index("review_id")
    from pipeline.model.bundle import open_bundle

    # the toy's rule on the bundle's own encoding: more than five tokens, positive
    lengths = [len(row) for row in open_bundle(BUNDLE).encoder.encode(texts).rows()]
    expected = ["positive" if n > 5 else "negative" for n in lengths]
    assert sorted(set(expected)) == ["negative", "positive"], lengths
    assert scored.loc[["a", "b", "c"], "predicted_label"].tolist() == expected


def test_auto_falls_back_where_its_engine_cannot_reproduce_the_model(toy_engine):
    from pipeline.model.bundle import open_bundle

    register(UnreproducibleEngine())
    try:
        bundle = open_bundle(BUNDLE)
        assert choose_engine("auto", WITH_ONNX, None)[0] == "unreproducible"
        scorer = bundle_scorer(bundle, ScorerSettings(), reviews=None)
        assert scorer.engine == "toy" and scorer.reason == "no model is reproducible here"
        with pytest.raises(UnsupportedModel):
            bundle_scorer(bundle, ScorerSettings(engine="unreproducible"))
        assert bundle_scorer(bundle, ScorerSettings(), reviews=12).engine == "onnx"
    finally:
        unregister("unreproducible")


def test_the_rule_over_the_registry_says_what_it_always_said(monkeypatch):
    assert auto_help() == (
        "auto: decided where the reviews are scored (on each worker, from what it has installed): onnx "
        "(ONNX Runtime, no TensorFlow) for jobs under 60,000 reviews or where TensorFlow is not "
        "installed, else xla (compiled, fastest per review; keras for architectures it cannot reproduce)."
    )
    monkeypatch.setattr(base, "module_installed", lambda name: True)
    assert choose_engine("auto", WITH_ONNX, 12_345) == (
        "onnx",
        "12,345 reviews: fewer than 60,000, XLA's start-up would not pay off",
    )
    assert choose_engine("auto", WITH_ONNX, 60_000) == ("xla", "at least 60,000 reviews")
    assert choose_engine("auto", WITHOUT_ONNX, None) == ("xla", "no model.onnx in the bundle")
    with pytest.raises(EngineUnavailable) as refused:
        choose_engine("onnx", WITHOUT_ONNX, 10)
    assert str(refused.value) == (
        "this bundle has no model.onnx; write one with `reviewscore export-onnx BUNDLE` (needs TensorFlow), "
        "or score with --engine xla or keras"
    )
    monkeypatch.setattr(base, "module_installed", lambda name: name != "tensorflow")
    assert choose_engine("auto", WITH_ONNX, 12) == ("onnx", "TensorFlow is not installed")
    with pytest.raises(EngineUnavailable) as refused:
        choose_engine("keras", WITH_ONNX, 10)
    assert str(refused.value).startswith(
        "--engine keras needs TensorFlow, which is not installed here; use --engine onnx"
    )
    assert "install the train extra" in str(refused.value)
    with pytest.raises(EngineUnavailable) as refused:
        choose_engine("auto", WITHOUT_ONNX, 10)
    message = str(refused.value)
    assert message.startswith("this bundle has no model.onnx and TensorFlow is not installed: nothing here can score")
    assert "install the train extra (pip install" in message and "'.[train]'" in message  # an extra that exists
    assert message.endswith("or write model.onnx with `reviewscore export-onnx BUNDLE`")
