"""``rft eval``: a model's reward on a data file before (or after) training, without the training stack's Lightning."""

from .run import EvalResult, EvalSettings, evaluate

__all__ = ["EvalResult", "EvalSettings", "evaluate"]
