"""``group_advantages``: GRPO's group-relative advantage, and Dr. GRPO's without the std.

Matches TRL's ``GRPOTrainer``: ``A = r - mean(group)``, divided by ``std + 1e-4`` unless
``scale_rewards`` is ``none`` (Dr. GRPO). With ``batch``, the mean is still per group but the
std is taken over the whole batch. The std is the sample std (Bessel's correction). Rewards of
None are left out of means and stds and get advantage 0, as do groups with a single scored
sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pydantic

from .base import ShapingBatch, Stage, parse_options

if TYPE_CHECKING:  # torch is imported where it is used, so loading plugins stays light
    import torch


class GroupAdvantagesOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    scale_rewards: Literal["group", "batch", "none"] | None = None
    epsilon: float = pydantic.Field(1e-4, gt=0, description="added to the std before dividing")


def _nanstd(values: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sample std ignoring NaNs (NaN where fewer than two values), as TRL's ``nanstd``."""
    import torch

    mean = torch.nanmean(values, dim=dim, keepdim=True)
    count = (~torch.isnan(values)).sum(dim=dim, keepdim=True)
    variance = torch.nanmean((values - mean) ** 2, dim=dim, keepdim=True) * count / (count - 1)
    variance = torch.where(count > 1, variance, torch.full_like(variance, float("nan")))
    std = variance.sqrt()
    return std if dim is None else std.squeeze(dim)


class GroupAdvantages:
    """Group-relative advantages; ``scale_rewards`` defaults to the job's ``trainer.scale_rewards``."""

    stage: Stage = "rewards"
    produces_advantages = True

    def __init__(self, config: dict[str, Any], settings: Any):
        options = parse_options(GroupAdvantagesOptions, config, "")
        self.scale = options.scale_rewards or settings.scale_rewards
        self.epsilon = options.epsilon

    def shape(self, batch: ShapingBatch) -> ShapingBatch:
        import torch

        rewards = torch.tensor(
            [float("nan") if r is None else r for r in batch.rewards], dtype=torch.float64
        ).view(-1, batch.group_size)
        mean = torch.nanmean(rewards, dim=1, keepdim=True)
        advantages = rewards - mean
        if self.scale == "group":
            advantages = advantages / (_nanstd(rewards, dim=1).unsqueeze(1) + self.epsilon)
        elif self.scale == "batch":
            advantages = advantages / (_nanstd(rewards.flatten()) + self.epsilon)
        advantages = torch.nan_to_num(advantages.flatten(), nan=0.0)
        return batch.replace(advantages=[float(a) for a in advantages])
