"""``rft eval``'s tables: the figures a person reads first, then the samples behind them."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .run import EvalResult

#: characters of a prompt or completion shown in the best / worst tables
SHOWN_CHARACTERS = 120


def _short(text: Any) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def _completion(record: dict[str, Any]) -> str:
    calls = [f"→ {call['function']['name']}({call['function']['arguments']})" for call in record.get("tool_calls", [])]
    return _short(" ".join([record["completion"], *calls]))


def render(result: EvalResult, console: Console) -> None:
    """Summary, reward histogram, per-grader means, error flags, best and worst samples."""
    summary = result.summary()
    settings = result.settings
    overview = Table(title=f"rft eval: {settings.model}", show_header=False)
    overview.add_row("prompts x samples", f"{summary['rows']} x {settings.samples} = {summary['samples']}")
    overview.add_row("reward mean ± std", f"{summary['reward_mean']:.4f} ± {summary['reward_std']:.4f}"
                     f" ({summary['graded']} graded)")
    overview.add_row(f"pass rate (reward ≥ {summary['pass_threshold']:g})", f"{summary['pass_rate']:.1%}")
    seconds = summary["seconds"]
    overview.add_row("time", f"load {seconds['load']:.1f} s, sampling {seconds['sampling']:.1f} s, "
                             f"grading {seconds['grading']:.1f} s")
    console.print(overview)

    histogram = Table(title="reward histogram")
    histogram.add_column("reward")
    histogram.add_column("samples", justify="right")
    histogram.add_column("")
    largest = max(summary["histogram"].values(), default=0) or 1
    for span, count in summary["histogram"].items():
        histogram.add_row(span, str(count), "█" * round(30 * count / largest))
    console.print(histogram)

    graders = Table(title="per grader")
    graders.add_column("grader")
    graders.add_column("reward mean", justify="right")
    for name, value in summary["graders"].items():
        graders.add_row(name, f"{value:.4f}")
    console.print(graders)

    if summary["error_rates"]:
        errors = Table(title="error flags")
        errors.add_column("flag")
        errors.add_column("share of samples", justify="right")
        for flag, rate in summary["error_rates"].items():
            errors.add_row(flag, f"{rate:.1%}")
        console.print(errors)
    else:
        console.print("no error flags raised")

    best, worst = result.extremes()
    for title, records in (("best samples", best), ("worst samples", worst)):
        table = Table(title=title)
        for column in ("row", "reward", "prompt", "completion"):
            table.add_column(column)
        for record in records:
            table.add_row(str(record["index"]), f"{record['reward']:.3f}", _short(record["prompt"]), _completion(record))
        console.print(table)
