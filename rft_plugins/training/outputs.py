"""What a person looks at after ``rft train``: the reward curve and a table of graded samples.

Both are made from files the run already wrote (the CSV metrics, the validation records), so they
can be rebuilt for any run folder, including one that was resumed.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from ..atomic_files import atomic_write_bytes, atomic_write_text
from ..metrics_csv import read_metrics

REWARD_COLUMNS = ("train_reward_mean", "valid_reward_mean")
#: samples shown in the Markdown table (all of them are in samples.jsonl)
MAX_TABLE_ROWS = 200


def plot_reward_curve(csv_path: Path, png_path: Path, title: str = "reward") -> Path:
    """Train and validation mean reward against optimisation step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file
    from matplotlib.figure import Figure

    metrics = read_metrics(csv_path)
    figure = Figure(figsize=(7, 4.2), dpi=100)
    axes = figure.subplots()
    for column, style in zip(REWARD_COLUMNS, ("-", "o-")):
        points = metrics.get(column, [])
        if points:
            steps, values = zip(*points)
            axes.plot(steps, values, style, label=column.replace("_", " "), markersize=4)
    axes.set_xlabel("step")
    axes.set_ylabel("mean reward")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    else:
        axes.text(0.5, 0.5, "no reward logged", ha="center", va="center", transform=axes.transAxes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(Path(png_path), lambda handle: handle.write(buffer.getvalue()))
    return Path(png_path)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):  # chat messages
        return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt if isinstance(m, dict))
    return str(prompt)


def _details(record: dict[str, Any]) -> str:
    parts = [f"{name}={value:.3g}" if isinstance(value, (int, float)) else f"{name}={value}"
             for name, value in (record.get("sub_rewards") or {}).items()]
    errors = record.get("errors") or {}
    flags = [flag for flag, value in errors.items() if value is True]
    if flags:
        parts.append("errors: " + ", ".join(flags))
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Markdown table cell: escaped so that pipes, newlines and HTML cannot break the table."""
    return html.escape(text, quote=False).replace("|", "&#124;").replace("\n", "<br>")


def write_samples(records: Sequence[dict[str, Any]], folder: Path) -> tuple[Path, Path]:
    """``samples.jsonl`` (every validation record) and ``samples.md`` (the last validation's)."""
    folder = Path(folder)
    jsonl = folder / "samples.jsonl"
    markdown = folder / "samples.md"
    atomic_write_text(jsonl, "".join(json.dumps(record, default=str) + "\n" for record in records))
    atomic_write_text(markdown, samples_markdown(records))
    return jsonl, markdown


def _completion_text(record: dict[str, Any]) -> str:
    """The completion's text, then its tool calls as ``name(arguments)``."""
    calls = [call.get("function", {}) for call in record.get("tool_calls") or []]
    shown = [f"{call.get('name', '')}({call.get('arguments', '')})" for call in calls]
    return " ".join([str(record.get("completion", "")), *(f"→ {call}" for call in shown)]).strip()


def samples_markdown(records: Iterable[dict[str, Any]]) -> str:
    """A readable table of the latest validation's samples: prompt, completion, reward, details."""
    records = list(records)
    if not records:
        return "# Validation samples\n\nNo validation ran (no validation file, or no eval step reached).\n"
    last_step = max(int(record.get("step", 0)) for record in records)
    shown = [record for record in records if int(record.get("step", 0)) == last_step]
    rewards = [record["reward"] for record in shown if isinstance(record.get("reward"), (int, float))]
    mean = f"{sum(rewards) / len(rewards):.4f}" if rewards else "n/a"
    lines = [
        "# Validation samples",
        "",
        f"Step {last_step}: {len(shown)} samples, mean reward {mean}. "
        f"Every validation's samples are in samples.jsonl.",
        "",
        "| # | prompt | completion | reward | grader details |",
        "|---|---|---|---|---|",
    ]
    for index, record in enumerate(shown[:MAX_TABLE_ROWS], start=1):
        reward = record.get("reward")
        reward_text = f"{reward:.4f}" if isinstance(reward, (int, float)) else "n/a"
        lines.append(
            f"| {index} | {_cell(_prompt_text(record.get('prompt', '')))} | {_cell(_completion_text(record))} "
            f"| {reward_text} | {_cell(_details(record))} |"
        )
    if len(shown) > MAX_TABLE_ROWS:
        lines.append(f"\n{len(shown) - MAX_TABLE_ROWS} more in samples.jsonl.")
    return "\n".join(lines) + "\n"


class AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, but it continues an existing ``metrics.csv`` instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = sorted(csv.DictReader(handle).fieldnames or [])


class StepsCompleted:
    """Number logged rows by optimisation steps completed (1 after the first step), as OpenAI does.

    Lightning logs a step's metrics under the count of steps before it; the checkpoints and the
    ``rft_on_validation_end`` hooks use the count after it. This makes the logs agree with them.
    A row identical to the one just logged is skipped (``callbacks._log_step_row`` writes a step's
    row before its checkpoint, and Lightning then logs it again).
    """

    #: added to Lightning's step; 0 while the baseline validation before training logs (step 0)
    step_offset = 1

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        row = (step, sorted(metrics.items()))
        if row == getattr(self, "_last_row", None):
            return  # the resume checkpoint wrote this step's row before saving; Lightning repeats it
        self._last_row = row
        super().log_metrics(metrics, None if step is None else step + self.step_offset)  # type: ignore[misc]


@contextlib.contextmanager
def baseline_rows(loggers: Iterable[Any]) -> Iterator[None]:
    """Rows logged inside are step 0's: the validation of the untrained model, before step 1."""
    numbered = [logger for logger in loggers if isinstance(logger, StepsCompleted)]
    for logger in numbered:
        logger.step_offset = 0
    try:
        yield
    finally:
        for logger in numbered:
            logger.step_offset = 1


class ResumableCSVLogger(StepsCompleted, CSVLogger):
    """``metrics.csv`` straight in the run folder, continued (not replaced) by a resumed run."""

    _experiment: ExperimentWriter | None  # an AppendingWriter: set only by ``experiment`` below

    def __init__(self, folder: Path):
        super().__init__(save_dir=str(folder), name="", version="", flush_logs_every_n_steps=10)

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class StepsCompletedTensorBoardLogger(StepsCompleted, TensorBoardLogger):
    """Lightning's TensorBoard logger, with steps numbered like ``metrics.csv``."""


def truncate_metrics(csv_path: Path, last_step: int) -> int:
    """Drop rows logged after ``last_step`` (a killed run's, past its last checkpoint); returns how many.

    The resumed run logs those steps again; keeping both would draw the curve twice.
    """
    path = Path(csv_path)
    if not path.is_file():
        return 0
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        rows = list(reader)
    # a row cut short by the kill has missing (None) cells: drop it along with the later ones
    kept = [
        row for row in rows
        if None not in row and None not in row.values() and row.get("step") and int(float(row["step"])) <= last_step
    ]
    if len(kept) != len(rows):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(path, buffer.getvalue())
    return len(rows) - len(kept)
