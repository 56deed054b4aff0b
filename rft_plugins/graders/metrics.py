"""Reward and error-rate metrics with OpenAI's names, from graded samples.

``train_reward_mean`` / ``valid_reward_mean`` are means of the grader's own reward (before any
shaping), over samples whose reward applies (not None). Per grader: ``<split>/<name>_reward_mean``
for the top grader and, for ``multi``, each sub-grader key. Error rates: ``<split>/<flag>_rate``
for every boolean OpenAI flag, as the share of samples that raised it. Pass rates, for graders
with a verdict (``pass_threshold``, a label model's ``passing_labels``):
``<split>/<name>_pass_rate``, over the samples that got one. ``<split>/graded_samples`` counts the
samples, so that a rate can be turned back into a count (OpenAI's ``_count`` metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .types import BOOLEAN_FLAGS, Grade
from .verdicts import verdict_of


@dataclass
class ScoredSample:
    """What metrics and shapers need of one graded sample; small and picklable (DDP gathers it).

    ``passed`` is the grader's pass verdict (None: it gives none), ``sub_passed`` those of a
    ``multi`` grader's sub-graders, by key.
    """

    reward: float | None
    sub_rewards: dict[str, float | None] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    length: int = 0
    truncated: bool = False
    passed: bool | None = None
    sub_passed: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_grade(cls, grade: Grade, length: int = 0, truncated: bool = False) -> "ScoredSample":
        sub_passed = {key: verdict for key in grade.sub_rewards
                      if (verdict := verdict_of(grade.scores.get(key))) is not None}
        return cls(grade.reward, dict(grade.sub_rewards), grade.flagged, length, truncated,
                   verdict_of(grade.scores), sub_passed)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [value for value in values if value is not None]
    return sum(kept) / len(kept) if kept else None


@dataclass(frozen=True)
class RewardSummary:
    """What every engine reports of a batch of grades (the loop, the Lightning callback, TRL's
    reward functions), computed once: means over the rewards that apply (None: none applies),
    sub-grader means for the keys with at least one, the share of samples with any flag and the
    share with each boolean flag."""

    reward_mean: float | None
    sub_reward_means: dict[str, float | None]
    error_rate: float
    flag_rates: dict[str, float]


def summarize(samples: Sequence[ScoredSample]) -> RewardSummary:
    """The ``RewardSummary`` of ``samples`` (``ScoredSample.from_grade`` turns grades into them)."""
    keys: dict[str, None] = {}
    for sample in samples:
        keys.update(dict.fromkeys(sample.sub_rewards))
    count = max(1, len(samples))
    return RewardSummary(
        reward_mean=_mean(sample.reward for sample in samples),
        sub_reward_means={key: _mean(sample.sub_rewards.get(key) for sample in samples) for key in keys},
        error_rate=sum(1 for sample in samples if sample.flags) / count,
        flag_rates={flag: sum(flag in sample.flags for sample in samples) / count for flag in BOOLEAN_FLAGS},
    )


def reward_metrics(samples: list[ScoredSample], split: str, grader_name: str) -> dict[str, float]:
    """The reward means and error rates of one split (``train`` or ``valid``).

    A mean over samples none of which applies is reported as 0.0 (a metric must be a number).
    """
    summary = summarize(samples)
    metrics: dict[str, float] = {}
    metrics[f"{split}_reward_mean"] = summary.reward_mean or 0.0
    metrics[f"{split}/{grader_name}_reward_mean"] = metrics[f"{split}_reward_mean"]
    for key, mean in summary.sub_reward_means.items():
        metrics[f"{split}/{key}_reward_mean"] = mean or 0.0
    for flag, rate in summary.flag_rates.items():
        metrics[f"{split}/{flag}_rate"] = rate
    metrics[f"{split}/graded_samples"] = float(len(samples))
    metrics.update(pass_rates(samples, split, grader_name))
    return metrics


def pass_rates(samples: list[ScoredSample], split: str, grader_name: str) -> dict[str, float]:
    """``<split>/<name>_pass_rate`` for the grader and each sub-grader that gave verdicts: the
    share of the samples with a verdict that passed (graders without one get no metric)."""
    verdicts: dict[str, list[bool]] = {}
    for sample in samples:
        if sample.passed is not None:
            verdicts.setdefault(grader_name, []).append(sample.passed)
        for key, passed in sample.sub_passed.items():
            verdicts.setdefault(key, []).append(passed)
    return {f"{split}/{name}_pass_rate": sum(found) / len(found) for name, found in verdicts.items()}


def flags_of(grade: Grade) -> dict[str, Any]:
    """The raised flags of a grade and their details, for the samples table."""
    return {flag: value for flag, value in grade.errors.items() if value}
