"""``events.jsonl``: a run's metrics as OpenAI's fine-tuning job events, one line per step.

Tooling written for OpenAI's RFT jobs reads ``GET /fine_tuning/jobs/{id}/events``: objects of
``type: "metrics"`` whose ``data`` holds ``scores`` (the reward means, overall and per grader),
``errors`` (per grader, ``train_<flag>_mean`` and ``_count`` for each error flag) and ``timing``
(``step.sampling``, ``step.training``, ``step.eval``, ``step.full_iteration``), as the RFT guide's
"Training metrics" appendix shows them. This callback writes the same objects from the metrics
either engine logs (``EventsFile``; ``OpenAIEvents`` feeds it from the Lightning loop, the ``trl``
backend from TRL's logs), so that such tooling reads our runs.

Choices where our loop differs: the per-grader entries are a ``multi`` grader's sub-graders by
key (the names its formula and ``sub_rewards`` use), or the grader itself; error flags are
counted for the grader as a whole (a ``multi`` passes its sub-graders' flags up); ``eval`` is the
wall time of the validation that followed the step (0 without one) and ``full_iteration``
includes it; grader latency and token usage are not reported.

A step's line is written when the step ends and rewritten once with the validation that follows
it, each time before the resume checkpoint is saved (the callback comes first), so a resumed
run's file holds every step once: lines past the checkpoint's step are dropped when it starts.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from ..atomic_files import atomic_write_text
from ..graders.config import grader_name
from ..graders.types import BOOLEAN_FLAGS

EVENTS_FILE = "events.jsonl"
#: our metric -> OpenAI's ``timing.step`` field
STEP_TIMES = {"sampling": "timing/sampling_s", "training": "timing/training_s"}


def event_graders(grader: dict[str, Any]) -> list[dict[str, str]]:
    """The graders OpenAI's events list: a multi grader's sub-graders (by key), else the grader."""
    subs = grader.get("graders") if grader.get("type") == "multi" else None
    if isinstance(subs, dict):
        return [{"name": key, "type": str(sub.get("type"))} for key, sub in subs.items() if isinstance(sub, dict)]
    return [{"name": grader_name(grader), "type": str(grader.get("type"))}]


def _split_scores(metrics: dict[str, float], split: str, name: str) -> dict[str, float]:
    value = metrics.get(f"{split}/{name}_reward_mean")
    return {} if value is None else {f"{split}_reward_mean": value}


def _split_errors(metrics: dict[str, float], split: str) -> dict[str, float]:
    """``<split>_<flag>_mean`` (the share of samples) and ``_count`` (how many) for every flag."""
    samples = metrics.get(f"{split}/graded_samples")
    errors: dict[str, float] = {}
    for flag in BOOLEAN_FLAGS:
        rate = metrics.get(f"{split}/{flag}_rate")
        if rate is None:
            continue
        errors[f"{split}_{flag}_mean"] = rate
        if samples is not None:
            errors[f"{split}_{flag}_count"] = float(round(rate * samples))
    return errors


def metrics_event(
    step: int, total_steps: int, metrics: dict[str, float], eval_seconds: float | None, grader: dict[str, Any]
) -> dict[str, Any]:
    """One ``fine_tuning.job.event`` of ``type: metrics`` from the metrics logged at ``step``
    (train ones, and valid ones when a validation followed it)."""
    splits = [split for split in ("train", "valid") if f"{split}_reward_mean" in metrics]
    scores: dict[str, Any] = {"graders": []}
    for entry in event_graders(grader):
        scores["graders"].append({**entry, **{k: v for s in splits for k, v in _split_scores(metrics, s, entry["name"]).items()}})
    for split in splits:
        scores[f"{split}_reward_mean"] = metrics[f"{split}_reward_mean"]
    top = {"name": grader_name(grader), "type": str(grader.get("type"))}
    errors = {"graders": [{**top, **{k: v for s in splits for k, v in _split_errors(metrics, s).items()}}]}
    timing = {name: metrics.get(column, 0.0) for name, column in STEP_TIMES.items()}
    timing["eval"] = eval_seconds or 0.0
    timing["full_iteration"] = metrics.get("timing/full_iteration_s", 0.0) + timing["eval"]
    data: dict[str, Any] = {"step": step, "total_steps": total_steps, "scores": scores, "errors": errors,
                            "timing": {"step": timing}}
    message = f"Step {step}/{total_steps}"
    if "train" in splits:
        data["train_mean_reward"] = metrics["train_reward_mean"]
        data["mean_unresponsive_rewards"] = metrics.get("train/unresponsive_reward_error_rate", 0.0)
        if "completion_length_mean" in metrics:
            data["completion_tokens_mean"] = metrics["completion_length_mean"]
        message += f", train mean reward={metrics['train_reward_mean']:.2f}"
    if "valid" in splits:
        data["full_valid_mean_reward"] = metrics["valid_reward_mean"]
        data["full_valid_mean_parse_error"] = metrics.get("valid/sample_parse_error_rate", 0.0)
        message += (f", full validation mean reward={metrics['valid_reward_mean']:.2f}, full validation mean "
                    f"parse error={data['full_valid_mean_parse_error']:.2f}")
    return {"object": "fine_tuning.job.event", "id": f"ftevent-{uuid.uuid4().hex[:24]}",
            "created_at": int(time.time()), "level": "info", "message": message, "data": data, "type": "metrics"}


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["data"]["step"])
    except (ValueError, KeyError, TypeError):
        return None


class EventsFile:
    """``events.jsonl`` as a run writes it, whatever the engine: a line per step, the step's
    validation merged into its line (step 0: the baseline before training), lines past a resumed
    run's checkpoint dropped when it starts. Main process only."""

    def __init__(self, path: Path, grader: dict[str, Any], total_steps: int):
        self.path = Path(path)
        self.grader = grader
        self.total_steps = total_steps
        self._step: int | None = None  # the step of the file's last line
        self._metrics: dict[str, float] = {}
        self._offset = 0  # where the last line starts

    def start(self, steps_done: int) -> None:
        """Keep the lines of the steps done (a resumed run's, up to its checkpoint); drop the rest."""
        kept = []
        if self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if (step := _step_of(line)) is not None and step <= steps_done]
        atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))
        self._step = None

    def train_step(self, step: int, metrics: dict[str, float]) -> None:
        """The line of a step just trained (its train metrics)."""
        self._write(step, metrics, eval_seconds=None, new_line=True)

    def validation(self, step: int, metrics: dict[str, float], eval_seconds: float) -> None:
        """A validation's metrics, joined to its step's line (a line of its own at step 0)."""
        same_step = self._step == step
        self._write(step, {**(self._metrics if same_step else {}), **metrics}, eval_seconds, new_line=not same_step)

    def _write(self, step: int, metrics: dict[str, float], eval_seconds: float | None, new_line: bool) -> None:
        """Append the step's line, or replace the last line (the same step, now validated)."""
        event = metrics_event(step, self.total_steps, metrics, eval_seconds, self.grader)
        line = (json.dumps(event) + "\n").encode()
        with self.path.open("r+b" if self.path.exists() else "w+b") as handle:
            if new_line:
                self._offset = handle.seek(0, 2)
            handle.seek(self._offset)
            handle.truncate()
            handle.write(line)
        self._step, self._metrics = step, metrics


