"""Charts as inline SVG: the run report's bars, and `reviewscore evaluate`'s confusion matrix, ROC
curve, reliability diagram and score histogram. One module, one look, one way to pick ticks.

Written here rather than drawn with matplotlib: the report is made at the end of every run, the
quick start's included, where matplotlib's import and four figures would be a large share of the
run's time (BENCHMARKS.md#monitoring-cost), and matplotlib, fonttools and friends
would join the TensorFlow-free worker image and the scoring install, where `evaluate` runs too.
Bars, lines and a heat map need none of that: plain SVG renders in every browser, offline, and
stays sharp when zoomed.

A chart is an `<svg class="chart">` element styled by CHART_STYLE: a page includes CHART_STYLE
once in its own `<style>`, and `svg_document` makes a chart a standalone .svg file with the style
inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

WIDTH, HEIGHT = 560, 300
MARGIN = {"left": 56, "right": 16, "top": 44, "bottom": 58}
COLOURS = ("#2563eb", "#f59e0b")
"""The first series (this run; the model), then the second (the training profile; a comparison)."""
REFERENCE_COLOUR = "#9ca3af"
"""Dashed reference lines (the diagonal of a ROC curve or a reliability diagram)."""
LINE_SIZE = 440
"""Width and height of a line chart: both axes run from 0 to 1, so the plot is square."""
CELL = 72
"""Side of one confusion-matrix cell."""
CHAR_WIDTH = 6.5
"""About how wide one character of an 11 px label is: room for the longest class name."""
HISTOGRAM_BINS = 20
"""Bars of a score or length histogram, in the run report and the evaluation page alike."""
TICK_STEPS = (1, 2, 2.5, 5, 10)
"""Ticks step by one of these times a power of ten: 0, 10, 20, 30 %, never 18.8 %."""

CHART_STYLE = (
    "svg.chart{background:#fff;border:1px solid #e5e7eb;border-radius:6px;"
    "font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif}"
    "svg .title{font-weight:600;font-size:13px}svg .tick{font-size:10px;fill:#4b5563}"
    "svg .label,svg .legend{font-size:11px}svg .cell{font-size:12px}"
    "svg .grid{stroke:#f3f4f6}svg .axis{stroke:#9ca3af}"
)
"""The charts' CSS: in a page's `<style>`, or inside a standalone .svg file (`svg_document`)."""


def percent(share: float) -> str:
    return f"{share:.0%}" if abs(share * 100 - round(share * 100)) < 1e-9 else f"{share:.1%}"


def count(value: float) -> str:
    return f"{value:,.0f}"


def decimal(value: float) -> str:
    return f"{value:.10g}"


def nice_ticks(high: float, target: int = 5, integers: bool = False) -> np.ndarray:
    """Round tick values from 0 to the first tick at or above `high`, about `target` intervals: the
    step is 1, 2, 2.5 or 5 x 10^k (0, 0.2, ... 1; 0, 10, ... 40 %; 0, 250, ... 1,000), and a whole
    number when the values are counts."""
    high = high if high > 0 else 1.0
    raw = high / target
    power = 10 ** np.floor(np.log10(raw))
    steps = [m * power for m in TICK_STEPS if not integers or float(m * power).is_integer()]
    step = next(s for s in steps if s >= raw * (1 - 1e-9)) if steps else 1.0
    intervals = int(np.ceil(high / step - 1e-9))
    return np.round(np.arange(intervals + 1) * step, 12)


def svg_document(chart: str) -> str:
    """A chart as a standalone .svg file: the SVG namespace and the charts' style inside it."""
    opened = chart.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    head, rest = opened.split(">", 1)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{head}><style>{CHART_STYLE}</style>{rest}\n'


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: dict[str, np.ndarray],
    x_label: str,
    y_label: str = "share of reviews",
    max_category_labels: int = 12,
    value_format: Callable[[float], str] = percent,
    hover: Sequence[str] | None = None,
) -> str:
    """Grouped bars, one group per category, one bar per series: shares of each series' total (the
    default), or counts with `value_format=count`. `hover` names each category in its bars' hover text
    where its axis label is shorter (a bin's range, labelled by its start)."""
    hover = categories if hover is None else hover
    names = list(series)
    values = {name: np.asarray(v, dtype=np.float64) for name, v in series.items()}
    ticks = nice_ticks(
        max((float(v.max()) if v.size else 0.0) for v in values.values()), integers=value_format is count
    )
    top = float(ticks[-1])
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(names), 1)
    parts = [_open(title, WIDTH, HEIGHT), *_y_ticks(ticks, MARGIN["left"], WIDTH - MARGIN["right"],
                                                     MARGIN["top"], plot_h, value_format)]  # fmt: skip
    for s, name in enumerate(names):
        for i, value in enumerate(values[name]):
            h = plot_h * value / top
            x = MARGIN["left"] + i * group_w + group_w * 0.1 + s * bar_w
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{MARGIN["top"] + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[s % len(COLOURS)]}"><title>{escape(name)}, '
                f"{escape(hover[i])}: {value_format(value)}</title></rect>"
            )
    step = max(1, -(-len(categories) // max_category_labels))
    for i in range(0, len(categories), step):
        x = MARGIN["left"] + (i + 0.5) * group_w
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - MARGIN["bottom"] + 16}" text-anchor="middle" class="tick">'
            f"{escape(categories[i])}</text>"
        )
    parts.append(
        f'<line x1="{MARGIN["left"]}" x2="{WIDTH - MARGIN["right"]}" y1="{MARGIN["top"] + plot_h}" '
        f'y2="{MARGIN["top"] + plot_h}" class="axis"/>'
    )
    parts += _axis_labels(x_label, y_label, MARGIN["left"] + plot_w / 2, HEIGHT - 22, MARGIN["top"] + plot_h / 2)
    parts += _legend([(name, COLOURS[s % len(COLOURS)], False) for s, name in enumerate(names)], HEIGHT)
    parts.append("</svg>")
    return "".join(parts)


