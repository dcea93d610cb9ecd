"""The run summary: its contract (schemas/summary.py), the step that computes it and the sink that writes it.

The end-to-end tests (tests/test_scoring.py, tests/test_monitoring.py) read _SUMMARY.json as the job
wrote it; these check the parts on their own: the typed summary reads back exactly what it wrote,
refuses what is not a summary, and the summary step computes it from plain data (a tally, the
published names, the model's manifest and profile), with no file written but by the sink.
"""

from __future__ import annotations

import importlib.metadata
import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from pipeline.job import summarize as summary_step
from pipeline.job.lineage import JOB_ID_VARIABLE
from pipeline.job.report import render_report
from pipeline.job.sinks import ScoredSink, WriteSummary, read_summary
from pipeline.job.summarize import RunContext, Summarize
from pipeline.job.tallies import RunTally, add_tallies, engine_tally_key, failed_tally
from pipeline.job.verdict import RunPolicy, judge
from pipeline.model.explain.explainer import ExplainSettings, ExplanationStatistics
from pipeline.model.labels import Labels
from pipeline.model.monitoring.statistics import Statistics
from pipeline.model.monitoring.training_profile import TrainingProfile
from pipeline.model.preprocessing import EncodedBatch
from schemas.output import REPORT_FILE, SUMMARY_FILE
from schemas.summary import (
    ClassWords,
    CompletenessError,
    Drift,
    DriftCheck,
    EngineUse,
    ExplanationsSummary,
    InputsLineage,
    Lineage,
    ModelLineage,
    RunSummary,
    SummaryError,
    Verdict,
    WordWeight,
    summary_from_json,
    summary_to_json,
)

BINARY = Labels(("negative", "positive"), "positive")


def a_summary(**changes) -> RunSummary:
    check = DriftCheck(name="scores", what="score column", statistic="population stability index", value=0.31,
                       threshold=0.25, drifted=True, verdict="drifted", details={"bin_starts": [0, 4, 9]})  # fmt: skip
    summary = RunSummary(
        records_read=10, records_scored=8, records_failed=2, failed_by_stage={"decode": 1, "read": 1},
        accounting_ok=True, label_counts={"negative": 3, "positive": 5}, model_version="2.0.0",
        engine="keras + onnx",
        engines={"keras": EngineUse(reviews=3, why=("asked for",)), "onnx": EngineUse(reviews=5, why=())},
        wall_seconds=1.25, reviews_per_second=6.4, scored_files=("out/scored-00000-of-00001.parquet",),
        error_files=("out/_errors/errors-00000-of-00001.parquet",),
        drift=Drift(detected=True, status="drifted", checks=(check,), reviews=8, reference_reviews=100, min_reviews=5),
        explanations=ExplanationsSummary(
            method="integrated gradients", target="the predicted class's logit", top_k=3, reviews=8,
            completeness_error=CompletenessError(mean=0.01, max=0.04, share_above_tolerance=0.0, tolerance=0.05),
            words_by_class={
                "negative": ClassWords(
                    reviews=3, min_reviews=3, words=(WordWeight(word="dull", mean_weight=1.25, reviews=3),)
                ),
                "positive": ClassWords(reviews=5, min_reviews=3, words=()),
            },
            engine="TensorFlow", steps=32, quadrature="Gauss-Legendre", baseline="zero embedding",
        ),
        verdict=Verdict(passed=False, problems=("drift detected (scores) with --on-drift fail",), error_rate=0.2,
                        max_error_rate=None, on_drift="fail"),
        report="out/_report.html",
        lineage=a_lineage(),
    )  # fmt: skip
    return summary.model_copy(update=changes)


def a_lineage(**changes) -> Lineage:
    lineage = Lineage(
        inputs=InputsLineage(given=("reviews/", "more/*.parquet"),
                             patterns=("reviews/**.txt", "reviews/**.parquet", "more/*.parquet"),
                             text_files=7, parquet_files=("more/a.parquet",), records=10),
        model=ModelLineage(location="models/tiny", name="tiny", version="2.0.0", manifest_sha256="ab" * 32),
        options={"input": ["reviews/", "more/*.parquet"], "output": "out", "max_error_rate": None, "overwrite": False},
        versions={"reviewscore": "0.1.0", "apache-beam": "2.77.0", "python": "3.11.7", "pyarrow": "25.0.1"},
        runner="DirectRunner", started="2026-01-31T03:00:00.000Z", finished="2026-01-31T03:00:01.250Z",
    )  # fmt: skip
    return lineage.model_copy(update=changes)


