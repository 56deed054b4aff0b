"""``grader_weights``: the reward as a weighted sum of sub-rewards (TRL's ``reward_weights``).

Keys are a ``multi`` grader's sub-grader keys, or the grader's name for a single grader. The
weighted sum replaces the grader's own reward (for ``multi``, its ``calculate_output``). Sub-
rewards of None are skipped; a sample with none left is not applicable (None), as in TRL.
"""

from __future__ import annotations

from typing import Any

import pydantic

from ..graders.config import grader_name
from .base import ShaperConfigError, ShapingBatch, Stage, parse_options


class GraderWeightsOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    weights: dict[str, float] = pydantic.Field(min_length=1)


def known_keys(grader: dict[str, Any]) -> list[str]:
    """The names a weight may refer to: a multi grader's keys, else the grader's own name."""
    if grader.get("type") == "multi" and isinstance(grader.get("graders"), dict):
        return list(grader["graders"])
    return [grader_name(grader)]


class GraderWeights:
    """Replaces each reward with the weighted sum of its sub-rewards (``weights`` by key)."""

    stage: Stage = "rewards"
    produces_advantages = False

    def __init__(self, config: dict[str, Any], settings: Any):
        self.weights = parse_options(GraderWeightsOptions, config, "").weights
        self.keys = known_keys(settings.grader)
        unknown = sorted(set(self.weights) - set(self.keys))
        if unknown:
            raise ShaperConfigError(
                f"weights.{unknown[0]}", f"the grader has no such key; known: {', '.join(self.keys)}"
            )

    def shape(self, batch: ShapingBatch) -> ShapingBatch:
        rewards: list[float | None] = []
        for reward, subs in zip(batch.rewards, batch.sub_rewards):
            parts = subs if subs else {self.keys[0]: reward}
            terms = [w * value for k, w in self.weights.items() if (value := parts.get(k)) is not None]
            rewards.append(sum(terms) if terms else None)
        return batch.replace(rewards=rewards)