class OpenAIEvents(Callback):
    """Writes ``events.jsonl`` in the run folder from the Lightning loop's metrics (main process only)."""

    def __init__(self, path: Path, grader: dict[str, Any]):
        self.path = Path(path)
        self.grader = grader
        self.file: EventsFile | None = None
        self._eval_started = 0.0

    def _events(self, trainer: Trainer) -> EventsFile | None:
        """The file, in the main process (made by the first validation or training, whichever comes first)."""
        if self.file is None and trainer.is_global_zero:
            self.file = EventsFile(self.path, self.grader, int(trainer.max_steps))
        return self.file

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        events = self._events(trainer)
        if events is not None:
            events.start(trainer.global_step)  # keeps a step-0 baseline validated before fit

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any) -> None:
        events = self._events(trainer)
        if events is not None:
            train = {name: float(value) for name, value in trainer.callback_metrics.items()
                     if not name.startswith("valid") and value.numel() == 1}
            events.train_step(trainer.global_step, train)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_started = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The validation's metrics join its step's line (step 0: the baseline before training)."""
        events = self._events(trainer)
        if trainer.state.fn not in ("fit", "validate") or trainer.sanity_checking or events is None:
            return
        valid = {name: float(value) for name, value in trainer.callback_metrics.items()
                 if name.startswith("valid") and value.numel() == 1}
        events.validation(trainer.global_step, valid, time.perf_counter() - self._eval_started)
