"""Rollout samplers: turn tokenised prompts into G completions each, with their token log-probs.

The loop talks to a sampler only through ``Sampler.sample`` and ``RolloutBatch``, so a sampler
backed by another engine (vLLM, an inference server) plugs in by name without loop changes.
"""

from ..extras import require_extra

require_extra("train", "rollout sampling (rft_plugins.sampling)")

# after the check: these import torch
from .base import RolloutBatch, Sampler, SamplerConfigError, SamplingParams, build_sampler  # noqa: E402
from .logprobs import completion_logprobs  # noqa: E402

__all__ = ["RolloutBatch", "Sampler", "SamplerConfigError", "SamplingParams", "build_sampler", "completion_logprobs"]