def heat_map(title: str, names: Sequence[str], counts: np.ndarray, x_label: str, y_label: str) -> str:
    """A square matrix of counts (a confusion matrix: true class by row, predicted by column), each
    cell shaded by its share of its row and labelled with its count."""
    counts = np.asarray(counts, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(names)
    label_room = 16 + CHAR_WIDTH * max((len(n) for n in names), default=1)
    left, top = 30 + label_room, 44
    width = max(left + k * CELL + 16, left + k * CELL / 2 + CHAR_WIDTH * len(x_label) / 2 + 12, 320)
    height = top + k * CELL + label_room * 0.5 + 44
    parts = [_open(title, width, height)]
    for i, true in enumerate(names):
        for j, predicted in enumerate(names):
            x, y, share = left + j * CELL, top + i * CELL, float(shares[i, j])
            parts.append(
                f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{_shade(share)}" stroke="#fff">'
                f"<title>true {escape(true)}, predicted {escape(predicted)}: {counts[i, j]:,} reviews "
                f"({percent(share)} of true {escape(true)})</title></rect>"
                f'<text x="{x + CELL / 2}" y="{y + CELL / 2 + 4}" text-anchor="middle" class="cell" '
                f'fill="{"#fff" if share > 0.5 else "#111827"}">{counts[i, j]:,}</text>'
            )
        parts.append(
            f'<text x="{left - 6}" y="{top + (i + 0.5) * CELL + 4}" text-anchor="end" class="tick">'
            f"{escape(true)}</text>"
        )
    bottom = top + k * CELL
    for j, predicted in enumerate(names):
        x = left + (j + 0.5) * CELL
        parts.append(
            f'<text transform="translate({x + 6} {bottom + 14}) rotate(-30)" text-anchor="end" class="tick">'
            f"{escape(predicted)}</text>"
        )
    parts += _axis_labels(x_label, y_label, left + k * CELL / 2, height - 10, top + k * CELL / 2)
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Line:
    """One line of a line chart, both coordinates in [0, 1]. With `points` (one hover text per
    point) it is drawn with a marker at each point, of radius `sizes` where given."""

    name: str
    x: np.ndarray
    y: np.ndarray
    points: Sequence[str] | None = None
    sizes: np.ndarray | None = None
    dashed: bool = False


def line_chart(title: str, lines: Sequence[Line], x_label: str, y_label: str) -> str:
    """Lines on square axes from 0 to 1 (a ROC curve, a reliability diagram); dashed lines are
    references, drawn grey."""
    margin = {"left": 56, "right": 16, "top": 44, "bottom": 58}
    side = LINE_SIZE - margin["left"] - margin["right"]
    height = margin["top"] + side + margin["bottom"]
    ticks = nice_ticks(1.0)
    parts = [_open(title, LINE_SIZE, height)]
    parts += _y_ticks(ticks, margin["left"], margin["left"] + side, margin["top"], side, decimal)
    for tick in ticks:
        x = margin["left"] + side * tick
        parts.append(
            f'<text x="{x:.1f}" y="{margin["top"] + side + 16}" text-anchor="middle" class="tick">'
            f"{decimal(tick)}</text>"
        )
    keyed = []
    colours = iter(COLOURS)
    for line in lines:
        colour = REFERENCE_COLOUR if line.dashed else next(colours, COLOURS[-1])
        keyed.append((line.name, colour, line.dashed))
        xs = margin["left"] + side * np.asarray(line.x, dtype=np.float64)
        ys = margin["top"] + side * (1 - np.asarray(line.y, dtype=np.float64))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        dash = ' stroke-dasharray="5 4"' if line.dashed else ""
        parts.append(f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for i, text in enumerate(line.points or ()):
            radius = 3.0 if line.sizes is None else float(line.sizes[i])
            parts.append(
                f'<circle cx="{xs[i]:.1f}" cy="{ys[i]:.1f}" r="{radius:.1f}" fill="{colour}" fill-opacity="0.75">'
                f"<title>{escape(text)}</title></circle>"
            )
    bottom = margin["top"] + side
    parts.append(
        f'<line x1="{margin["left"]}" x2="{margin["left"] + side}" y1="{bottom}" y2="{bottom}" class="axis"/>'
        f'<line x1="{margin["left"]}" x2="{margin["left"]}" y1="{margin["top"]}" y2="{bottom}" class="axis"/>'
    )
    parts += _axis_labels(x_label, y_label, margin["left"] + side / 2, height - 22, margin["top"] + side / 2)
    parts += _legend(keyed, height)
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, width: float, height: float) -> str:
    return (
        f'<svg class="chart" role="img" width="{width:g}" height="{height:g}" viewBox="0 0 {width:g} {height:g}" '
        f'aria-label="{escape(title)}"><text x="{width / 2:g}" y="20" text-anchor="middle" class="title">'
        f"{escape(title)}</text>"
    )


def _y_ticks(
    ticks: np.ndarray, left: float, right: float, top: float, height: float, label: Callable[[float], str]
) -> list[str]:
    """A grid line and a label at each tick, the last tick at the top of the plot."""
    parts = []
    for tick in ticks:
        y = top + height * (1 - tick / ticks[-1])
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{label(float(tick))}</text>'
        )
    return parts


