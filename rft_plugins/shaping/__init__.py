"""Reward shapers: turn grades into the advantages the policy loss uses, one small step each."""

from .base import RewardShaper, ShaperConfigError, ShapingBatch, ShapingPipeline, build_shapers

__all__ = ["RewardShaper", "ShaperConfigError", "ShapingBatch", "ShapingPipeline", "build_shapers"]
