"""Moved to ``rft_plugins.training.job.settings``; this name keeps working."""

from .job.settings import LossType, ResolvedSettings, ScaleRewards

__all__ = ["LossType", "ResolvedSettings", "ScaleRewards"]
