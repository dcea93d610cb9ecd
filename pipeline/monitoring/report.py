"""_report.html: one self-contained page per scoring run, for people to look at.

The run's lineage (inputs, model and its checksum, options, versions, runner, times), counts (read,
scored, failed by stage), the drift verdict and every check with the conditions that decide it,
throughput and engine, the run's label, score, length and unknown-word distributions against the
training profile, and the model's manifest. Plots are inline SVG (`charts.py`), styles inline, no
script and no network: the page opens from a bucket, an e-mail attachment or a laptop offline.

One format per kind of number: counts with thousands separators, statistics to 4 decimals,
thresholds to 2, shares as percentages to 1 decimal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

import numpy as np

from pipeline.monitoring.charts import CHART_STYLE, bar_chart
from pipeline.monitoring.drift import conditions, proportions
from pipeline.monitoring.statistics import OOV_SHARE_BINS, SCORE_BINS, Statistics, padded
from pipeline.monitoring.training_profile import TrainingProfile
from schemas.summary import (
    DRIFTED,
    INSUFFICIENT,
    NO_PROFILE,
    OK,
    Drift,
    DriftCheck,
    EngineUse,
    ExplanationsSummary,
    Lineage,
    RunSummary,
    Verdict,
)

HISTOGRAM_BINS = 20
CHECKSUM_SHOWN = 12
"""Hex digits of the manifest's sha256 the header shows (the whole is in _SUMMARY.json and on hover)."""
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
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}th{background:#f9fafb}
td,th{vertical-align:top}#lineage td:first-child{color:#4b5563;white-space:nowrap}
#lineage code{font-size:12px}.options{display:flex;flex-wrap:wrap;gap:2px 14px}
table.top-words{table-layout:fixed}table.top-words col.word{width:150px}table.top-words col.count{width:70px}
table.top-words th.class{border-left:2px solid #e5e7eb}table.top-words td.word{border-left:2px solid #e5e7eb}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px}
pre{background:#f9fafb;padding:10px;overflow:auto;font-size:12px}
""" + CHART_STYLE


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
    """Per predicted class, the words most often among a review's top words pushing towards it (--explain)."""
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
        f'<p class="meta">{explanations.reviews:,} reviews explained{_which(explanations)}: '
        f"{escape(explanations.method)} on {escape(explanations.engine)}; "
        f"{completeness}. Words most often among a review's top {explanations.top_k} and pushing it "
        "towards its predicted class:</p>",
        _top_words_table(explanations.top_words_by_class),
    ]


def _which(explanations: ExplanationsSummary) -> str:
    chosen = explanations.reviews_explained
    return f" ({escape(chosen)})" if chosen and chosen != "all" else ""


def _top_words_table(by_class: dict[str, tuple[tuple[str, int], ...]]) -> str:
    """One table, a word and a count column per class, fixed widths: every class's list lines up."""
    columns = '<col class="word"><col class="count">' * len(by_class)
    header = "".join(f'<th class="class" colspan="2">{escape(name)}</th>' for name in by_class)
    depth = max((len(words) for words in by_class.values()), default=0)
    rows = []
    for i in range(depth):
        cells = []
        for words in by_class.values():
            word, count = words[i] if i < len(words) else ("", None)
            cells.append(
                f'<td class="word">{escape(word)}</td><td class="n">{"" if count is None else f"{count:,}"}</td>'
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = f"<colgroup>{columns}</colgroup><tr>{header}</tr>{''.join(rows)}"
    return f'<table id="top-words" class="top-words">{body}</table>'


def _drift_table(drift: Drift, profile: TrainingProfile | None) -> str:
    if not drift.checks:
        return f"<p>{escape(drift.reason or 'no checks ran')}</p>"
    rows = "".join(_drift_row(check) for check in drift.checks)
    source = profile.source if profile else {}
    data = str(source.get("data", ""))
    note = (
        f"<p class=meta>{drift.reviews or 0:,} reviews of this run against {drift.reference_reviews or 0:,} "
        f'of the training profile (<span title="{escape(data)}">{escape(str(source.get("part", "")))}: '
        f"{escape(_file_names(data))}</span>); "
        f"at least {drift.min_reviews or 0:,} reviews are needed to judge.</p>"
    )
    return (
        '<table id="drift"><tr><th>check</th><th>what</th><th>statistic</th><th>value</th><th>drifts when</th>'
        f"<th>holds</th><th>verdict</th></tr>{rows}</table>{note}"
    )


def _file_names(paths: str) -> str:
    """The profile's data by file name ("train.parquet"): its paths are the training machine's, in full on hover."""
    return " + ".join(path.rstrip("/").rsplit("/", 1)[-1] for path in paths.split(" + "))


def _drift_row(check: DriftCheck) -> str:
    """A check with every condition that decides it, one line each (statistic, value, rule, whether it
    holds): it drifts when all hold, so its verdict reads off its lines."""
    decided_by = conditions(check)
    span = f' rowspan="{len(decided_by)}"' if len(decided_by) > 1 else ""
    tone = "bad" if check.drifted else "good" if check.verdict == OK else "neutral"
    lines = [
        f"<td>{escape(condition.statistic)}</td>"
        f'<td class="n">{condition.value:.4f}</td>'
        f'<td class="n">{"and " if i else ""}{escape(condition.rule())}</td>'
        f"<td>{'yes' if condition.holds() else 'no'}</td>"
        for i, condition in enumerate(decided_by)
    ]
    first = f"<td{span}>{escape(check.name)}</td><td{span}>{escape(check.what)}</td>{lines[0]}"
    first += f'<td{span} class="{tone}">{escape(check.verdict)}</td>'
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
