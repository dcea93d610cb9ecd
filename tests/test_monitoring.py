"""Every run watches itself: statistics, drift checks against the training profile, the policy, the report.

Unit tests build statistics from ids and probabilities they make themselves; the end-to-end tests run
the real pipeline on DirectRunner with a real tiny bundle, profiled on synthetic reviews.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import string
from html import escape

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.job.report import render_report
from pipeline.model.bundle import Bundle, BundleError
from pipeline.model.labels import Labels
from pipeline.model.monitoring.drift import (
    MIN_REVIEWS,
    QUANTILE_BINS,
    check_drift,
    coarsen,
    cohens_h,
    conditions,
    distribution_check,
    jensen_shannon_distance,
    psi,
    quantile_bins,
    two_proportion_z,
)
from pipeline.model.monitoring.statistics import TOP_TOKENS, Statistics, StatisticsFile
from pipeline.model.monitoring.training_profile import TrainingProfile
from pipeline.model.preprocessing import OOV_ID, EncodedBatch
from schemas.bundle import PROFILE_FILE
from schemas.output import REPORT_FILE, SUMMARY_FILE
from schemas.summary import ClassWords, Drift, RunSummary, WordWeight
from tests.conftest import make_reviews
from tests.test_shadow import ONLY_STOPWORDS, challenger  # noqa: F401 (a fixture: the second, flipped bundle)

runner = CliRunner()
BINARY = Labels(("negative", "positive"), "positive")
CHECKS = ("predicted_labels", "scores", "length", "vocabulary", "unknown_word_rate")


# --- statistics --------------------------------------------------------------------------------------


def test_statistics_of_a_batch_count_what_the_model_saw():
    ids = EncodedBatch.from_rows([np.array([2, 3, OOV_ID, 900]), np.array([OOV_ID, OOV_ID]), np.array([5])])
    probabilities = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]], dtype=np.float32)
    s = Statistics.of_batch(ids, probabilities, BINARY)
    assert s.reviews == 3
    assert s.lengths.tolist() == [0, 1, 1, 0, 1]  # one review each of 1, 2 and 4 tokens
    assert s.tokens[0] == 3  # unknown
    assert s.tokens[1] == 1 and s.tokens[2] == 1 and s.tokens[4] == 1  # ids 2, 3 and 5
    assert s.tokens[-1] == 1  # id 900 is beyond the top words: "other known words"
    assert len(s.tokens) == TOP_TOKENS + 2 and s.total_tokens == 7
    assert s.oov_shares[5] == 1 and s.oov_shares[0] == 1 and s.oov_shares[-1] == 1  # 25 %, 0 %, 100 %
    assert s.scores[80] == 1 and s.scores[10] == 1 and s.scores[50] == 1  # P(positive)
    assert s.labels.tolist() == [1, 2]  # a tie (0.5) goes to positive, as scoring decides


def test_statistics_add_up_to_the_statistics_of_the_whole():
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, 400, rng.integers(1, 60)).astype(np.int32) for _ in range(50)]
    p = rng.random(50).astype(np.float32)
    probabilities = np.stack([1 - p, p], axis=1)
    whole = Statistics.of_batch(EncodedBatch.from_rows(rows), probabilities, BINARY)
    parts = sum(
        Statistics.of_batch(EncodedBatch.from_rows(rows[i : i + 7]), probabilities[i : i + 7], BINARY)
        for i in range(0, 50, 7)
    )
    assert StatisticsFile.of(parts) == StatisticsFile.of(whole)
    written = StatisticsFile.of(whole).model_dump_json()
    assert StatisticsFile.of(StatisticsFile.model_validate_json(written).statistics()) == StatisticsFile.of(whole)


# --- the statistics behind the checks ----------------------------------------------------------------


def test_psi_and_js_distance_are_zero_for_equal_distributions_and_grow_with_the_shift():
    base = np.array([10, 20, 30, 40])
    assert psi(base, base * 3) == pytest.approx(0.0)
    assert jensen_shannon_distance(base, base * 3) == pytest.approx(0.0)
    assert 0 < psi(base, [12, 20, 30, 38]) < psi(base, [40, 30, 20, 10])
    assert jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint: 1 bit
    # PSI of a known pair, by hand: sum (a - e) ln(a / e)
    e, a = np.array([0.5, 0.5]), np.array([0.7, 0.3])
    assert psi(e * 100, a * 100) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))


def test_two_proportion_z_and_cohens_h_match_their_formulas():
    z = two_proportion_z(60, 100, 50, 100)
    pooled = 110 / 200
    assert z == pytest.approx(0.1 / np.sqrt(pooled * (1 - pooled) * (2 / 100)))
    assert cohens_h(0.5, 0.5) == 0.0
    assert cohens_h(0.5, 0.02) == pytest.approx(2 * np.arcsin(np.sqrt(0.5)) - 2 * np.arcsin(np.sqrt(0.02)))


def test_quantile_bins_hold_about_equal_reference_mass():
    reference = np.bincount(np.random.default_rng(1).integers(0, 300, 10_000), minlength=300)
    starts = quantile_bins(reference, 10)
    shares = coarsen(reference, starts) / reference.sum()
    assert len(starts) == 10 and np.all(np.abs(shares - 0.1) < 0.01)
    # a run with values beyond the reference's range lands in the last bin; a shorter one is padded
    assert coarsen(np.r_[reference, [5] * 50], starts).sum() == reference.sum() + 250
    assert coarsen(reference[:12], starts).shape == starts.shape


# --- drift checks on statistics the tests make ------------------------------------------------------


def synthetic(n: int, seed: int, *, positive_only=False, unknown=0.02, cut=None) -> Statistics:
    """n reviews of 20-200 tokens with Zipf-like word ids, `unknown` of them unknown, balanced scores."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 200, n) if cut is None else np.full(n, cut)
    ids = np.minimum(rng.zipf(1.3, lengths.sum()) + 1, 5000).astype(np.int32)
    ids[rng.random(len(ids)) < unknown] = OOV_ID
    offsets = np.r_[0, np.cumsum(lengths)]
    p = rng.beta(0.5, 0.5, n) if not positive_only else rng.uniform(0.8, 1.0, n)
    return Statistics.of_batch(EncodedBatch(ids, offsets), np.stack([1 - p, p], 1), BINARY)