# --- the contract ------------------------------------------------------------------------------------


def test_a_summary_reads_back_as_written_in_the_files_key_order():
    summary = a_summary()
    text = summary_to_json(summary)
    assert summary_from_json(text) == summary
    assert summary_to_json(summary_from_json(text)) == text
    keys = list(json.loads(text))
    assert keys[:3] == ["records_read", "records_scored", "records_failed"]
    assert keys[-4:] == ["drift", "explanations", "verdict", "report"]
    assert keys[keys.index("error_files") + 1] == "lineage"  # where the files came from, before what they say
    lineage = json.loads(text)["lineage"]
    assert list(lineage) == ["inputs", "model", "options", "versions", "runner", "job_id", "started", "finished"]
    assert lineage["job_id"] is None and lineage["options"]["max_error_rate"] is None
    explained = list(json.loads(text)["explanations"])
    assert explained[:6] == ["method", "steps", "quadrature", "baseline", "target", "top_k"]


def test_optional_parts_are_left_out_not_written_as_null():
    data = a_summary(explanations=None, verdict=None, report=None, report_error="ValueError('x')").model_dump(
        mode="json"
    )
    assert "explanations" not in data and "verdict" not in data and "model_loads" not in data
    assert "lineage" not in a_summary(lineage=None).model_dump(mode="json")  # a summary read from a file that has none
    assert summary_from_json(summary_to_json(a_summary(lineage=None))).lineage is None
    assert list(data)[-2:] == ["report_error", "report"] and data["report"] is None
    assert "model_loads" in a_summary(model_loads=2).model_dump(mode="json")  # the launcher's, after reading
    no_profile = Drift(detected=False, status="no_profile", reason="no training profile").model_dump(mode="json")
    assert no_profile == {"detected": False, "status": "no_profile", "reason": "no training profile", "checks": []}


@pytest.mark.parametrize("method", ["occlusion", "integrated-gradients"])
def test_the_explanations_summary_holds_what_the_explainer_describes(method):
    """Every key the explanation statistics describe is typed, in their order: nothing is dropped."""
    settings = ExplainSettings(top_k=3, method=method)
    described = ExplanationStatistics.empty(2).summary(("negative", "positive"), settings)
    data = json.loads(json.dumps({**described, "engine": settings.runs_on("onnx")}))
    assert ExplanationsSummary.model_validate(data).model_dump(mode="json") == data
    assert list(ExplanationsSummary.model_validate(data).model_dump(mode="json")) == list(data)


