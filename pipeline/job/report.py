"""_report.html: one self-contained page per scoring run, for people to look at.

The run's lineage (inputs, model and its checksum, options, versions, runner, times), counts (read,
scored, failed by stage), the drift verdict and every check with the conditions that decide it (in
words too, and a run too small to judge said plainly), the words that drive each label,
throughput and engine, the run's label, score, length and unknown-word distributions against the
training profile, a challenger model's comparison with the run's where one shadow-scored the run
(--shadow-model), and the model's manifest. Plots are inline SVG (`charts.py`), styles inline, no script
and no network: the page opens from a bucket, an e-mail attachment or a laptop offline.

One format per kind of number: counts with thousands separators, statistics to 4 decimals,
thresholds to 2, shares as percentages to 1 decimal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

import numpy as np

from pipeline.model.monitoring.charts import CHART_STYLE, HISTOGRAM_BINS, bar_chart
from pipeline.model.monitoring.drift import (
    COHENS_H_THRESHOLD,
    JS_THRESHOLD,
    PSI_THRESHOLD,
    Z_THRESHOLD,
    conditions,
    proportions,
)
from pipeline.model.monitoring.statistics import OOV_SHARE_BINS, SCORE_BINS, Statistics, padded
from pipeline.model.monitoring.training_profile import TrainingProfile
from schemas.summary import (
    DISAGREEMENTS_SHOWN,
    DRIFTED,
    INSUFFICIENT,
    NO_PROFILE,
    OK,
    SCORE_DIFFERENCE_BINS,
    ClassWords,
    Disagreement,
    Drift,
    DriftCheck,
    EngineUse,
    ExplanationsSummary,
    Lineage,
    ModelLineage,
    RunSummary,
    ShadowSummary,
    Verdict,
    WordWeight,
)

CHECKSUM_SHOWN = 12
"""Hex digits of the manifest's sha256 the header shows (the whole is in _SUMMARY.json and on hover)."""
RUN, TRAINING = "this run", "training profile"
VERDICTS = {
    DRIFTED: ("drift detected", "bad"),
    OK: ("no drift", "good"),
    INSUFFICIENT: ("too few reviews to judge drift", "neutral"),
    NO_PROFILE: ("no training profile in the bundle", "neutral"),
}
CHECK_VERDICTS = {OK: "no drift", DRIFTED: "drifted", INSUFFICIENT: "not judged"}
"""A check's verdict in the drift table, by its value in _SUMMARY.json."""

STYLE = (
    """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#111827;
padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#4b5563}.badge{display:inline-block;padding:4px 10px;border-radius:999px;font-weight:600;margin:8px 0}
.good{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}.neutral{background:#f3f4f6;color:#374151}
table{border-collapse:collapse;margin:6px 0}td,th{padding:4px 10px;border-bottom:1px solid #f3f4f6;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}th{background:#f9fafb}
td,th{vertical-align:top}#lineage td:first-child{color:#4b5563;white-space:nowrap}
#lineage code{font-size:12px}.options{display:flex;flex-wrap:wrap;gap:2px 14px}
table.top-words{table-layout:fixed}table.top-words col.word{width:150px}table.top-words col.count{width:80px}
.notice{background:#f3f4f6;padding:6px 10px;border-radius:6px}td.unjudged{color:#6b7280}
table.top-words th.class,table.top-words td.word{box-shadow:inset 2px 0 #e5e7eb}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px}
pre{background:#f9fafb;padding:10px;overflow:auto;font-size:12px}
"""
    + CHART_STYLE
)
SHADOW_STYLE = (
    "h3{font-size:15px;margin:18px 0 6px}.side-by-side{display:flex;flex-wrap:wrap;gap:8px 32px;align-items:start}"
    "#shadow-labels td.agree{background:#dcfce7;font-weight:600}#disagreements td.snippet{max-width:420px}"
    "#disagreements .words{font-size:12px;color:#4b5563}"
)
"""Styles only the champion and challenger section uses: in the page only when it has that section."""
CHAMPION, CHALLENGER = "champion", "challenger"