@pytest.fixture(scope="module")
def reference():
    return synthetic(5000, seed=0)


def drifted_checks(report: Drift) -> set[str]:
    return {c.name for c in report.checks if c.drifted}


def test_a_clean_sample_does_not_alarm(reference):
    report = check_drift(reference, synthetic(5000, seed=1))
    assert report.status == "ok" and not report.detected, report
    assert [c.name for c in report.checks] == list(CHECKS)
    assert all(c.verdict == "ok" for c in report.checks)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"positive_only": True}, {"predicted_labels", "scores"}),
        ({"unknown": 0.5}, {"vocabulary", "unknown_word_rate"}),
        ({"cut": 12}, {"length"}),
    ],
    ids=["one class only", "half the words unknown", "cut to a dozen words"],
)
def test_each_kind_of_drift_is_caught_by_its_checks(reference, change, expected):
    report = check_drift(reference, synthetic(5000, seed=2, **change))
    assert report.detected and report.status == "drifted"
    assert expected <= drifted_checks(report), report


def test_a_large_but_negligible_rate_difference_is_significant_yet_not_drift(reference):
    """Over a million tokens a z-test flags 2 % against 2.4 % unknown words; Cohen's h (0.03) says it is
    too small to matter, so the rate check does not alarm."""
    report = check_drift(reference, synthetic(5000, seed=3, unknown=0.024))
    rate = next(c for c in report.checks if c.name == "unknown_word_rate")
    assert abs(rate.value) > rate.threshold and abs(rate.details["effect_size"]["value"]) < 0.2
    assert not rate.drifted