def test_words_are_ranked_by_what_they_do_not_by_how_often_they_occur():
    """A word in few reviews with a strong weight ranks above a word in every review with a weak one (counting
    how often a word is among a review's strongest ranked "the" first); a word in too few reviews, or pulling
    against the label, is not ranked. The batches add up as the run's combine adds them."""
    from pipeline.job.tallies import EXPLANATIONS
    from pipeline.model.explain.explainer import Explained
    from pipeline.model.explain.integrated_gradients import Attributions

    def review(i: int) -> list[tuple[str, float]]:
        words = [("the", 0.3), ("film", 0.1), ("plot", -0.2)]
        return words + [("superb", 2.0)] * (i % 10 == 0) + [("masterpiece", 5.0)] * (i == 1)

    def tally(reviews: list[list[tuple[str, float]]]) -> dict:
        weights = [np.array([weight for _, weight in r], np.float32) for r in reviews]
        attributions = Attributions(weights, np.ones(len(reviews)), None)  # occlusion's: no baseline
        explained = Explained.of([[word for word, _ in r] for r in reviews], attributions, 5)
        return {EXPLANATIONS: ExplanationStatistics.of(explained, np.ones(len(reviews), np.int64), 2)}

    reviews = [review(i) for i in range(40)]
    statistics = RunTally.of(add_tallies([tally(reviews[:25]), tally(reviews[25:])])).explanations
    words = statistics.summary(("negative", "positive"), ExplainSettings(top_k=5))["words_by_class"]
    assert words["negative"] == {"reviews": 0, "min_reviews": 3, "words": []}
    positive = words["positive"]
    assert positive["reviews"] == 40 and positive["min_reviews"] == 3
    assert [(w["word"], w["reviews"]) for w in positive["words"]] == [("superb", 4), ("the", 40), ("film", 40)]
    assert positive["words"][0]["mean_weight"] == pytest.approx(2.0)  # shown with its count: 4 reviews


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("records_read"), "lacks 'records_read'"),
        (lambda d: d.update(records_scored="8"), r"records_scored is '8': .*integer"),
        (lambda d: d.update(accounting_ok=1), r"accounting_ok is 1: .*boolean"),
        (lambda d: d["label_counts"].update(positive=True), r"label_counts\.positive is True: .*integer"),
        (lambda d: d["drift"]["checks"][0].pop("threshold"), r"drift\.checks\[0\] lacks 'threshold'"),
        (lambda d: d["verdict"].update(problems=[1]), r"verdict\.problems\[0\] is 1: .*string"),
        (
            lambda d: d["explanations"]["words_by_class"]["negative"]["words"][0].pop("mean_weight"),
            r"explanations\.words_by_class\.negative\.words\[0\] lacks 'mean_weight'",
        ),
        (lambda d: d.update(engines={"onnx": {"reviews": 5}}), "lacks 'why'"),
        (lambda d: d["lineage"]["model"].pop("manifest_sha256"), r"lineage\.model lacks 'manifest_sha256'"),
        (lambda d: d["lineage"]["inputs"].update(text_files="7"), r"lineage\.inputs\.text_files is '7': .*integer"),
        (lambda d: d["lineage"]["versions"].update(python=3.11), r"lineage\.versions\.python is 3\.11: .*string"),
    ],
)
def test_what_is_not_a_summary_is_refused_with_what_is_wrong(change, message):
    data = a_summary().model_dump(mode="json")
    change(data)
    with pytest.raises(SummaryError, match=message):
        summary_from_json(json.dumps(data))


def test_a_file_that_is_not_json_is_refused():
    with pytest.raises(SummaryError, match="not JSON"):
        summary_from_json(b"{half")
    with pytest.raises(SummaryError, match="not a JSON object"):
        summary_from_json("[]")


# --- the verdict ----------------------------------------------------------------------------------------


def test_the_verdict_judges_a_typed_summary_by_the_policy():
    summary = a_summary(verdict=None)
    assert judge(summary, RunPolicy()) == Verdict(
        passed=True, problems=(), error_rate=0.2, max_error_rate=None, on_drift="warn"
    )
    strict = judge(summary, RunPolicy(max_error_rate=0.1, on_drift="fail"))
    assert not strict.passed and strict.problems == (
        "20.00% of records failed, above --max-error-rate 10.00%",
        "drift detected (scores) with --on-drift fail",
    )
    lost = judge(summary.model_copy(update={"accounting_ok": False}), RunPolicy())
    assert lost.problems == ("records read (10) differ from scored + failed (10)",)


# --- the summary step -----------------------------------------------------------------------------------


def statistics(n: int, seed: int) -> Statistics:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(2, 300, rng.integers(3, 40)).astype(np.int32) for _ in range(n)]
    p = rng.random(n).astype(np.float32)
    return Statistics.of_batch(EncodedBatch.from_rows(rows), np.stack([1 - p, p], axis=1), BINARY)


def a_tally(scored: Statistics) -> dict:
    tallies = [
        {"read": scored.reviews + 2, "scored": scored.reviews, "statistics": scored},
        {engine_tally_key("onnx", "asked for"): scored.reviews - 1, engine_tally_key("onnx", ""): 1},
        failed_tally({"stage": "read"}),
        failed_tally({"stage": "decode"}),
    ]
    return add_tallies(tallies)


def test_the_tally_is_read_into_counts_stages_and_engines():
    run = statistics(30, seed=0)
    tally = RunTally.of(a_tally(run))
    assert (tally.read, tally.scored, tally.failed) == (32, 30, 2)
    assert list(tally.failed_by_stage.items()) == [("decode", 1), ("read", 1)]
    assert tally.engines == {"onnx": EngineUse(reviews=30, why=("asked for",))}
    assert tally.statistics is run and tally.explanations is None


