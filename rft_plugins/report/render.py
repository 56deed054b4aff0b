"""``report.html``: one self-contained page rendered from ``RunData`` with a jinja2 template
(autoescaped: completions are hostile text). Styles and the sample browser's few lines of script
are inlined from package files and allowed by their hashes in the page's Content-Security-Policy,
so the page loads nothing from anywhere and a script smuggled into it would not run."""

from __future__ import annotations

import base64
import hashlib
import math
import shlex
from importlib.resources import files
from typing import Any

import jinja2
from markupsafe import Markup

from .. import __version__
from .charts import FLAGS_TITLE, charts_for
from .run_data import RunData
from .samples import best_samples, most_improved, worst_samples
from .svg import line_chart

#: the page template, its style and its script: package data files beside this module
TEMPLATES = files(__package__)
#: run settings shown in the header, when the run recorded them (run.json's plan and settings)
SHOWN_SETTINGS = (
    "total_steps", "batch_size", "num_generations", "eval_interval", "eval_samples", "learning_rate",
    "lr_scheduler_type", "loss_type", "beta", "temperature", "max_completion_length", "seed",
)


def render_report(run: RunData) -> str:
    """The whole page as one string."""
    style = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters["number"] = _number
    template = environment.from_string((TEMPLATES / "report.html.j2").read_text(encoding="utf-8"))
    charts = charts_for(run.metrics)
    return template.render(
        run=run,
        title="/".join(run.folder.resolve().parts[-2:]),  # "runs/quickstart", "demo/run"
        version=__version__,
        rebuild=f"rft report {shlex.quote(str(run.folder))}",
        overview=_overview(run),
        settings=_settings(run.record),
        charts=[(chart, line_chart(chart)) for chart in charts],
        flags_raised=any(chart.title == FLAGS_TITLE for chart in charts),
        best=best_samples(run.last_validation),
        worst=worst_samples(run.last_validation),
        improved=most_improved(run.first_validation, run.last_validation),
        style=Markup(style),
        script=Markup(script),
        content_security_policy=(
            f"default-src 'none'; script-src {_source_hash(script)}; style-src {_source_hash(style)}; "
            "base-uri 'none'; form-action 'none'"
        ),
    )


def _source_hash(text: str) -> str:
    """A CSP source allowing exactly this inline ``<script>`` or ``<style>`` body."""
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


def _number(value: Any, digits: int = 4) -> str:
    """A metric for people: ``n/a`` for what is missing or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _nested(data: Any, *keys: str) -> Any:
    """``data[key1][key2]...``, or None where a level is missing or not a mapping (run.json may be
    from another version, or damaged)."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _last(run: RunData, column: str) -> tuple[int, float] | None:
    points = run.metrics.get(column)
    return points[-1] if points else None


def _overview(run: RunData) -> list[tuple[str, str]]:
    """The figures a reader wants first: steps, validation reward first -> last and best, time."""
    rows: list[tuple[str, str]] = []
    model = _nested(run.record, "job", "model")
    if model is not None:
        rows.append(("model", str(model)))
    grader = _nested(run.record, "job", "method", "reinforcement", "grader")
    if isinstance(grader, dict):
        rows.append(("grader", f"{grader.get('name', '?')} ({grader.get('type', '?')})"))
    steps = [step for points in run.metrics.values() for step, _ in points]
    total = run.summary.get("total_steps", _nested(run.record, "plan", "total_steps"))
    if steps:
        rows.append(("steps", f"{max(steps)}" + (f" of {total}" if total is not None else "")))
    if run.summary.get("stopped_early"):
        rows.append(("stopped early", "yes (no validation gain within early_stopping_patience)"))
    if run.summary.get("resumed_from_step") is not None:
        rows.append(("resumed from step", str(run.summary["resumed_from_step"])))
    valid = run.metrics.get("valid_reward_mean", [])
    if valid:
        (first_step, first), (last_step, last) = valid[0], valid[-1]
        best_step, best = max(valid, key=lambda point: (point[1], point[0]))
        rows.append(("valid reward", f"{_number(first)} at step {first_step} → {_number(last)} at step {last_step}"))
        rows.append(("best valid reward", f"{_number(best)} at step {best_step}"))
    train = _last(run, "train_reward_mean")
    if train:
        rows.append(("train reward", f"{_number(train[1])} at step {train[0]}"))
    if "seconds" in run.summary:
        rows.append(("wall time", f"{_number(run.summary['seconds'], 3)} s"))
    elif run.metrics.get("timing/full_iteration_s"):
        seconds = sum(value for _, value in run.metrics["timing/full_iteration_s"])
        rows.append(("training steps took", f"{_number(seconds, 3)} s (validation not included)"))
    return rows


def _settings(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's main settings, from ``run.json`` (the resolved plan wins over the job's inputs)."""
    values: dict[str, Any] = {}
    for part in ("settings", "plan"):
        if isinstance(record.get(part), dict):
            values.update(record[part])
    return [(name, str(values[name])) for name in SHOWN_SETTINGS if values.get(name) is not None]