def test_every_check_states_the_conditions_that_decide_it(reference):
    """A check drifts exactly when all its conditions hold; the unknown-word rate has two (z and h)."""
    for change in ({}, {"positive_only": True}, {"unknown": 0.5}, {"unknown": 0.024}, {"cut": 12}):
        for check in check_drift(reference, synthetic(5000, seed=2, **change)).checks:
            decided_by = conditions(check)
            assert check.drifted == all(condition.holds() for condition in decided_by), (change, check)
            assert decided_by[0].value == check.value and decided_by[0].threshold == check.threshold
    rate = check_drift(reference, synthetic(5000, seed=3, unknown=0.024)).checks[-1]
    assert rate.name == "unknown_word_rate"
    z_test, effect = conditions(rate)
    assert [z_test.rule(), effect.rule()] == ["|z| > 3.29", "|h| ≥ 0.20"]
    assert z_test.holds() and not effect.holds() and not rate.drifted  # significant, negligible: h decides
    assert effect.value == rate.details["effect_size"]["value"]


def test_the_bin_count_says_when_deciles_merge():
    """Where one fine bin holds more than a tenth of the reference, deciles fall in it together: fewer
    bins, and the statistic says how many and why; the value is PSI over exactly those bins."""
    even = np.bincount(np.random.default_rng(1).integers(0, 300, 10_000), minlength=300)
    check = distribution_check("length", "tokens per review", even, even)
    assert check.statistic == f"population stability index over {QUANTILE_BINS} reference quantile bins"
    lumpy = even.copy()
    lumpy[0] = 3 * even.sum()  # three quarters of the reference in the first bin
    check = distribution_check("length", "tokens per review", lumpy, even)
    starts = quantile_bins(lumpy, QUANTILE_BINS)
    assert len(starts) < QUANTILE_BINS and check.details["bin_starts"] == starts.tolist()
    assert check.statistic == (
        f"population stability index over up to {QUANTILE_BINS} reference quantile bins "
        f"({len(starts)} here: deciles that fall in one histogram bin merge)"
    )
    assert check.value == round(psi(coarsen(lumpy, starts), coarsen(even, starts)), 6)