def test_the_summary_step_computes_the_summary_and_report_from_plain_data():
    run, reference = statistics(600, seed=1), statistics(800, seed=2)
    profile = TrainingProfile(statistics=reference, source={"part": "held out", "data": "train.parquet"})
    context = RunContext("2.0.0", BINARY.class_names, {"name": "tiny"}, profile, policy=RunPolicy(0.001), started=0)
    published = (["out/scored-1.parquet", "out/scored-0.parquet"], ["out/_errors/errors-0.parquet"])
    summary, page = next(Summarize(context).process(published, a_tally(run)))

    assert (summary.records_read, summary.records_scored, summary.records_failed) == (602, 600, 2)
    assert summary.accounting_ok and summary.scored_files == ("out/scored-0.parquet", "out/scored-1.parquet")
    assert summary.label_counts == dict(zip(BINARY.class_names, run.labels.tolist(), strict=True))
    assert summary.drift.status in ("ok", "drifted") and summary.drift.reference_reviews == 800
    assert summary.engine == "onnx" and summary.explanations is None
    assert summary.verdict == judge(summary, RunPolicy(0.001)) and not summary.verdict.passed
    assert summary.report is None  # where the page goes is the sink's to say
    assert b"reviewscore run: tiny 2.0.0" in page and b"held out: train.parquet" in page
    assert "<title>reviewscore run: model 2.0.0</title>" in render_report(summary, run, None, {})  # no profile


@pytest.mark.parametrize(("runner", "job_id"), [("DirectRunner", None), ("DataflowRunner", "2026-01-31_03_00_00-123")])
def test_the_summary_step_finishes_the_launchs_lineage(monkeypatch, runner, job_id):
    """The launch's lineage comes back finished: when, the job's id on a remote runner (never a local
    shell's JOB_ID), and the version of the library of the engine that scored, read where it ran."""
    monkeypatch.setenv(JOB_ID_VARIABLE, "2026-01-31_03_00_00-123")
    launched = a_lineage(runner=runner, finished=None)
    context = RunContext("2.0.0", BINARY.class_names, {"name": "tiny"}, started=1_769_828_400.0, lineage=launched)
    summary, page = next(Summarize(context).process(([], []), a_tally(statistics(30, seed=4))))

    lineage = summary.lineage
    assert (lineage.inputs, lineage.model, lineage.options, lineage.started) == (
        launched.inputs, launched.model, launched.options, launched.started,
    )  # fmt: skip
    assert lineage.job_id == job_id and lineage.runner == runner
    assert lineage.versions["onnxruntime"] == importlib.metadata.version("onnxruntime")  # the engine that scored
    assert list(lineage.versions)[:4] == ["reviewscore", "apache-beam", "python", "pyarrow"]
    finished = datetime.fromisoformat(lineage.finished)
    assert finished.utcoffset() == timedelta(0)
    assert finished.timestamp() == pytest.approx(context.started + summary.wall_seconds, abs=0.02)
    assert b'id="lineage"' in page and b"models/tiny" in page and b"abababababab</code>" in page
    assert b"DataflowRunner (job 2026-01-31_03_00_00-123)" in page or runner == "DirectRunner"


def test_a_report_that_cannot_be_drawn_is_named_in_the_summary_not_fatal(monkeypatch):
    def broken(*args):
        raise ValueError("no page")

    monkeypatch.setattr(summary_step, "render_report", broken)
    context = RunContext("2.0.0", BINARY.class_names)
    summary, page = next(Summarize(context).process(([], []), a_tally(statistics(3, seed=3))))
    assert page is None and summary.report_error == "ValueError('no page')"
    assert summary.drift.status == "no_profile"


def test_the_sink_writes_the_report_then_the_summary_it_reads_back(tmp_path):
    sink = ScoredSink(str(tmp_path), schema=None, error_schema=None)
    (written,) = WriteSummary(sink).process((a_summary(report=None), b"<html>page</html>"))
    assert written.report == str(tmp_path / REPORT_FILE)
    assert (tmp_path / REPORT_FILE).read_bytes() == b"<html>page</html>"
    assert (tmp_path / SUMMARY_FILE).read_text() == summary_to_json(written)
    assert read_summary(str(tmp_path)) == written

    (unwritten,) = WriteSummary(sink).process((a_summary(report=None, report_error="ValueError()"), None))
    assert unwritten.report is None and read_summary(str(tmp_path)).report_error == "ValueError()"
