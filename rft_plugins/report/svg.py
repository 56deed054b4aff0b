"""Line charts as inline SVG, drawn here in Python: the report needs no charting library, no
JavaScript and nothing from the network to show its curves. Every text that reaches the markup
(titles, labels: a grader's name comes from someone's job file) is escaped."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from .charts import Chart

WIDTH, HEIGHT = 560, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 44
#: a series with at most this many points gets a marker (with a tooltip) on each
MAX_MARKED_POINTS = 60
GRID_COLOUR, AXIS_COLOUR = "#e4e4e4", "#8a8a8a"


def line_chart(chart: Chart) -> Markup:
    """``chart`` as an ``<svg>`` element: gridlines, ticks, axis labels, one line per series."""
    x_ticks = _ticks(*_span([step for series in chart.series for step, _ in series.points]), integer=True)
    y_ticks = _ticks(*_span([value for series in chart.series for _, value in series.points] + list(chart.y_bounds)))
    plot = _Plot(x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1])
    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(chart.title)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot.width}" height="{plot.height}" fill="#ffffff"/>',
    ]
    for value in y_ticks:
        y = plot.y(value)
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + plot.width}" y2="{y}" stroke="{GRID_COLOUR}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">{_label(value)}</text>')
    for value in x_ticks:
        x = plot.x(value)
        parts.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{TOP + plot.height}" stroke="{GRID_COLOUR}"/>')
        parts.append(f'<text x="{x}" y="{TOP + plot.height + 16}" text-anchor="middle">{_label(value)}</text>')
    parts += [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot.width}" height="{plot.height}" fill="none" stroke="{AXIS_COLOUR}"/>',
        f'<text x="{LEFT + plot.width / 2}" y="{HEIGHT - 6}" text-anchor="middle">step</text>',
        f'<text transform="translate(14 {TOP + plot.height / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(chart.y_label)}</text>",
    ]
    for series in chart.series:
        points = [(plot.x(step), plot.y(value)) for step, value in series.points]
        if len(points) > 1:
            joined = " ".join(f"{x},{y}" for x, y in points)
            parts.append(
                f'<polyline points="{joined}" fill="none" stroke="{series.colour}" stroke-width="2" '
                'stroke-linejoin="round" stroke-linecap="round"/>'
            )
        if len(points) <= MAX_MARKED_POINTS:
            for (x, y), (step, value) in zip(points, series.points):
                parts.append(
                    f'<circle cx="{x}" cy="{y}" r="3.5" fill="{series.colour}">'
                    f"<title>{escape(series.label)}, step {step}: {value:.6g}</title></circle>"
                )
    parts.append("</svg>")
    return Markup("".join(parts))


class _Plot:
    """Data coordinates to pixels inside the plot area."""

    def __init__(self, x_low: float, x_high: float, y_low: float, y_high: float):
        self.width, self.height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        self.x_low, self.x_span = x_low, x_high - x_low
        self.y_low, self.y_span = y_low, y_high - y_low

    def x(self, step: float) -> float:
        return round(LEFT + (step - self.x_low) / self.x_span * self.width, 1)

    def y(self, value: float) -> float:
        return round(TOP + self.height - (value - self.y_low) / self.y_span * self.height, 1)


def _span(values: list[float]) -> tuple[float, float]:
    """The range of ``values``, widened when it is a single value (one step, a constant rate)."""
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def _ticks(low: float, high: float, integer: bool = False, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    raw = (high - low) / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude * 1.0000001)
    if integer:
        step = max(1.0, round(step))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [index * step for index in range(first, last + 1)]


def _label(value: float) -> str:
    """A tick value without floating-point noise (0.6, not 0.6000000000000001)."""
    return f"{value:.4g}"
