"""The ``trl`` backend's metrics under the built-in loop's names, from its own grades.

The reward metrics (``train_reward_mean``, ``train/<grader>_reward_mean``, each ``multi`` key,
``train/<flag>_rate``, and the same for ``valid``) come from the grades the reward function
gave, through the function the loop uses (``graders.metrics.reward_metrics``); TRL's own names
for what both engines measure are renamed (``completions/mean_length`` is
``completion_length_mean``, ...); the step's phases are timed as ``timing/*_s``. The renamed row
replaces TRL's in the ``logs`` every logger sees (this callback runs first), and is written to
``metrics.csv``; what only TRL measures (``entropy``, ``frac_reward_zero_std``, ...) keeps its
TRL name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rft_plugins.graders.metrics import ScoredSample, flags_of, reward_metrics
from rft_plugins.graders.types import Grade, Sample

#: TRL's name -> ours, for what both engines measure
RENAMED = {
    "loss": "loss", "grad_norm": "grad_norm", "learning_rate": "learning_rate", "kl": "kl",
    "clip_ratio/region_mean": "clip_ratio", "completions/mean_length": "completion_length_mean",
    "completions/clipped_ratio": "completion_truncated_rate",
}
#: the step's phases, as the built-in loop names them
PHASES = ("sampling", "grading", "grading_wait", "training", "full_iteration")
#: TRL's last log of a run: a summary, not a step
SUMMARY_KEYS = ("train_runtime", "train_loss")


def _trl_reward_metric(name: str) -> bool:
    """TRL's and the adapter's reward names, which ``reward_metrics`` gives under ours."""
    return name == "reward" or (name.startswith("rewards/") and name.endswith(("/mean", "/error_rate")))


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


@dataclass
class GradeLog:
    """The grades of the reward function since the last log row, by split (``train``, ``valid``),
    and the validation records for ``samples.jsonl``."""

    train: list[ScoredSample] = field(default_factory=list)
    valid: list[ScoredSample] = field(default_factory=list)
    pending_records: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, split: str, grades: list[Grade], samples: list[Sample], rows: list[dict[str, Any]],
            lengths: list[int], truncated: list[bool]) -> None:
        """Keep one reward call's grades (``rows``: the dataset rows, one per sample)."""
        for grade, sample, row, length, cut in zip(grades, samples, rows, lengths, truncated):
            getattr(self, split).append(ScoredSample.from_grade(grade, length, cut))
            if split == "valid":
                self.pending_records.append({
                    "prompt": _message_text(row["messages"][-1]), "completion": sample.output_text,
                    "tool_calls": sample.output_tools, "reward": grade.reward, "sub_rewards": dict(grade.sub_rewards),
                    "errors": flags_of(grade),
                })

    def take(self, split: str) -> list[ScoredSample]:
        """The grades of ``split`` since the last call."""
        taken = getattr(self, split)
        setattr(self, split, [])
        return taken

    def close_validation(self, step: int) -> list[dict[str, Any]]:
        """The records of the validation that just ended, numbered with its step, kept for the run."""
        samples = [{"step": step, **record} for record in self.pending_records]
        self.pending_records = []
        self.records.extend(samples)
        return samples


class PhaseClock:
    """Seconds of each phase of the optimisation steps since the last log row."""

    def __init__(self) -> None:
        self.current = {"sampling": 0.0, "grading": 0.0}
        self.steps: list[dict[str, float]] = []
        self._started = 0.0

    def begin(self) -> None:
        self.current = {"sampling": 0.0, "grading": 0.0}
        self._started = time.perf_counter()

    def end(self) -> None:
        total = time.perf_counter() - self._started
        sampling, grading = self.current["sampling"], self.current["grading"]
        self.steps.append({"sampling": sampling, "grading": grading, "grading_wait": grading,  # TRL grades in line
                           "training": total - sampling - grading, "full_iteration": total})

    def take(self) -> dict[str, float]:
        """Each phase's mean over the steps since the last call, as ``timing/<phase>_s``."""
        steps, self.steps = self.steps, []
        if not steps:
            return {}
        return {f"timing/{phase}_s": sum(step[phase] for step in steps) / len(steps) for phase in PHASES}


def training_row(logs: dict[str, Any], grades: list[ScoredSample], grader_name: str, timing: dict[str, float],
                 beta: float) -> dict[str, Any]:
    """One training log row under our names: the reward metrics, TRL's renamed, the timing; what
    only TRL measures kept as it is."""
    row = {name: value for name, value in logs.items() if name not in RENAMED and not _trl_reward_metric(name)}
    row.update({ours: logs[name] for name, ours in RENAMED.items() if name in logs})
    if beta == 0:
        row.setdefault("kl", 0.0)  # TRL leaves it out without a KL term; the loop logs 0
    if grades:
        row.update(reward_metrics(grades, "train", grader_name))
    row.update(timing)
    return row


def memory_metrics() -> dict[str, float]:
    """Peak GPU memory, as the loop logs it (nothing on a CPU)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"memory/peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "memory/peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30}

