"""The run report's "Champion and challenger" section, rendered from a run summary with a shadow model's
comparison built here, and the report without one unchanged."""

from __future__ import annotations

import re

from pipeline.job.report import SHADOW_STYLE, render_report
from pipeline.model.monitoring.statistics import Statistics
from schemas.summary import (
    SCORE_DIFFERENCE_BINS,
    Disagreement,
    Drift,
    DriftCheck,
    ModelLineage,
    RunSummary,
    ShadowSummary,
    WordWeight,
)
from tests.test_summary import a_summary

LABELS = {"negative": {"negative": 40, "positive": 6}, "positive": {"negative": 5, "positive": 44}}
"""95 reviews compared: 84 labelled alike, 11 not."""


def a_shadow(**changes) -> ShadowSummary:
    """A challenger's comparison as the job's summary holds it: 95 reviews compared, 3 it could not score."""
    differences = [0] * SCORE_DIFFERENCE_BINS
    differences[19], differences[20], differences[3], differences[37] = 50, 40, 2, 3  # 95 in all
    check = DriftCheck(name="scores", what="score column", statistic="population stability index", value=0.41,
                       threshold=0.25, drifted=True, verdict="drifted")  # fmt: skip
    shadow = ShadowSummary(
        model=ModelLineage(location="models/challenger", name="tiny", version="1.0.0", manifest_sha256="cd" * 32),
        reviews_compared=95, records_failed=3, agreement=round(84 / 95, 6), labels=LABELS,
        mean_abs_score_difference=0.071234, max_abs_score_difference=0.812345, score_differences=tuple(differences),
        score_correlation=0.931234,
        champion_label_shares={"negative": round(46 / 95, 6), "positive": round(49 / 95, 6)},
        shadow_label_shares={"negative": round(45 / 95, 6), "positive": round(50 / 95, 6)},
        drift=Drift(detected=True, status="drifted", checks=(check,), reviews=95, reference_reviews=100, min_reviews=5),
        disagreements=(
            Disagreement(review_id="r/7.txt", snippet="Not <b>bad</b> & not good either", champion_label="positive",
                         champion_score=0.9, shadow_label="negative", shadow_score=0.087655,
                         champion_words=(WordWeight(word="bad", mean_weight=1.5, reviews=1),),
                         shadow_words=(WordWeight(word="not", mean_weight=0.25, reviews=1),
                                       WordWeight(word="either", mean_weight=0.125, reviews=1))),
            Disagreement(review_id="r/9.txt", snippet="A film.", champion_label="negative", champion_score=0.45,
                         shadow_label="positive", shadow_score=0.55),
        ),
    )  # fmt: skip
    return shadow.model_copy(update=changes)


def page_of(summary: RunSummary) -> str:
    return render_report(summary, Statistics.empty(2), None, {"name": "tiny"})


def section(page: str) -> str:
    return page.split('<section id="shadow">')[1].split("</section>")[0]


def cells(html: str, table_id: str) -> list[list[str]]:
    """Each row's header and data cells' text, of the table with that id."""
    table = html.split(f'<table id="{table_id}">')[1].split("</table>")[0]
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in table.split("<tr>")[1:]]


def test_the_section_names_both_models_and_says_how_often_they_agree():
    shown = section(page_of(a_summary(shadow=a_shadow())))
    assert "<h2>Champion and challenger</h2>" in shown
    models = cells(shown, "shadow-models")
    assert models[1][:2] == ["champion (this run's labels)", "tiny 2.0.0"]  # the run's model, from its lineage
    assert models[2][:2] == ["challenger (shadow model)", "tiny 1.0.0"]
    assert "models/challenger" in models[2][2] and "cd" * 6 in models[2][2]
    agreement = shown.split('id="agreement">')[1].split("</p>")[0]
    assert "88.4% agreement" in agreement  # 84 / 95
    assert "84 of the 95 reviews" in agreement and "different labels to 11 (11.6%)" in agreement
    assert "could not score 3 reviews" in agreement
    assert "at most" not in agreement  # the job set no limit


def test_the_agreement_names_the_limit_the_job_set():
    summary = a_summary(shadow=a_shadow())
    summary = summary.model_copy(update={"verdict": summary.verdict.model_copy(update={"max_disagreement": 0.05})})
    assert "disagree on at most 5.0% of the reviews" in section(page_of(summary))


