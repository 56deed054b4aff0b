"""Which charts a run's metrics make, and which columns go into each (the names are in
docs/training.md, "Metrics"): reward, reward per grader, error-flag rates, time per phase,
learning rate, loss, KL and gradient norm. Drawing them is ``svg.py``'s job."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

from .run_data import Points

#: series colours (Tableau 10 without its grey, which would read as an axis)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
SPLITS = ("train", "valid")
GRADER_REWARD = re.compile(r"^(train|valid)/(.+)_reward_mean$")
FLAG_RATE = re.compile(r"^(train|valid)/(.+)(?<!_pass)_rate$")  # not a grader's pass rate
FLAGS_TITLE = "Error flags"
#: one chart each, when logged: (column, title, y-axis label)
OPTIMISATION_CHARTS = (
    ("learning_rate", "Learning rate", "learning rate"),
    ("loss", "Loss", "policy loss"),
    ("kl", "KL to the reference", "mean per-token KL"),
    ("grad_norm", "Gradient norm", "norm before clipping"),
)


@dataclass(frozen=True)
class Series:
    """One line of a chart."""

    label: str
    points: tuple[tuple[int, float], ...]
    colour: str


@dataclass(frozen=True)
class Chart:
    """A line chart against step. ``y_bounds`` are values the y axis always includes (rewards and
    rates span [0, 1], times start at 0) so that charts of one kind compare at a glance."""

    slug: str  # a stable id for the page (letters, digits, dashes)
    title: str
    y_label: str
    series: tuple[Series, ...]
    y_bounds: tuple[float, ...] = ()


def charts_for(metrics: dict[str, Points]) -> list[Chart]:
    """The charts for these metric columns, in reading order; a chart with no data is left out."""
    charts = [
        _chart("Reward", "mean reward", [(split, metrics.get(f"{split}_reward_mean")) for split in SPLITS], (0.0, 1.0)),
        *_grader_charts(metrics),
        _flag_chart(metrics),
        _chart("Time per phase", "seconds per step", [
            (column.removeprefix("timing/").removesuffix("_s"), points)
            for column, points in sorted(metrics.items()) if column.startswith("timing/")
        ], (0.0,)),
        *(_chart(title, label, [(column, metrics.get(column))]) for column, title, label in OPTIMISATION_CHARTS),
    ]
    return _unique_slugs([chart for chart in charts if chart is not None])


def _chart(
    title: str, y_label: str, columns: Sequence[tuple[str, Points | None]], y_bounds: tuple[float, ...] = ()
) -> Chart | None:
    series = [(label, points) for label, points in columns if points]
    if not series:
        return None
    coloured = tuple(
        Series(label, tuple(points), PALETTE[index % len(PALETTE)]) for index, (label, points) in enumerate(series)
    )
    return Chart(_slug(title), title, y_label, coloured, y_bounds)


def _grader_charts(metrics: dict[str, Points]) -> list[Chart | None]:
    """One chart per grader (the top grader and each ``multi`` sub-grader); the top grader's
    repeats the overall reward and is left out."""
    names = sorted({match.group(2) for match in map(GRADER_REWARD.match, metrics) if match})
    charts = []
    for name in names:
        columns = [(split, metrics.get(f"{split}/{name}_reward_mean")) for split in SPLITS]
        overall = [(split, metrics.get(f"{split}_reward_mean")) for split in SPLITS]
        if columns != overall:
            charts.append(_chart(f"Reward: {name}", "mean reward", columns, (0.0, 1.0)))
    return charts


def _flag_chart(metrics: dict[str, Points]) -> Chart | None:
    """The share of samples raising each error flag, for the flags raised at least once."""
    raised = [
        (column, points) for column, points in sorted(metrics.items())
        if FLAG_RATE.match(column) and any(value for _, value in points)
    ]
    return _chart(FLAGS_TITLE, "share of samples", raised, (0.0, 1.0))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "chart"


def _unique_slugs(charts: list[Chart]) -> list[Chart]:
    """Two graders whose names differ only in punctuation would share an id: number the repeats."""
    seen: dict[str, int] = {}
    unique = []
    for chart in charts:
        count = seen[chart.slug] = seen.get(chart.slug, 0) + 1
        unique.append(chart if count == 1 else replace(chart, slug=f"{chart.slug}-{count}"))
    return unique
