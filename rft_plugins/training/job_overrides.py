"""Moved to ``rft_plugins.training.job.overrides``; this name keeps working."""

from .job.overrides import OverrideProblem, apply_overrides, parse_override

__all__ = ["OverrideProblem", "apply_overrides", "parse_override"]