def test_the_label_table_counts_reviews_by_both_labels_and_marks_the_diagonal():
    shown = section(page_of(a_summary(shadow=a_shadow())))
    rows = cells(shown, "shadow-labels")
    assert rows[0][1:] == ["negative", "positive", "all"]
    assert rows[1] == ["negative", "40", "6", "46"] and rows[2] == ["positive", "5", "44", "49"]
    assert rows[3] == ["all", "45", "50", ""]  # the challenger's labels
    table = shown.split('id="shadow-labels"')[1].split("</table>")[0]
    agree = re.findall(r'<td class="n agree"[^>]*>(\d+)</td>', table)
    assert agree == ["40", "44"]  # the diagonal, and only it
    assert cells(shown, "shadow-shares")[1:] == [["negative", "48.4%", "47.4%"], ["positive", "51.6%", "52.6%"]]


def test_the_scores_compare_in_figures_and_a_chart_with_round_ticks():
    shown = section(page_of(a_summary(shadow=a_shadow())))
    figures = dict(row for row in cells(shown, "shadow-scores"))
    assert figures["mean |score difference|"] == "0.0712" and figures["largest |score difference|"] == "0.8123"
    assert figures["correlation of the scores (Pearson)"] == "0.9312"
    chart = shown.split('<svg class="chart"')[1].split("</svg>")[0]
    assert 'aria-label="Score differences"' in chart
    assert chart.count('class="bar"') == SCORE_DIFFERENCE_BINS
    ticks = re.findall(r'text-anchor="middle" class="tick">([^<]*)<', chart)
    assert ticks == ["-1.00", "-0.75", "-0.50", "-0.25", "0.00", "0.25", "0.50", "0.75"]
    assert "reviews compared, 0.00 to 0.05: 42.1%</title>" in chart  # 40 of 95, the bin named by its range
    assert "-0.00" not in chart


def test_the_challengers_own_drift_is_one_line():
    shown = section(page_of(a_summary(shadow=a_shadow())))
    line = shown.split('id="shadow-drift">')[1].split("</p>")[0]
    assert "drift detected" in line and "(scores)" in line and "bad" in line
    unjudged = a_shadow(drift=Drift(detected=False, status="insufficient_data", reviews=95, min_reviews=500))
    line = section(page_of(a_summary(shadow=unjudged))).split('id="shadow-drift">')[1].split("</p>")[0]
    assert "too few reviews to judge drift" in line and "95 reviews" in line and "500" in line


def test_the_largest_disagreements_show_both_labels_scores_and_words():
    rows = cells(section(page_of(a_summary(shadow=a_shadow()))), "disagreements")
    assert rows[0][:6] == ["review", "champion", "score", "challenger", "score", "difference"]
    first = rows[1]
    assert first[0].startswith("Not &lt;b&gt;bad&lt;/b&gt; &amp; not good either") and "r/7.txt" in first[0]
    assert first[1:6] == ["positive", "0.9000", "negative", "0.0877", "-0.8123"]
    assert "bad +1.500" in first[6] and "not +0.250, either +0.125" in first[7]
    assert rows[2][1:6] == ["negative", "0.4500", "positive", "0.5500", "+0.1000"] and rows[2][6:] == ["", ""]
    unexplained = a_shadow(disagreements=a_shadow().disagreements[1:])
    rows = cells(section(page_of(a_summary(shadow=unexplained))), "disagreements")
    assert len(rows[0]) == 6 and "words" not in "".join(rows[0])  # no word columns when none was explained


def test_a_challenger_that_scored_nothing_says_so_and_draws_nothing():
    nothing = a_shadow(
        reviews_compared=0, records_failed=8, agreement=None, labels={}, mean_abs_score_difference=None,
        max_abs_score_difference=None, score_differences=(), score_correlation=None, champion_label_shares={},
        shadow_label_shares={}, disagreements=(),
    )  # fmt: skip
    shown = section(page_of(a_summary(shadow=nothing)))
    assert "No review was compared" in shown and "8 reviews" in shown
    assert "<svg" not in shown and 'id="shadow-labels"' not in shown and 'id="disagreements"' not in shown


def test_without_a_shadow_the_report_is_the_report_without_the_section():
    """The section and its styles are all a shadow adds: taken out, the page is the one without a shadow."""
    plain, shadowed = page_of(a_summary()), page_of(a_summary(shadow=a_shadow()))
    assert "Champion and challenger" not in plain and 'id="shadow' not in plain and SHADOW_STYLE not in plain
    start, end = shadowed.index('<section id="shadow">'), shadowed.index("</section>") + len("</section>")
    stripped = (shadowed[:start] + shadowed[end:]).replace(SHADOW_STYLE, "", 1)
    written = re.compile(r"written \d{4}-\d\d-\d\d \d\d:\d\d UTC")  # the minute each page was made
    assert written.sub("", stripped) == written.sub("", plain)
