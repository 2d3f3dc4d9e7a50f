"""Server-side SVG charts: round ticks, thinning that keeps extremes, well-formed and escaped SVG."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from commons.web.charts import (
    Interval,
    Series,
    format_number,
    interval_chart,
    line_chart,
    loss_chart,
    loss_series,
    nice_ticks,
    thin,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def path_points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", d)]


@pytest.mark.parametrize(("low", "high", "count", "expected"), [
    (0.13, 2.7, 4, [0.0, 1.0, 2.0, 3.0]),
    (0.13, 2.7, 6, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
    (1, 12, 6, [0, 2, 4, 6, 8, 10, 12]),
    (2.31, 2.35, 4, [2.31, 2.32, 2.33, 2.34, 2.35]),
    (-3, 3, 4, [-4, -2, 0, 2, 4]),
])
def test_nice_ticks_are_round_and_cover_the_range(low: float, high: float, count: int, expected: list[float]) -> None:
    ticks = nice_ticks(low, high, count)
    assert ticks == pytest.approx(expected)
    assert ticks[0] <= low and ticks[-1] >= high


def test_nice_ticks_of_one_value_and_bad_input() -> None:
    ticks = nice_ticks(5, 5)
    assert ticks[0] < 5 < ticks[-1]
    with pytest.raises(ValueError):
        nice_ticks(0, math.inf)


def test_format_number_drops_float_noise() -> None:
    assert format_number(0.1 + 0.2) == "0.3"
    assert format_number(0) == "0"
    assert format_number(123456) == "1.2e+05"
    assert format_number(2.5e-4) == "0.00025"


def test_thin_keeps_every_extreme_and_the_last_point() -> None:
    points = [(float(i), math.sin(i / 50) + (5 if i == 777 else 0)) for i in range(5000)]
    kept = thin(points, 200)
    assert len(kept) <= 202
    assert (777.0, points[777][1]) in kept  # a spike survives
    assert kept[-1] == points[-1] and kept == sorted(kept)
    assert thin(points[:10], 200) == points[:10]


def test_line_chart_scales_points_into_the_plot() -> None:
    svg = parse(line_chart([Series("loss", ((1, 3.0), (2, 2.0), (3, 1.0)))], title="Loss", x_label="step"))
    assert svg.get("viewBox") == "0 0 640 260" and svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "Loss"  # type: ignore[union-attr]
    assert "loss: 3 points, from 3 at 1 to 1 at 3" in svg.find(f"{SVG}desc").text  # type: ignore[operator,union-attr]
    path = svg.find(f".//{SVG}path")
    assert path is not None and "series-line" in path.get("class", "")
    xy = path_points(path.get("d", ""))
    assert len(xy) == 3
    assert [x for x, _ in xy] == sorted(x for x, _ in xy)  # step goes right
    assert xy[0][1] < xy[1][1] < xy[2][1]  # falling loss goes down the page (SVG y grows downwards)
    assert all(0 <= x <= 640 and 0 <= y <= 260 for x, y in xy)
    assert "style=" not in str(line_chart([Series("a", ((0, 1), (1, 2)))], title="t"))  # the CSP forbids it


def test_line_chart_skips_non_finite_values_and_says_when_empty() -> None:
    chart = line_chart([Series("loss", ((1, math.nan), (2, math.inf)))], title="Loss", empty="Nothing yet")
    assert "Nothing yet" in chart and "<path" not in chart
    parse(chart)


def test_points_series_and_legend() -> None:
    chart = parse(line_chart([Series("train", ((1, 2.0), (2, 1.5))), Series("eval", ((0, 2.2), (2, 1.4)), "points")],
                             title="t"))
    circles = chart.findall(f".//{SVG}g[@class='series-points series-1']/{SVG}circle")
    assert len(circles) == 2
    legend = [t.text for t in chart.findall(f".//{SVG}g[@class='legend']//{SVG}text")]
    assert sorted(legend) == ["eval", "train"]  # type: ignore[type-var]


def test_labels_are_escaped() -> None:
    chart = line_chart([Series("<script>alert(1)</script>", ((0, 1), (1, 2)))], title='"><img src=x>')
    assert "<script>" not in chart and "<img" not in chart
    parse(chart)
    bars = interval_chart([Interval("<b>bold</b>", 0.5, 0.4, 0.6)], title="t")
    assert "<b>" not in bars
    parse(bars)


def test_interval_chart_bars_and_whiskers() -> None:
    rows = [Interval("small", 0.2, 0.1, 0.3), Interval("large", 0.8, 0.75, 0.85), Interval("no interval", 0.5)]
    svg = parse(interval_chart(rows, title="Accuracy", x_label="accuracy"))
    bars = svg.findall(f".//{SVG}rect")
    widths = [float(b.get("width", 0)) for b in bars]
    assert widths[1] == pytest.approx(4 * widths[0], rel=0.01)  # bars are proportional to the values from 0
    assert len({b.get("x") for b in bars}) == 1  # all start at the origin
    whiskers = svg.findall(f".//{SVG}g[@class='interval']")
    assert len(whiskers) == 2  # the row without an interval has none
    first = whiskers[0].findall(f"{SVG}line")[0]
    assert float(first.get("x1", 0)) < float(bars[0].get("x", 0)) + widths[0] < float(first.get("x2", 0))
    assert "large: 0.8 (0.75 to 0.85)" not in (svg.find(f"{SVG}desc").text or "")  # uses brackets
    assert "large: 0.8 [0.75, 0.85]" in (svg.find(f"{SVG}desc").text or "")
    assert "No results" in interval_chart([], title="t")


def test_interval_chart_with_negative_values_starts_bars_at_zero() -> None:
    svg = parse(interval_chart([Interval("down", -0.5), Interval("up", 1.0)], title="delta"))
    down, up = svg.findall(f".//{SVG}rect")
    assert float(down.get("x", 0)) + float(down.get("width", 0)) == pytest.approx(float(up.get("x", 0)), abs=0.2)


def test_loss_series_from_job_events() -> None:
    events = [("state", {"state": "running"}), ("metric", {"name": "train_loss_before", "value": 3.0, "step": 0}),
              ("metric", {"name": "eval_loss_before", "value": 3.1, "step": 0})]
    events += [("progress", {"step": i, "total": 4, "loss": 3.0 - i / 2}) for i in range(1, 5)]
    events += [("progress", {"step": 2, "total": 4, "loss": "nan"}),  # NaN arrives as a string: skipped
               ("metric", {"name": "eval_loss_after", "value": 1.2, "step": 4}),
               ("metric", {"name": "tokens", "value": 100, "step": 4})]
    series = {s.name: s for s in loss_series(events)}
    assert series["training loss"].points == ((1, 2.5), (2, 2.0), (3, 1.5), (4, 1.0))
    assert series["eval loss (whole split)"].points == ((0, 3.1), (4, 1.2))
    assert series["eval loss (whole split)"].style == "points"
    assert series["train loss (whole split)"].points == ((0, 3.0),)
    assert set(series) == {"training loss", "eval loss (whole split)", "train loss (whole split)"}
    chart = parse(loss_chart(events))
    assert len(path_points(chart.find(f".//{SVG}path").get("d", ""))) == 4  # type: ignore[union-attr]
    assert "No training steps yet" in loss_chart([("state", {"state": "queued"})])
