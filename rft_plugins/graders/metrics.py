"""Reward and error-rate metrics with OpenAI's names, from graded samples.

``train_reward_mean`` / ``valid_reward_mean`` are means of the grader's own reward (before any
shaping), over samples whose reward applies (not None). Per grader: ``<split>/<name>_reward_mean``
for the top grader and, for ``multi``, each sub-grader key. Error rates: ``<split>/<flag>_rate``
for every boolean OpenAI flag, as the share of samples that raised it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .types import BOOLEAN_FLAGS, Grade


@dataclass
class ScoredSample:
    """What metrics and shapers need of one graded sample; small and picklable (DDP gathers it)."""

    reward: float | None
    sub_rewards: dict[str, float | None] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    length: int = 0
    truncated: bool = False

    @classmethod
    def from_grade(cls, grade: Grade, length: int = 0, truncated: bool = False) -> "ScoredSample":
        return cls(grade.reward, dict(grade.sub_rewards), grade.flagged, length, truncated)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [value for value in values if value is not None]
    return sum(kept) / len(kept) if kept else None


def reward_metrics(samples: list[ScoredSample], split: str, grader_name: str) -> dict[str, float]:
    """The reward means and error rates of one split (``train`` or ``valid``).

    A mean over samples none of which applies is reported as 0.0 (a metric must be a number).
    """
    metrics: dict[str, float] = {}
    overall = _mean(sample.reward for sample in samples)
    metrics[f"{split}_reward_mean"] = 0.0 if overall is None else overall
    metrics[f"{split}/{grader_name}_reward_mean"] = metrics[f"{split}_reward_mean"]
    keys: dict[str, None] = {}
    for sample in samples:
        keys.update(dict.fromkeys(sample.sub_rewards))
    for key in keys:
        mean = _mean(sample.sub_rewards.get(key) for sample in samples)
        metrics[f"{split}/{key}_reward_mean"] = 0.0 if mean is None else mean
    count = max(1, len(samples))
    for flag in BOOLEAN_FLAGS:
        metrics[f"{split}/{flag}_rate"] = sum(flag in sample.flags for sample in samples) / count
    return metrics


def flags_of(grade: Grade) -> dict[str, Any]:
    """The raised flags of a grade and their details, for the samples table."""
    return {flag: value for flag, value in grade.errors.items() if value}