def _axis_labels(x_label: str, y_label: str, x_centre: float, x_baseline: float, y_centre: float) -> list[str]:
    return [
        f'<text x="{x_centre:.1f}" y="{x_baseline:.1f}" text-anchor="middle" class="label">{escape(x_label)}</text>',
        f'<text transform="translate(14 {y_centre:.1f}) rotate(-90)" text-anchor="middle" class="label">'
        f"{escape(y_label)}</text>",
    ]


def _legend(keyed: Sequence[tuple[str, str, bool]], height: float) -> list[str]:
    """One swatch and name per series along the bottom edge: a square, or a dash for a reference line."""
    parts, x = [], MARGIN["left"]
    for name, colour, dashed in keyed:
        swatch = (
            f'<line x1="{x}" x2="{x + 10}" y1="{height - 7}" y2="{height - 7}" stroke="{colour}" stroke-width="2" '
            'stroke-dasharray="3 2"/>'
            if dashed
            else f'<rect x="{x}" y="{height - 12}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(f'{swatch}<text x="{x + 14}" y="{height - 3}" class="legend">{escape(name)}</text>')
        x += 24 + CHAR_WIDTH * len(name)
    return parts


def _shade(share: float) -> str:
    """White at 0, the first series' blue at 1."""
    white, blue = np.array([255, 255, 255]), np.array([0x25, 0x63, 0xEB])
    r, g, b = np.round(white + (blue - white) * min(max(share, 0.0), 1.0)).astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"