def render_report(
    summary: RunSummary, run: Statistics, profile: TrainingProfile | None, manifest: dict[str, Any]
) -> str:
    """The page for a run: its summary, its Statistics against the training profile's, its manifest."""
    drift = summary.drift
    verdict, tone = VERDICTS.get(drift.status, VERDICTS[NO_PROFILE])
    reference = profile.statistics if profile else None
    class_names = tuple(summary.label_counts)  # the manifest's classes, in its order
    title = f"reviewscore run: {manifest.get('name', 'model')} {summary.model_version}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="meta">written {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; '
        f"{summary.records_scored:,} reviews scored in {summary.wall_seconds:.1f} s</div>",
        f'<div class="badge {tone}" id="verdict">{escape(verdict)}</div>',
        *_run_verdict(summary.verdict),
        *_lineage(summary.lineage),
        "<h2>Records</h2>",
        _table(
            [("read", summary.records_read), ("scored", summary.records_scored)]
            + [("failed", summary.records_failed)]
            + [(f"failed at {stage}", n) for stage, n in summary.failed_by_stage.items()]
            + [("read = scored + failed", "yes" if summary.accounting_ok else "NO")]
        ),
        "<h2>Throughput</h2>",
        _table(
            [
                ("wall time", f"{summary.wall_seconds:.1f} s"),
                ("reviews per second", f"{summary.reviews_per_second or 0:,.0f}"),
                *_engine_rows(summary.engines),
            ]
        ),
        "<h2>Drift checks</h2>",
        _drift_table(drift, profile),
        "<h2>This run against training</h2>",
        f'<div class="charts">{"".join(_charts(run, reference, class_names))}</div>',
        *_explanations(summary.explanations),
        *_shadow(summary, manifest),
        "<h2>Model</h2>",
        f"<details><summary>manifest.json of {escape(str(manifest.get('name', '')))}</summary>"
        f"<pre>{escape(json.dumps(manifest, indent=2, ensure_ascii=False))}</pre></details>",
    ]
    style = STYLE + (SHADOW_STYLE if summary.shadow else "")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def _run_verdict(verdict: Verdict | None) -> list[str]:
    """Whether the run passed its job's policy (error-rate limit, --on-drift), and what failed it."""
    if verdict is None:
        return []
    if verdict.passed:
        return ['<div class="badge good" id="run-verdict">run passed</div>']
    problems = "".join(f"<li>{escape(problem)}</li>" for problem in verdict.problems)
    return [f'<div class="badge bad" id="run-verdict">run failed</div><ul>{problems}</ul>']


def _lineage(lineage: Lineage | None) -> list[str]:
    """The run's header: what it read, with which model, options and versions, where and when it ran."""
    if lineage is None:
        return []
    inputs, model = lineage.inputs, lineage.model
    given = ", ".join(f"<code>{escape(path)}</code>" for path in inputs.given)
    matched = (
        f"{_counted(inputs.text_files, 'review file')}, {_counted(len(inputs.parquet_files), 'Parquet file')}; "
        f"{_counted(inputs.records, 'record')} at launch"
    )
    checksum = escape(model.manifest_sha256)
    options = "".join(
        f"<code>{escape(name)}={escape(json.dumps(value, ensure_ascii=False))}</code>"
        for name, value in lineage.options.items()
    )
    rows = [
        ("inputs", f'{given}<div class="meta">{matched}</div>'),
        (
            "model",
            f"{escape(model.name)} {escape(model.version)} from <code>{escape(model.location)}</code>; "
            f'manifest sha256 <code title="{checksum}">{checksum[:CHECKSUM_SHOWN]}</code>',
        ),
        ("options", f'<div class="options">{options}</div>'),
        ("versions", ", ".join(f"{escape(name)} {escape(version)}" for name, version in lineage.versions.items())),
        ("runner", escape(lineage.runner) + (f" (job {escape(lineage.job_id)})" if lineage.job_id else "")),
        ("started", escape(lineage.started)),
        ("finished", escape(lineage.finished or "")),
    ]
    cells = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in rows)
    return ["<h2>Run</h2>", f'<table id="lineage">{cells}</table>']