def test_the_report_shows_each_checks_conditions_with_one_format_per_column(reference):
    run = synthetic(5000, seed=3, unknown=0.024)
    drift = check_drift(reference, run)
    summary = RunSummary(
        records_read=5000, records_scored=5000, records_failed=0, failed_by_stage={}, accounting_ok=True,
        label_counts={"negative": int(run.labels[0]), "positive": int(run.labels[1])}, model_version="1",
        engine="onnx", engines={}, wall_seconds=1.0, reviews_per_second=5000.0, scored_files=(), error_files=(),
        drift=drift,
    )  # fmt: skip
    source = {"part": "held out", "data": "../data/imdb/train.parquet + rt/sst5_dev.parquet"}
    page = render_report(summary, run, TrainingProfile(statistics=reference, source=source), {"name": "m"})
    assert f'title="{source["data"]}">held out: train.parquet + sst5_dev.parquet</span>' in page  # file names shown
    table = page.split('<table id="drift">')[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
    rate = next(c for c in drift.checks if c.name == CHECKS[-1])
    z_row = rows[-2]
    assert z_row[:3] == ["unknown word rate", escape(rate.what), "two-proportion z-test"]  # in words
    assert z_row[3:] == [f"{rate.value:.4f}", "|z| &gt; 3.29", "yes", "no drift"]
    h = rate.details["effect_size"]["value"]
    assert rows[-1] == ["Cohen&#x27;s h (effect size)", f"{h:.4f}", "and |h| ≥ 0.20", "no"]
    assert len(rows) == len(drift.checks) + 1  # one line per condition
    for value, rule in [row[3:5] for row in rows[:-1]] + [rows[-1][1:3]]:  # values to 4 decimals, rules to 2
        assert re.fullmatch(r"-?\d+\.\d{4}", value) and re.fullmatch(r".*\d\.\d{2}", rule), (value, rule)
    assert "Judged on 5,000 reviews of this run" in page and 'id="not-judged"' not in page
    assert "needed" not in page.split('id="drift"')[0].split("Drift checks")[1]  # no minimum beside a judged run
    rules = page.split("Drift checks</h2><p>")[1].split("</p>")[0]  # what decides each check, in words
    assert "above 0.25" in rules and "above 0.10" in rules and "|z| &gt; 3.29" in rules and "|h| ≥ 0.20" in rules


def test_a_run_too_small_to_judge_shows_its_checks_as_not_judged_plainly(reference):
    """Below MIN_REVIEWS the values are shown, but no condition as met and every verdict as "not judged",
    with the reviews scored and the least judged named in words."""
    run = synthetic(120, seed=4, positive_only=True, unknown=0.5, cut=3)
    drift = check_drift(reference, run)
    summary = RunSummary(
        records_read=120, records_scored=120, records_failed=0, failed_by_stage={}, accounting_ok=True,
        label_counts={"negative": int(run.labels[0]), "positive": int(run.labels[1])}, model_version="1",
        engine="onnx", engines={}, wall_seconds=1.0, reviews_per_second=120.0, scored_files=(), error_files=(),
        drift=drift,
    )  # fmt: skip
    page = render_report(
        summary, run, TrainingProfile(statistics=reference, source={"part": "held out", "data": "t.parquet"}), {}
    )
    notice = page.split('id="not-judged">')[1].split("</p>")[0]
    assert "Not judged" in notice and "120 reviews" in notice and f"{MIN_REVIEWS:,}" in notice
    table = page.split('<table id="drift">')[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
    firsts = [row for row in rows if len(row) == 7]
    assert len(firsts) == len(CHECKS) and all(row[-1] == "not judged" for row in firsts)
    assert all(row[-2] == "–" for row in firsts) and rows[-1][-1] == "–"  # nothing shown as met, or not
    assert any(condition.holds() for check in drift.checks for condition in conditions(check))  # yet some would
    assert ">yes<" not in table and ">no<" not in table and "insufficient_data" not in table


def test_small_runs_report_insufficient_data_not_false_alarms(reference):
    report = check_drift(reference, synthetic(12, seed=4, positive_only=True, unknown=0.5, cut=3))
    assert report.status == "insufficient_data" and not report.detected
    assert all(c.verdict == "insufficient_data" and not c.drifted for c in report.checks)
    assert report.min_reviews == MIN_REVIEWS


def test_without_a_profile_nothing_is_checked():
    report = check_drift(None, synthetic(1000, seed=5)).model_dump(mode="json")
    assert report == {"detected": False, "status": "no_profile", "reason": report["reason"], "checks": []}


# --- the profile in the bundle ----------------------------------------------------------------------


def test_train_writes_a_checksummed_profile_of_its_held_out_reviews(tiny_bundle):
    assert PROFILE_FILE in tiny_bundle.manifest.files
    profile = tiny_bundle.profile
    rows = tiny_bundle.manifest.training_data
    assert profile.statistics.reviews == rows["validation_rows"] + rows["calibration_rows"]
    assert "held-out" in profile.source["part"]
    assert profile.statistics.labels.sum() == profile.statistics.reviews


def test_a_tampered_profile_is_refused(tiny_bundle, tmp_path):
    copy = shutil.copytree(tiny_bundle.path, tmp_path / "bundle")
    data = json.loads((copy / PROFILE_FILE).read_text())
    data["statistics"]["labels"][0] += 1
    (copy / PROFILE_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"checksum mismatch for profile\.json"):
        Bundle.open(copy)


@pytest.mark.slow
def test_profile_command_finds_the_held_out_movies_of_the_training_data(tiny_bundle, labelled_parquet, tmp_path):
    copy = shutil.copytree(tiny_bundle.path, tmp_path / "bundle")
    (copy / PROFILE_FILE).unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"][PROFILE_FILE]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert Bundle.open(copy).profile is None

    result = runner.invoke(app, ["profile", str(copy), "--data", labelled_parquet])
    assert result.exit_code == 0, result.output
    profiled = Bundle.open(copy)
    assert StatisticsFile.of(profiled.profile.statistics) == StatisticsFile.of(tiny_bundle.profile.statistics)
    assert "found again from the manifest" in profiled.profile.source["part"]
    assert profiled.model_version == tiny_bundle.model_version


# --- end to end: the real pipeline on DirectRunner -------------------------------------------------


def write_reviews(path, texts):
    pq.write_table(pa.table({"review_id": [f"r{i}" for i in range(len(texts))], "text": texts}), path)
    return path


def gibberish(text: str, rng: random.Random) -> str:
    words = text.split()
    for i in range(0, len(words), 2):
        words[i] = "".join(rng.choice(string.ascii_lowercase) for _ in range(7))
    return " ".join(words)


@pytest.fixture(scope="module")
def profiled(tiny_bundle, tmp_path_factory):
    """The tiny bundle profiled on 1,200 synthetic reviews, with a clean and a drifted 600-review sample."""
    root = tmp_path_factory.mktemp("profiled")
    bundle = shutil.copytree(tiny_bundle.path, root / "bundle")
    reference = write_reviews(root / "reference.parquet", [t for t, _ in make_reviews(1200, seed=11)])
    result = runner.invoke(app, ["profile", str(bundle), "--data", str(reference), "--force"])  # replaces its profile
    assert result.exit_code == 0, result.output
    clean = [t for t, _ in make_reviews(600, seed=12)]
    rng = random.Random(0)
    return {
        "bundle": bundle,
        "clean": write_reviews(root / "clean.parquet", clean),
        "drifted": write_reviews(root / "drifted.parquet", [gibberish(t, rng) for t in clean]),
    }


def score(*args):
    return runner.invoke(app, ["score", *map(str, args)], obj={"beam_args": []})


def read_summary(out):
    return json.loads((out / SUMMARY_FILE).read_text())


@pytest.mark.slow
def test_a_clean_run_reports_no_drift(profiled, tmp_path):
    out = tmp_path / "out"
    result = score(profiled["clean"], "--output", out, "--model", profiled["bundle"], "--on-drift", "fail")
    assert result.exit_code == 0, result.output
    drift = read_summary(out)["drift"]
    assert drift["status"] == "ok" and not drift["detected"], drift
    assert "drift detected" not in result.output
    assert f"report: {(out / REPORT_FILE).resolve().as_uri()}" in result.output


@pytest.mark.slow
def test_drift_warns_by_default_and_scores_every_record(profiled, tmp_path):
    out = tmp_path / "out"
    result = score(profiled["drifted"], "--output", out, "--model", profiled["bundle"])
    assert result.exit_code == 0, result.output
    summary = read_summary(out)
    assert summary["drift"]["detected"]
    assert {"vocabulary", "unknown_word_rate"} <= drifted_checks(Drift.model_validate(summary["drift"]))
    assert summary["records_scored"] == 600 and summary["accounting_ok"]
    warnings = [line for line in result.stderr.splitlines() if "drift detected" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning:")
    assert (out / REPORT_FILE).is_file()


@pytest.mark.slow
def test_on_drift_fail_exits_1_after_writing_everything(profiled, tmp_path):
    out = tmp_path / "out"
    result = score(profiled["drifted"], "--output", out, "--model", profiled["bundle"], "--on-drift", "fail")
    assert result.exit_code == 1, result.output
    assert "error: drift detected" in result.stderr
    summary = read_summary(out)
    assert summary["records_scored"] == 600 and summary["drift"]["detected"]
    scored = pq.read_table(sorted(out.glob("scored-*.parquet"))).num_rows
    assert scored == 600 and (out / REPORT_FILE).is_file()


@pytest.mark.slow
def test_small_input_is_insufficient_data_even_with_fail(profiled, tmp_path):
    out = tmp_path / "out"
    few = write_reviews(tmp_path / "few.parquet", ["qwzx vbnm plok"] * 12)  # drifted, but only 12
    result = score(few, "--output", out, "--model", profiled["bundle"], "--on-drift", "fail")
    assert result.exit_code == 0, result.output
    assert read_summary(out)["drift"]["status"] == "insufficient_data"
    assert "not judged: 12 reviews" in result.output


@pytest.mark.slow
def test_failures_are_counted_by_stage(profiled, tmp_path):
    out = tmp_path / "out"
    texts = ["a wonderful film", None, "...", "dreadful and boring"]
    result = score(write_reviews(tmp_path / "bad.parquet", texts), "--output", out, "--model", profiled["bundle"])
    assert result.exit_code == 0, result.output
    summary = read_summary(out)
    assert summary["failed_by_stage"] == {"preprocess": 1, "read": 1}
    assert summary["records_failed"] == 2 and summary["label_counts"].keys() == {"negative", "positive"}


# --- the report, in a real browser -----------------------------------------------------------------


@pytest.fixture
def browser(tmp_path):
    """Headless Debian Chromium driven by its chromedriver (.ci/run installs both). Skipped where they are
    missing, unless REVIEWSCORE_BROWSER_TESTS=required (CI), where missing is a failure."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        if os.environ.get("REVIEWSCORE_BROWSER_TESTS") == "required":
            pytest.fail("chromium and chromedriver are required (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium/chromedriver here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1800",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()


@pytest.mark.slow
def test_the_report_renders_with_its_plots_in_a_browser(profiled, browser, tmp_path):
    out = tmp_path / "out"
    result = score(profiled["drifted"], "--output", out, "--model", profiled["bundle"])
    assert result.exit_code == 0, result.output
    page = (out / REPORT_FILE).read_text()
    assert "<script" not in page and "<link" not in page and not re.search(r"(src|href)=\"?https?:", page)

    browser.get((out / REPORT_FILE).resolve().as_uri())
    assert read_summary(out)["model_version"] in browser.title
    assert browser.find_element("id", "verdict").text == "drift detected"
    charts = browser.execute_script(
        "return [...document.querySelectorAll('svg.chart')].map(svg => ({"
        "  title: svg.getAttribute('aria-label'), width: svg.getBoundingClientRect().width,"
        "  painted: [...svg.querySelectorAll('rect.bar')].filter(r => r.getBoundingClientRect().height > 0).length"
        "}))"
    )
    assert [c["title"] for c in charts] == ["Predicted labels", "Scores", "Review length", "Unknown words per review"]
    assert all(c["width"] > 400 and c["painted"] >= 2 for c in charts), charts
    verdicts = browser.execute_script(
        "return [...document.querySelectorAll('table tr')].map(tr => tr.innerText).filter(t => t.includes('drifted'))"
    )
    assert any(row.startswith("vocabulary") for row in verdicts), verdicts
    lineage = browser.find_element("id", "lineage").text
    assert "drifted.parquet" in lineage and "manifest sha256" in lineage and "DirectRunner" in lineage
    rate = browser.execute_script("return [...document.querySelectorAll('#drift tr')].map(tr => tr.innerText)")
    assert any("Cohen's h" in row and "|h| ≥ 0.20" in row for row in rate), rate  # both of its conditions
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # nothing fetched

    from PIL import Image

    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    for colour in ((0x25, 0x63, 0xEB), (0xF5, 0x9E, 0x0B)):  # this run's bars, the training profile's bars
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 500, f"no bars painted in {colour}"


@pytest.mark.slow
def test_the_top_words_of_every_class_line_up_in_a_browser(browser, tmp_path):
    """The "Why these labels" lists are one table: every row's cells start at the same x in every class,
    and each class's word, mean weight and reviews columns are as wide as every other's, however long its words."""
    from tests.test_summary import a_summary

    summary = a_summary()
    words = {
        "negative": ClassWords(
            reviews=40,
            min_reviews=3,
            words=(
                WordWeight(word="dull", mean_weight=2.5, reviews=12),
                WordWeight(word="boring", mean_weight=1.0, reviews=3),
            ),
        ),
        "positive": ClassWords(
            reviews=2_000,
            min_reviews=20,
            words=(
                WordWeight(word="superb", mean_weight=3.25, reviews=1_200),
                WordWeight(word="a remarkably long phrase of a word", mean_weight=1.5, reviews=20),
                WordWeight(word="fine", mean_weight=0.5, reviews=21),
            ),
        ),
    }
    explanations = summary.explanations.model_copy(update={"words_by_class": words})
    summary = summary.model_copy(update={"explanations": explanations})
    page = tmp_path / "page.html"
    page.write_text(render_report(summary, Statistics.empty(2), None, {"name": "m"}))
    browser.get(page.resolve().as_uri())
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#top-words tr')].slice(2).map(tr => [...tr.cells].map(td => {"
        "  const box = td.getBoundingClientRect(); return [box.left, box.top, box.width]; }))"
    )
    assert len(rows) == 3 and all(len(row) == 6 for row in rows)
    assert len({tuple(round(left) for left, _, _ in row) for row in rows}) == 1  # columns line up down the table
    assert all(len({round(top) for _, top, _ in row}) == 1 for row in rows)  # and across it
    widths = [round(width) for _, _, width in rows[0]]
    assert widths[:3] == widths[3:], widths  # every class's columns alike


@pytest.mark.slow
def test_the_champion_and_challenger_section_renders_in_a_browser(browser, tmp_path):
    """A report with a shadow model's comparison: no console error, the section shown with its tables, its
    diagonal shaded and its chart painted."""
    from tests.test_report_shadow import a_shadow
    from tests.test_summary import a_summary

    page = tmp_path / "page.html"
    page.write_text(render_report(a_summary(shadow=a_shadow()), Statistics.empty(2), None, {"name": "m"}))
    browser.get(page.resolve().as_uri())
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    section = browser.find_element("id", "shadow")
    assert section.is_displayed() and section.find_element("tag name", "h2").text == "Champion and challenger"
    assert "88.4% agreement" in browser.find_element("id", "agreement").text
    shaded = browser.execute_script(
        "return [...document.querySelectorAll('#shadow-labels td.agree')].map(td => "
        "  [td.innerText, getComputedStyle(td).backgroundColor, td.getBoundingClientRect().height])"
    )
    assert [text for text, _, _ in shaded] == ["40", "44"]
    assert all(colour != "rgba(0, 0, 0, 0)" and height > 0 for _, colour, height in shaded), shaded
    chart = browser.execute_script(
        "const svg = document.querySelector('#shadow svg.chart'); return {title: svg.getAttribute('aria-label'),"
        "  width: svg.getBoundingClientRect().width,"
        "  painted: [...svg.querySelectorAll('rect.bar')].filter(r => r.getBoundingClientRect().height > 0).length}"
    )
    assert chart["title"] == "Score differences" and chart["width"] > 400 and chart["painted"] == 4, chart
    rows = browser.find_elements("css selector", "#disagreements tr")
    assert len(rows) == 3 and "Not <b>bad</b> & not good either" in rows[1].text  # the snippet as text, escaped
    assert all(row.is_displayed() for row in rows)


@pytest.mark.slow
def test_a_real_shadowed_runs_report_shows_the_comparison_in_a_browser(tiny_bundle, challenger, browser, tmp_path):  # noqa: F811
    """A real `score --shadow-model` (two tiny bundles, one trained on flipped labels, on DirectRunner): its
    report shows the summary's agreement, label table, chart and disagreements, with the champion's words (the
    sample explains every review here)."""
    texts = [text for text, _ in make_reviews(40, seed=11)] + ["The and it was."]
    ids = [f"r{i:03d}" for i in range(len(texts) - 1)] + [ONLY_STOPWORDS]
    reviews = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"review_id": ids, "text": texts}), reviews)
    out = tmp_path / "out"
    result = score(reviews, "--output", out, "--model", tiny_bundle.path, "--shadow-model", challenger.path,
                   "--explain-sample", 1000)  # fmt: skip
    assert result.exit_code == 0, result.output
    shadow = read_summary(out)["shadow"]
    assert shadow["records_failed"] == 1 and shadow["disagreements"]  # the flipped challenger disagrees

    browser.get((out / REPORT_FILE).resolve().as_uri())
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    assert browser.find_element("id", "shadow").is_displayed()
    agreement = browser.find_element("id", "agreement").text
    assert f"{shadow['agreement']:.1%} agreement" in agreement and "could not score 1 review" in agreement
    diagonal = browser.execute_script(
        "return [...document.querySelectorAll('#shadow-labels td.agree')].map(td => td.innerText)"
    )
    assert diagonal == [f"{shadow['labels'][name][name]:,}" for name in shadow["labels"]]
    painted = browser.execute_script(
        "return [...document.querySelectorAll('#shadow svg.chart rect.bar')]"
        "  .filter(r => r.getBoundingClientRect().height > 0).length"
    )
    assert painted == sum(1 for count in shadow["score_differences"] if count)
    rows = browser.find_elements("css selector", "#disagreements tr")[1:]
    assert len(rows) == len(shadow["disagreements"]) and all(row.is_displayed() for row in rows)
    first = shadow["disagreements"][0]
    assert first["review_id"] in rows[0].text and f"{first['shadow_score']:.4f}" in rows[0].text
    assert first["champion_words"][0]["word"] in rows[0].text
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # nothing fetched
