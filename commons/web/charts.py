"""Charts as inline SVG, drawn on the server: no script, no image request, readable by screen readers.

Pure functions from numbers to markup. `line_chart` draws series of (x, y) points (a loss curve);
`interval_chart` draws horizontal bars with an interval each (a score with its confidence
interval); `loss_chart` turns a job's progress and metric events into a line chart.

Colours come from the stylesheet (`.chart .series-N`), so the charts follow light and dark mode;
every element also carries plain SVG attributes, so a chart saved on its own still reads. The
page's CSP forbids inline styles, and nothing here writes a `style` attribute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from markupsafe import Markup, escape

Point = tuple[float, float]

# Space around the plot area, in SVG user units (the viewBox scales with the page).
LEFT, RIGHT, TOP, BOTTOM = 56, 18, 30, 40
MAX_POINTS = 400


@dataclass(frozen=True)
class Series:
    """One named series; `style` "line" joins the points, "points" marks each one."""

    name: str
    points: tuple[Point, ...]
    style: Literal["line", "points"] = "line"


@dataclass(frozen=True)
class Interval:
    """One bar of an interval chart: `value`, and optionally the interval [low, high] around it."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None


def finite(value: Any) -> float | None:
    """`value` as a float if it is a finite number (events may carry "nan" as a string), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (steps of 1, 2 or 5 x 10^k) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("tick range must be finite")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))  # float noise
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:  # float steps can stop one short
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def format_number(value: float) -> str:
    """A tick or value label: short, without float noise (0.30000000000000004 -> 0.3)."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.2g}"
    return f"{value:.4g}"


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most about `limit` points that keep the curve's shape: per bucket of x, its lowest and highest y.

    A 10,000-step run would otherwise draw 10,000 segments into a 600-unit-wide box.
    """
    if len(points) <= limit:
        return list(points)
    buckets = max(1, limit // 2)
    size = len(points) / buckets
    kept: list[Point] = []
    for b in range(buckets):
        part = points[int(b * size):int((b + 1) * size)]
        if not part:
            continue
        lo = min(part, key=lambda p: p[1])
        hi = max(part, key=lambda p: p[1])
        kept.extend(sorted({lo, hi}, key=lambda p: p[0]))
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


class _Scale:
    """Maps data values linearly onto a span of SVG units."""

    def __init__(self, ticks: Sequence[float], start: float, end: float) -> None:
        self.low, self.high = ticks[0], ticks[-1]
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        return round(self.start + (value - self.low) / span * (self.end - self.start), 1)


def _svg(width: int, height: int, title: str, description: str, body: list[str], css_class: str) -> Markup:
    head = (f'<svg class="chart {escape(css_class)}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" '
            f'font-size="11">')
    return Markup("".join([head, f"<title>{escape(title)}</title>", f"<desc>{escape(description)}</desc>",
                           *body, "</svg>"]))


def _empty(width: int, height: int, title: str, message: str, css_class: str) -> Markup:
    body = [f'<rect class="plot" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" '
            f'stroke="#d1d5db"/>',
            f'<text class="empty-note" x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            f'fill="#6b7280">{escape(message)}</text>']
    return _svg(width, height, title, message, body, css_class)


def line_chart(series: Sequence[Series], *, title: str, x_label: str = "", y_label: str = "",
               width: int = 640, height: int = 260, empty: str = "No data yet") -> Markup:
    """An SVG line chart of `series` sharing one pair of axes, with a legend when there are several."""
    drawn = [Series(s.name, tuple(thin([p for p in s.points if finite(p[0]) is not None
                                        and finite(p[1]) is not None])), s.style) for s in series]
    everything = [p for s in drawn for p in s.points]
    if not everything:
        return _empty(width, height, title, empty, "line-chart")
    xs, ys = [p[0] for p in everything], [p[1] for p in everything]
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs), 6), nice_ticks(min(ys), max(ys), 4)
    x = _Scale(x_ticks, LEFT, width - RIGHT)
    y = _Scale(y_ticks, height - BOTTOM, TOP)
    body = ['<g class="grid" stroke="#e5e7eb">'
            + "".join(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(t)}" y2="{y(t)}"/>' for t in y_ticks)
            + "</g>",
            '<g class="axis" fill="#6b7280">'
            + "".join(f'<text x="{LEFT - 6}" y="{y(t) + 4}" text-anchor="end">{format_number(t)}</text>'
                      for t in y_ticks)
            + "".join(f'<text x="{x(t)}" y="{height - BOTTOM + 16}" text-anchor="middle">{format_number(t)}</text>'
                      for t in x_ticks)
            + "</g>",
            f'<line class="axis-line" x1="{LEFT}" x2="{width - RIGHT}" y1="{height - BOTTOM}" '
            f'y2="{height - BOTTOM}" stroke="#9ca3af"/>']
    if x_label:
        body.append(f'<text class="axis-label" x="{(LEFT + width - RIGHT) / 2}" y="{height - 6}" '
                    f'text-anchor="middle" fill="#6b7280">{escape(x_label)}</text>')
    if y_label:
        body.append(f'<text class="axis-label" x="{LEFT}" y="{TOP - 12}" text-anchor="start" '
                    f'fill="#6b7280">{escape(y_label)}</text>')
    for i, s in enumerate(drawn):
        if not s.points:
            continue
        name = escape(s.name)
        if s.style == "line":
            path = " ".join(f"{'M' if j == 0 else 'L'}{x(px)} {y(py)}" for j, (px, py) in enumerate(s.points))
            body.append(f'<path class="series-line series-{i}" d="{path}" fill="none" stroke="#4f46e5" '
                        f'stroke-width="2" stroke-linejoin="round" stroke-linecap="round">'
                        f'<title>{name}</title></path>')
        else:
            body.append(f'<g class="series-points series-{i}" fill="#0891b2">'
                        + "".join(f'<circle cx="{x(px)}" cy="{y(py)}" r="4"><title>{name}: '
                                  f'{format_number(py)} at {format_number(px)}</title></circle>'
                                  for px, py in s.points)
                        + "</g>")
    if len([s for s in drawn if s.points]) > 1:
        body.append(_legend([s for s in drawn], width))
    description = "; ".join(_describe(s) for s in drawn if s.points)
    return _svg(width, height, title, description, body, "line-chart")


def _legend(series: Sequence[Series], width: int) -> str:
    items: list[str] = []
    right = float(width - RIGHT)
    for i in reversed(range(len(series))):
        s = series[i]
        if not s.points:
            continue
        text_width = 6.2 * len(s.name)
        left = round(right - text_width, 1)
        mark = (f'<line x1="{left - 20}" x2="{left - 6}" y1="12" y2="12" stroke="#4f46e5" stroke-width="2"/>'
                if s.style == "line" else f'<circle cx="{left - 11}" cy="12" r="4" fill="#0891b2"/>')
        items.append(f'<g class="legend-item series-{i}">{mark}<text x="{left}" y="16" fill="#374151">'
                     f"{escape(s.name)}</text></g>")
        right = left - 34
    return '<g class="legend">' + "".join(items) + "</g>"


def _describe(s: Series) -> str:
    first, last = s.points[0], s.points[-1]
    return (f"{s.name}: {len(s.points)} points, from {format_number(first[1])} at {format_number(first[0])} "
            f"to {format_number(last[1])} at {format_number(last[0])}")


def interval_chart(rows: Sequence[Interval], *, title: str, x_label: str = "", width: int = 640,
                   row_height: int = 28, label_width: int = 180, domain: tuple[float, float] | None = None,
                   empty: str = "No results") -> Markup:
    """Horizontal bars from 0 (or the domain's start) to each value, with a whisker for [low, high]."""
    kept = [r for r in rows if finite(r.value) is not None]
    height = TOP + max(1, len(kept)) * row_height + (BOTTOM if x_label else 24)
    if not kept:
        return _empty(width, height, title, empty, "interval-chart")
    if domain is None:
        values = [v for r in kept for v in (finite(r.value), finite(r.low), finite(r.high)) if v is not None]
        domain = (min(0.0, *values), max(values))
    ticks = nice_ticks(domain[0], domain[1], 5)
    x = _Scale(ticks, label_width, width - RIGHT - 44)
    origin = x(max(ticks[0], min(0.0, ticks[-1])))
    bottom = TOP + len(kept) * row_height
    body = ['<g class="grid" stroke="#e5e7eb">'
            + "".join(f'<line x1="{x(t)}" x2="{x(t)}" y1="{TOP - 6}" y2="{bottom}"/>' for t in ticks) + "</g>",
            '<g class="axis" fill="#6b7280">'
            + "".join(f'<text x="{x(t)}" y="{bottom + 16}" text-anchor="middle">{format_number(t)}</text>'
                      for t in ticks) + "</g>"]
    if x_label:
        body.append(f'<text class="axis-label" x="{(label_width + width - RIGHT) / 2}" y="{bottom + 32}" '
                    f'text-anchor="middle" fill="#6b7280">{escape(x_label)}</text>')
    parts = []
    for i, row in enumerate(kept):
        top = TOP + i * row_height
        middle = top + row_height / 2
        end = x(row.value)
        left, bar_width = min(origin, end), abs(end - origin)
        interval = ""
        low, high = finite(row.low), finite(row.high)
        if low is not None and high is not None:
            lx, hx = x(low), x(high)
            interval = (f'<g class="interval" stroke="#111827" stroke-width="1.5">'
                        f'<line x1="{lx}" x2="{hx}" y1="{middle}" y2="{middle}"/>'
                        f'<line x1="{lx}" x2="{lx}" y1="{middle - 5}" y2="{middle + 5}"/>'
                        f'<line x1="{hx}" x2="{hx}" y1="{middle - 5}" y2="{middle + 5}"/></g>')
        span = f" [{format_number(low)}, {format_number(high)}]" if low is not None and high is not None else ""
        parts.append(f"{row.label}: {format_number(row.value)}{span}")
        label = escape(row.label)
        body.append(
            f'<g class="bar-row">'
            f'<text class="bar-label" x="{label_width - 8}" y="{middle + 4}" text-anchor="end" fill="#374151">'
            f"{label}</text>"
            f'<rect class="bar series-0" x="{left}" y="{top + 5}" width="{round(bar_width, 1)}" '
            f'height="{row_height - 10}" rx="3" fill="#a5b4fc"><title>{label}: {format_number(row.value)}{span}'
            f"</title></rect>{interval}"
            f'<text class="bar-value" x="{width - RIGHT}" y="{middle + 4}" text-anchor="end" fill="#374151">'
            f"{format_number(row.value)}</text></g>")
    description = "; ".join(parts)
    return _svg(width, height, title, description, body, "interval-chart")


def loss_series(events: Iterable[tuple[str, dict[str, Any]]]) -> list[Series]:
    """From a job's (kind, data) events: the training loss per step, and loss measured on whole splits.

    Progress events carry the running loss of each optimiser step; metric events named `*_loss_*`
    (e.g. `eval_loss_before` at step 0, `eval_loss_after` at the last step) become point series.
    """
    steps: dict[float, float] = {}
    measured: dict[str, list[Point]] = {}
    for kind, data in events:
        if kind == "progress":
            step, loss = finite(data.get("step")), finite(data.get("loss"))
            if step is not None and loss is not None:
                steps[step] = loss  # a re-run attempt overwrites the same steps
        elif kind == "metric":
            name, value = data.get("name"), finite(data.get("value"))
            step = finite(data.get("step"))
            if isinstance(name, str) and "loss" in name and value is not None and step is not None:
                split = name.replace("_before", "").replace("_after", "").replace("_loss", "")
                measured.setdefault(f"{split} loss (whole split)", []).append((step, value))
    out = [Series("training loss", tuple(sorted(steps.items())))]
    out += [Series(name, tuple(sorted(points)), "points") for name, points in sorted(measured.items())]
    return out


def loss_chart(events: Iterable[tuple[str, dict[str, Any]]], width: int = 640, height: int = 260) -> Markup:
    """The loss curve of a training job, from its events."""
    return line_chart(loss_series(events), title="Loss by optimiser step", x_label="step", y_label="loss",
                      width=width, height=height, empty="No training steps yet")