def _counted(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def _engine_rows(engines: dict[str, EngineUse]) -> list[tuple[str, str]]:
    """One row per engine that scored reviews, with why it was chosen where the model loaded."""
    return [
        (f"engine {name}", f"{use.reviews:,} reviews" + (f" ({'; '.join(use.why)})" if use.why else ""))
        for name, use in engines.items()
    ]


def _charts(run: Statistics, reference: Statistics | None, class_names: tuple[str, ...]) -> list[str]:
    def series(pick):
        shown = {RUN: proportions(pick(run))}
        if reference is not None:
            shown[TRAINING] = proportions(pick(reference))
        return shown

    longest = max(len(run.lengths), len(reference.lengths) if reference is not None else 0, 1)
    width = -(-longest // HISTOGRAM_BINS)
    return [
        bar_chart("Predicted labels", list(class_names), series(lambda s: s.labels), "predicted class"),
        bar_chart(
            "Scores",
            [f"{i / HISTOGRAM_BINS:.2f}" for i in range(HISTOGRAM_BINS)],
            series(lambda s: _regroup(s.scores, SCORE_BINS // HISTOGRAM_BINS)),
            "score (bins of 0.05)",
        ),
        bar_chart(
            "Review length",
            [f"{i * width}" for i in range(HISTOGRAM_BINS)],
            series(lambda s: _regroup(padded(s.lengths, width * HISTOGRAM_BINS), width)),
            f"tokens the model saw (bins of {width})",
        ),
        bar_chart(
            "Unknown words per review",
            [f"{i / OOV_SHARE_BINS:.0%}" for i in range(OOV_SHARE_BINS)],
            series(lambda s: s.oov_shares),
            "share of a review's tokens not in the vocabulary",
        ),
    ]


def _explanations(explanations: ExplanationsSummary | None) -> list[str]:
    """Per predicted class, the words that pushed its reviews towards it most on average (see ranked_words
    in pipeline/model/explain/explainer.py)."""
    if explanations is None:
        return []
    error = explanations.completeness_error
    completeness = (
        f"completeness error mean {error.mean:.1%}, max {error.max:.1%}"
        if error.mean is not None and error.max is not None
        else "occlusion has no completeness error"
    )
    return [
        "<h2>Why these labels</h2>",
        f'<p class="meta">{_reviews(explanations.reviews)} explained{_which(explanations)}: '
        f"{escape(explanations.method)} on {escape(explanations.engine)}; {completeness}.</p>",
        "<p>Per predicted class, the words that pushed its reviews towards it most. A word's weight in a review "
        "is how much it raised the class's logit there; <b>mean weight</b> is its average over the explained "
        "reviews of that class that contain it, and <b>reviews</b> counts those. Only words in enough of them "
        "to be more than chance are ranked (the least is under each class).</p>",
        _top_words_table(explanations.words_by_class),
    ]


def _which(explanations: ExplanationsSummary) -> str:
    chosen = explanations.reviews_explained
    return f" ({escape(chosen)})" if chosen and chosen != "all" else ""


def _top_words_table(by_class: dict[str, ClassWords]) -> str:
    """One table, word, mean weight and reviews columns per class, fixed widths: every class's list lines up."""
    columns = '<col class="word"><col class="count"><col class="count">' * len(by_class)
    header = "".join(
        f'<th class="class" colspan="3">{escape(name)}<div class="meta">{_reviews(words.reviews)} explained; '
        f"words in at least {words.min_reviews:,}</div></th>"
        for name, words in by_class.items()
    )
    heads = '<th class="class">word</th><th>mean weight</th><th>reviews</th>' * len(by_class)
    depth = max((len(words.words) for words in by_class.values()), default=0)
    rows = []
    for i in range(depth):
        cells = []
        for words in by_class.values():
            if i < len(words.words):
                word = words.words[i]
                cells.append(
                    f'<td class="word">{escape(word.word)}</td><td class="n">{word.mean_weight:+.3f}</td>'
                    f'<td class="n">{word.reviews:,}</td>'
                )
            else:
                cells.append('<td class="word"></td><td class="n"></td><td class="n"></td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = f"<colgroup>{columns}</colgroup><tr>{header}</tr><tr>{heads}</tr>{''.join(rows)}"
    return f'<table id="top-words" class="top-words">{body}</table>'


def _shadow(summary: RunSummary, manifest: dict[str, Any]) -> list[str]:
    """Champion and challenger: a second bundle scored the same reviews beside the run's model (--shadow-model),
    and how far it would change the run's labels and scores, on the data the job actually scores."""
    shadow = summary.shadow
    if shadow is None:
        return []
    champion = summary.lineage.model if summary.lineage else None
    models = [
        (f"{CHAMPION} (this run's labels)", champion.name if champion else str(manifest.get("name", "model")),
         summary.model_version, champion),
        (f"{CHALLENGER} (shadow model)", shadow.model.name, shadow.model.version, shadow.model),
    ]  # fmt: skip
    rows = "".join(
        f"<tr><td>{role}</td><td>{escape(name)} {escape(version)}</td><td>{_model_source(lineage)}</td></tr>"
        for role, name, version, lineage in models
    )
    parts = [
        "<h2>Champion and challenger</h2>",
        "<p>The challenger (a shadow model) scored the same reviews as the champion, the model whose labels this "
        "run wrote; its labels and scores are beside them in the shadow columns. Where the two differ is what "
        "switching to the challenger would change on these reviews.</p>",
        f'<table id="shadow-models"><tr><th>model</th><th>name and version</th><th>read from</th></tr>{rows}</table>',
        _agreement(shadow, summary.verdict),
    ]
    if shadow.reviews_compared:
        parts += [
            "<h3>Labels</h3>",
            f'<div class="side-by-side">{_label_table(shadow.labels)}{_label_shares(shadow)}</div>',
            "<h3>Scores</h3>",
            f'<div class="side-by-side">{_score_figures(shadow)}{_score_difference_chart(shadow)}</div>',
        ]
    parts += [_shadow_drift(shadow.drift), *_disagreements(shadow.disagreements)]
    return [f'<section id="shadow">{"".join(parts)}</section>']


def _model_source(model: ModelLineage | None) -> str:
    """Where a bundle was read from and its manifest's checksum (short, the whole on hover)."""
    if model is None:
        return ""
    checksum = escape(model.manifest_sha256)
    return (
        f'<code>{escape(model.location)}</code>; manifest sha256 <code title="{checksum}">'
        f"{checksum[:CHECKSUM_SHOWN]}</code>"
    )


def _agreement(shadow: ShadowSummary, verdict: Verdict | None) -> str:
    """The agreement in words and figures: how many reviews both models labelled alike, of how many, and
    the limit the job set on the rest where it set one."""
    if not shadow.reviews_compared or shadow.agreement is None:
        return (
            f'<p class="notice" id="agreement">No review was compared: the challenger could not score any of '
            f"the {_reviews(shadow.records_failed)} this run scored.</p>"
        )
    alike = sum(shadow.labels.get(name, {}).get(name, 0) for name in shadow.labels)
    differ = shadow.reviews_compared - alike
    limit = (
        f" The job allows them to disagree on at most {verdict.max_disagreement:.1%} of the reviews."
        if verdict is not None and verdict.max_disagreement is not None
        else ""
    )
    failed = (
        f" The challenger could not score {_reviews(shadow.records_failed)}: they are not compared."
        if shadow.records_failed
        else ""
    )
    return (
        f'<p id="agreement"><b>{shadow.agreement:.1%} agreement</b>: both models gave the same label to '
        f"{alike:,} of the {_reviews(shadow.reviews_compared)} compared, and different labels to {differ:,} "
        f"({1 - shadow.agreement:.1%}).{limit}{failed}</p>"
    )


def _label_table(labels: dict[str, dict[str, int]]) -> str:
    """Reviews by the champion's label (rows) and the challenger's (columns); the diagonal, where they agree,
    shaded."""
    columns = list(dict.fromkeys(name for row in labels.values() for name in row))
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    rows = []
    for champion, row in labels.items():
        cells = "".join(
            f'<td class="n agree" title="both models: {escape(name)}">{row.get(name, 0):,}</td>'
            if name == champion
            else f'<td class="n" title="{CHAMPION}: {escape(champion)}, {CHALLENGER}: {escape(name)}">'
            f"{row.get(name, 0):,}</td>"
            for name in columns
        )
        rows.append(f'<tr><th>{escape(champion)}</th>{cells}<td class="n">{sum(row.values()):,}</td></tr>')
    totals = "".join(f'<td class="n">{sum(row.get(name, 0) for row in labels.values()):,}</td>' for name in columns)
    return (
        '<div><table id="shadow-labels">'
        f"<tr><th>{CHAMPION} ↓ {CHALLENGER} →</th>{head}<th>all</th></tr>{''.join(rows)}"
        f"<tr><th>all</th>{totals}<td></td></tr></table>"
        '<p class="meta">Reviews by the label each model gave; shaded: both gave the same.</p></div>'
    )


def _label_shares(shadow: ShadowSummary) -> str:
    """Each class's share of the compared reviews by either model, side by side."""
    names = list(dict.fromkeys([*shadow.champion_label_shares, *shadow.shadow_label_shares]))
    rows = "".join(
        f'<tr><td>{escape(name)}</td><td class="n">{shadow.champion_label_shares.get(name, 0):.1%}</td>'
        f'<td class="n">{shadow.shadow_label_shares.get(name, 0):.1%}</td></tr>'
        for name in names
    )
    return f'<table id="shadow-shares"><tr><th>label</th><th>{CHAMPION}</th><th>{CHALLENGER}</th></tr>{rows}</table>'


def _score_figures(shadow: ShadowSummary) -> str:
    """How far the scores move: the mean and largest difference, and how closely they follow each other."""

    def stat(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    rows = [
        ("mean |score difference|", stat(shadow.mean_abs_score_difference)),
        ("largest |score difference|", stat(shadow.max_abs_score_difference)),
        ("correlation of the scores (Pearson)", stat(shadow.score_correlation)),
    ]
    return _table(rows).replace("<table>", '<table id="shadow-scores">', 1)


def _score_difference_chart(shadow: ShadowSummary) -> str:
    """The histogram of the challenger's score less the champion's, from -1 to 1: a spike at 0 is two models
    that score alike; a shift to one side, one that scores higher or lower throughout."""
    if not shadow.score_differences:
        return ""
    width = 2 / SCORE_DIFFERENCE_BINS
    starts = [round(-1 + i * width, 2) + 0.0 for i in range(SCORE_DIFFERENCE_BINS)]  # + 0.0: no "-0.00"
    return bar_chart(
        "Score differences",
        [f"{start:.2f}" for start in starts],
        {"reviews compared": proportions(np.asarray(shadow.score_differences))},
        f"{CHALLENGER}'s score − {CHAMPION}'s (bins of {width:.2f})",
        max_category_labels=8,
        hover=[f"{start:.2f} to {start + width + 0.0:.2f}" for start in starts],
    )


def _shadow_drift(drift: Drift) -> str:
    """The challenger's own drift checks, against its own training profile, in one line as the page's badge
    words the champion's."""
    verdict, tone = VERDICTS.get(drift.status, VERDICTS[NO_PROFILE])
    if drift.status == DRIFTED:
        detail = f" ({escape(', '.join(drift.drifted_checks()))})"
    elif drift.status == INSUFFICIENT:
        detail = f" ({_reviews(drift.reviews or 0)}; drift is judged from {drift.min_reviews or 0:,} on)"
    else:
        detail = ""
    return (
        f'<p id="shadow-drift">The {CHALLENGER} against its own training profile: '
        f'<span class="badge {tone}">{escape(verdict)}</span>{detail}</p>'
    )


def _disagreements(disagreements: tuple[Disagreement, ...]) -> list[str]:
    """The reviews the models labelled differently whose scores differ most, with each model's label and
    score and, where the review was explained, the words that moved each."""
    if not disagreements:
        return []
    explained = any(d.champion_words or d.shadow_words for d in disagreements)
    words_head = f"<th>{CHAMPION}'s words</th><th>{CHALLENGER}'s words</th>" if explained else ""
    rows = []
    for d in disagreements:
        words = f"<td>{_words(d.champion_words)}</td><td>{_words(d.shadow_words)}</td>" if explained else ""
        rows.append(
            f'<tr><td class="snippet">{escape(d.snippet)}<div class="meta">{escape(d.review_id)}</div></td>'
            f'<td>{escape(d.champion_label)}</td><td class="n">{d.champion_score:.4f}</td>'
            f'<td>{escape(d.shadow_label)}</td><td class="n">{d.shadow_score:.4f}</td>'
            f'<td class="n">{d.shadow_score - d.champion_score:+.4f}</td>{words}</tr>'
        )
    return [
        "<h3>Where they disagree most</h3>",
        f'<p class="meta">The reviews labelled differently whose scores differ most, largest difference first '
        f"(at most {DISAGREEMENTS_SHOWN}). A word's weight is how much it raised its model's label there.</p>",
        f'<table id="disagreements"><tr><th>review</th><th>{CHAMPION}</th><th>score</th><th>{CHALLENGER}</th>'
        f"<th>score</th><th>difference</th>{words_head}</tr>{''.join(rows)}</table>",
    ]


def _words(words: tuple[WordWeight, ...] | None) -> str:
    if not words:
        return ""
    shown = ", ".join(f"{escape(w.word)} {w.mean_weight:+.3f}" for w in words)
    return f'<span class="words">{shown}</span>'


def _drift_table(drift: Drift, profile: TrainingProfile | None) -> str:
    """What decides a check, in words; on what the checks were judged (or why not); one row per condition."""
    if not drift.checks:
        return f"<p>{escape(drift.reason or 'no checks ran')}</p>"
    judged = drift.status != INSUFFICIENT
    rows = "".join(_drift_row(check, judged) for check in drift.checks)
    return (
        f"<p>{DRIFT_RULES}</p>{_drift_scope(drift, profile, judged)}"
        '<table id="drift"><tr><th>check</th><th>compares</th><th>statistic</th><th>value</th><th>drifts when</th>'
        f"<th>met</th><th>verdict</th></tr>{rows}</table>"
    )


DRIFT_RULES = (
    "Each check compares this run with the bundle's training profile by one statistic, and drifts when its "
    "condition is met (the unknown-word rate: both of its conditions). Distributions (predicted labels, scores, "
    "review length) by the population stability index over the training profile's deciles: above "
    f"{PSI_THRESHOLD:.2f} is a major shift. The vocabulary by the Jensen-Shannon distance of word shares: "
    f"above {JS_THRESHOLD:.2f}. The unknown-word rate when the difference is both significant "
    f"(|z| &gt; {Z_THRESHOLD:.2f}, p &lt; 0.001) and not negligible (Cohen's |h| ≥ {COHENS_H_THRESHOLD:.2f}): "
    "over many tokens any difference is significant."
)


def _drift_scope(drift: Drift, profile: TrainingProfile | None, judged: bool) -> str:
    """The reviews compared; for a run below the least that can be judged, that and why, plainly."""
    source = profile.source if profile else {}
    data = str(source.get("data", ""))
    training = (
        f'{drift.reference_reviews or 0:,} of the training profile (<span title="{escape(data)}">'
        f"{escape(str(source.get('part', '')))}: {escape(_file_names(data))}</span>)"
    )
    if judged:
        return f'<p class="meta">Judged on {drift.reviews or 0:,} reviews of this run against {training}.</p>'
    return (
        f'<p class="notice" id="not-judged">Not judged: this run scored {drift.reviews or 0:,} reviews, and '
        f"drift is judged from {drift.min_reviews or 0:,} on (on fewer, chance alone moves the statistics past "
        f"their thresholds). The values against {training} are shown for information only.</p>"
    )


def _reviews(count: int) -> str:
    return f"{count:,} review" + ("" if count == 1 else "s")


def _file_names(paths: str) -> str:
    """The profile's data by file name ("train.parquet"): its paths are the training machine's, in full on hover."""
    return " + ".join(path.rstrip("/").rsplit("/", 1)[-1] for path in paths.split(" + "))


def _drift_row(check: DriftCheck, judged: bool) -> str:
    """A check with every condition that decides it, one line each (statistic, value, rule, whether it is
    met): it drifts when all are met, so its verdict reads off its lines. A check not judged shows its
    values, and no condition as met or not."""
    decided_by = conditions(check)
    span = f' rowspan="{len(decided_by)}"' if len(decided_by) > 1 else ""
    tone = "bad" if check.drifted else "good" if check.verdict == OK else "neutral"
    met = (lambda condition: "yes" if condition.holds() else "no") if judged else (lambda condition: "–")
    lines = [
        f"<td>{escape(condition.statistic)}</td>"
        f'<td class="n">{condition.value:.4f}</td>'
        f'<td class="n">{"and " if i else ""}{escape(condition.rule())}</td>'
        f"<td{'' if judged else ' class=unjudged'}>{met(condition)}</td>"
        for i, condition in enumerate(decided_by)
    ]
    first = f"<td{span}>{escape(check.title)}</td><td{span}>{escape(check.what)}</td>{lines[0]}"
    first += f'<td{span} class="{tone}">{escape(CHECK_VERDICTS.get(check.verdict, check.verdict))}</td>'
    return "".join(f"<tr>{cells}</tr>" for cells in [first, *lines[1:]])


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f'<tr><td>{escape(name)}</td><td class="n">{value:,}</td></tr>'
        if isinstance(value, int)
        else f'<tr><td>{escape(name)}</td><td class="n">{escape(str(value))}</td></tr>'
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def _regroup(counts: np.ndarray, width: int) -> np.ndarray:
    return np.asarray(counts, dtype=np.float64).reshape(-1, width).sum(axis=1)
