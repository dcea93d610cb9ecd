"""The SVG charts of the run report and of `evaluate`: round ticks, well-formed standalone files."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import numpy as np
import pytest

from pipeline.model.monitoring.charts import Line, bar_chart, count, heat_map, line_chart, nice_ticks, svg_document

SVG = "{http://www.w3.org/2000/svg}"


def tick_labels(svg: str) -> list[str]:
    return re.findall(r'class="tick">([^<]*)</text>', svg)


@pytest.mark.parametrize(
    ("high", "integers", "expected"),
    [
        (0.375, False, [0, 0.1, 0.2, 0.3, 0.4]),
        (0.75, False, [0, 0.2, 0.4, 0.6, 0.8]),
        (1.0, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.11, False, [0, 0.025, 0.05, 0.075, 0.1, 0.125]),
        (1616, True, [0, 500, 1000, 1500, 2000]),
        (3, True, [0, 1, 2, 3]),
        (12, True, [0, 5, 10, 15]),
        (0, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ],
)
def test_ticks_are_round_steps_from_zero_past_the_highest_value(high, integers, expected):
    ticks = nice_ticks(high, integers=integers)
    assert ticks.tolist() == pytest.approx(expected)
    assert ticks[-1] >= high


def test_every_tick_is_a_round_multiple_of_a_1_2_2_5_5_step():
    for high in np.random.default_rng(0).uniform(0.001, 5000, 300):
        ticks = nice_ticks(float(high))
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** np.floor(np.log10(step))
        assert any(np.isclose(mantissa, m) for m in (1, 2, 2.5, 5)), (high, ticks)
        assert 3 <= len(ticks) - 1 <= 6 and ticks[-2] < high <= ticks[-1] + 1e-9


def test_the_reports_share_axis_shows_whole_percentages():
    svg = bar_chart("Predicted labels", ["negative", "positive"], {"this run": np.array([0.625, 0.375])}, "class")
    assert tick_labels(svg)[:5] == ["0%", "20%", "40%", "60%", "80%"]


def test_count_axes_step_by_whole_numbers():
    svg = bar_chart("Scores", ["0.0", "0.5"], {"a": np.array([3, 1])}, "score", "reviews", value_format=count)
    assert tick_labels(svg)[:4] == ["0", "1", "2", "3"]


def test_charts_are_standalone_svg_files():
    charts = [
        heat_map("Confusion <matrix>", ["negative", "positive"], np.array([[5, 1], [0, 4]]), "predicted", "true"),
        line_chart(
            "ROC",
            [
                Line("chance", np.array([0, 1]), np.array([0, 1]), dashed=True),
                Line("model", np.array([0, 0.1, 1]), np.array([0, 0.8, 1]), ["a", "b & c", "d"]),
            ],
            "false positive rate",
            "true positive rate",
        ),
        bar_chart("Bars", ["a"], {"x": np.array([1.0])}, "x"),
    ]
    for chart in charts:
        root = ElementTree.fromstring(svg_document(chart))
        assert root.tag == f"{SVG}svg" and root.find(f"{SVG}style") is not None
    cells = [t.text for t in ElementTree.fromstring(svg_document(charts[0])).iter(f"{SVG}text")]
    assert {"5", "1", "0", "4"} <= set(cells) and "Confusion <matrix>" in cells
