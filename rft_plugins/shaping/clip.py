"""``clip``: bound rewards (before advantages) or advantages (after), e.g. against outliers."""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from .base import ShaperConfigError, ShapingBatch, parse_options


class ClipOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    target: Literal["rewards", "advantages"] = "advantages"
    min: float | None = None
    max: float | None = None


def _clip(value: float, low: float | None, high: float | None) -> float:
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


class Clip:
    """Clamps each reward or advantage (``target``) into ``[min, max]``; None rewards stay None."""

    produces_advantages = False

    def __init__(self, config: dict[str, Any], settings: Any):
        options = parse_options(ClipOptions, config, "")
        if options.min is None and options.max is None:
            raise ShaperConfigError("min", "set min, max or both")
        if options.min is not None and options.max is not None and options.min > options.max:
            raise ShaperConfigError("min", f"{options.min} is greater than max {options.max}")
        self.stage = options.target
        self.low, self.high = options.min, options.max

    def shape(self, batch: ShapingBatch) -> ShapingBatch:
        if self.stage == "rewards":
            rewards = [None if r is None else _clip(r, self.low, self.high) for r in batch.rewards]
            return batch.replace(rewards=rewards)
        assert batch.advantages is not None  # the pipeline orders advantage-stage shapers after them
        return batch.replace(advantages=[_clip(a, self.low, self.high) for a in batch.advantages])
