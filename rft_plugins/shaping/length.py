"""``overlong_penalty``: DAPO's soft overlong punishment, added to the reward.

With ``L = max_length`` and ``c = cache``: no penalty up to ``L - c`` tokens, then a linear ramp
to -1 at ``L`` (TRL's ``get_soft_overlong_punishment``), times ``factor``. A completion cut off
at ``max_completion_length`` therefore costs the full ``factor``. None rewards stay None.
"""

from __future__ import annotations

from typing import Any

import pydantic

from .base import ShaperConfigError, ShapingBatch, Stage, parse_options


class OverlongPenaltyOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    cache: int = pydantic.Field(ge=1, description="length of the ramp, in tokens")
    max_length: int | None = pydantic.Field(None, ge=1, description="default: max_completion_length")
    factor: float = pydantic.Field(1.0, ge=0)


def soft_overlong_penalty(length: int, max_length: int, cache: int) -> float:
    """0 up to ``max_length - cache`` tokens, linear down to -1 at ``max_length``, -1 beyond."""
    if length <= max_length - cache:
        return 0.0
    if length <= max_length:
        return (max_length - cache - length) / cache
    return -1.0


class OverlongPenalty:
    """Adds ``factor`` x the soft overlong penalty of each completion's length to its reward."""

    stage: Stage = "rewards"
    produces_advantages = False

    def __init__(self, config: dict[str, Any], settings: Any):
        options = parse_options(OverlongPenaltyOptions, config, "")
        self.max_length = options.max_length or settings.max_completion_length
        if options.cache > self.max_length:
            raise ShaperConfigError("cache", f"must not exceed max_length ({self.max_length})")
        self.cache = options.cache
        self.factor = options.factor

    def shape(self, batch: ShapingBatch) -> ShapingBatch:
        rewards = [
            None if reward is None else reward + self.factor * soft_overlong_penalty(length, self.max_length, self.cache)
            for reward, length in zip(batch.rewards, batch.completion_lengths)
        ]
        return batch.replace(rewards=rewards)
