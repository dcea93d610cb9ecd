"""report.html: one self-contained page per scoring run, for people to look at.

Counts (read, scored, failed by stage), the drift verdict and every check, throughput and engine,
the run's label, score, length and unknown-word distributions against the training profile, and
the model's manifest. Plots are inline SVG (`charts.py`), styles inline, no script and no network:
the page opens from a bucket, an e-mail attachment or a laptop offline.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

import numpy as np

from pipeline.monitoring.charts import bar_chart
from pipeline.monitoring.drift import proportions
from pipeline.monitoring.statistics import OOV_SHARE_BINS, SCORE_BINS, Statistics, padded
from pipeline.monitoring.training_profile import TrainingProfile
from schemas.summary import (
    DRIFTED,
    INSUFFICIENT,
    NO_PROFILE,
    OK,
    Drift,
    EngineUse,
    ExplanationsSummary,
    RunSummary,
    Verdict,
)

HISTOGRAM_BINS = 20
RUN, TRAINING = "this run", "training profile"
VERDICTS = {
    DRIFTED: ("drift detected", "bad"),
    OK: ("no drift", "good"),
    INSUFFICIENT: ("too few reviews to judge drift", "neutral"),
    NO_PROFILE: ("no training profile in the bundle", "neutral"),
}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#111827;
padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#4b5563}.badge{display:inline-block;padding:4px 10px;border-radius:999px;font-weight:600;margin:8px 0}
.good{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}.neutral{background:#f3f4f6;color:#374151}
table{border-collapse:collapse;margin:6px 0}td,th{padding:4px 10px;border-bottom:1px solid #f3f4f6;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f9fafb}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px}
svg.chart{background:#fff;border:1px solid #e5e7eb;border-radius:6px}
svg .title{font-weight:600;font-size:13px}svg .tick{font-size:10px;fill:#4b5563}svg .label,svg .legend{font-size:11px}
svg .grid{stroke:#f3f4f6}svg .axis{stroke:#9ca3af}pre{background:#f9fafb;padding:10px;overflow:auto;font-size:12px}
"""


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
        "<h2>Model</h2>",
        f"<details><summary>manifest.json of {escape(str(manifest.get('name', '')))}</summary>"
        f"<pre>{escape(json.dumps(manifest, indent=2, ensure_ascii=False))}</pre></details>",
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _run_verdict(verdict: Verdict | None) -> list[str]:
    """Whether the run passed its job's policy (error-rate limit, --on-drift), and what failed it."""
    if verdict is None:
        return []
    if verdict.passed:
        return ['<div class="badge good" id="run-verdict">run passed</div>']
    problems = "".join(f"<li>{escape(problem)}</li>" for problem in verdict.problems)
    return [f'<div class="badge bad" id="run-verdict">run failed</div><ul>{problems}</ul>']


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
    """Per predicted class, the words most often among a review's top words pushing towards it (--explain)."""
    if explanations is None:
        return []
    error = explanations.completeness_error
    columns = "".join(
        f"<td><b>{escape(name)}</b><table>"
        + "".join(f'<tr><td>{escape(word)}</td><td class="n">{count:,}</td></tr>' for word, count in words)
        + "</table></td>"
        for name, words in explanations.top_words_by_class.items()
    )
    completeness = (
        f"completeness error mean {error.mean:.1%}, max {error.max:.1%}"
        if error.mean is not None and error.max is not None
        else "occlusion has no completeness error"
    )
    return [
        "<h2>Why these labels</h2>",
        f'<p class="meta">{explanations.reviews:,} reviews explained: {escape(explanations.method)} '
        f"on {escape(explanations.engine)}; "
        f"{completeness}. Words most often among a review's top {explanations.top_k} and pushing it "
        "towards its predicted class:</p>",
        f'<table id="top-words"><tr>{columns}</tr></table>',
    ]


def _drift_table(drift: Drift, profile: TrainingProfile | None) -> str:
    if not drift.checks:
        return f"<p>{escape(drift.reason or 'no checks ran')}</p>"
    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{escape(c.what)}</td><td>{escape(c.statistic)}</td>"
        f'<td class="n">{c.value:.4g}</td><td class="n">{c.threshold:g}</td>'
        f'<td class="{"bad" if c.drifted else "good" if c.verdict == OK else "neutral"}">'
        f"{escape(c.verdict)}</td></tr>"
        for c in drift.checks
    )
    source = profile.source if profile else {}
    note = (
        f"<p class=meta>{drift.reviews or 0:,} reviews of this run against {drift.reference_reviews or 0:,} "
        f"of the training profile ({escape(str(source.get('part', '')))}: {escape(str(source.get('data', '')))}); "
        f"at least {drift.min_reviews or 0:,} reviews are needed to judge.</p>"
    )
    return (
        "<table><tr><th>check</th><th>what</th><th>statistic</th><th>value</th><th>threshold</th>"
        f"<th>verdict</th></tr>{rows}</table>{note}"
    )


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
