"""Bar charts as inline SVG, for the run report: this run against the training profile.

Written here rather than drawn with matplotlib: the report is made at the end of every run, the
quick start's included, where matplotlib's import and four figures would be a large share of the
run's time (BENCHMARKS.md, "What watching every run costs"), and matplotlib, fonttools and friends
would join the TensorFlow-free worker image. Four grouped bar charts need none of that: plain SVG
renders in every browser, offline, and stays sharp when zoomed.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

WIDTH, HEIGHT = 560, 300
MARGIN = {"left": 56, "right": 16, "top": 44, "bottom": 58}
COLOURS = ("#2563eb", "#f59e0b")
"""This run, then the training profile."""


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: dict[str, np.ndarray],
    x_label: str,
    y_label: str = "share of reviews",
    max_category_labels: int = 12,
) -> str:
    """Grouped bars, one group per category, one bar per series (each a share of its total)."""
    names = list(series)
    values = {name: np.asarray(v, dtype=np.float64) for name, v in series.items()}
    top = nice_ceiling(max((float(v.max()) if v.size else 0.0) for v in values.values()))
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(names), 1)
    parts = [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" class="title">{escape(title)}</text>',
    ]
    for tick in np.linspace(0, top, 5):
        y = MARGIN["top"] + plot_h * (1 - tick / top)
        parts.append(
            f'<line x1="{MARGIN["left"]}" x2="{WIDTH - MARGIN["right"]}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{MARGIN["left"] - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_percent(tick)}</text>'
        )
    for s, name in enumerate(names):
        for i, value in enumerate(values[name]):
            h = plot_h * value / top
            x = MARGIN["left"] + i * group_w + group_w * 0.1 + s * bar_w
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{MARGIN["top"] + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[s % len(COLOURS)]}"><title>{escape(name)}, '
                f"{escape(categories[i])}: {value:.1%}</title></rect>"
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
        f'<text x="{MARGIN["left"] + plot_w / 2}" y="{HEIGHT - 22}" text-anchor="middle" class="label">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(14 {MARGIN["top"] + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'class="label">{escape(y_label)}</text>'
    )
    for s, name in enumerate(names):
        x = MARGIN["left"] + s * 150
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 12}" width="10" height="10" fill="{COLOURS[s % len(COLOURS)]}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 3}" class="legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _percent(share: float) -> str:
    return f"{share:.0%}" if abs(share * 100 - round(share * 100)) < 1e-9 else f"{share:.1%}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above value: round numbers for the top tick."""
    if value <= 0:
        return 1.0
    exponent = np.floor(np.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value - 1e-12:
            return float(candidate)
    return float(10 ** (exponent + 1))
