"""Rollout samplers: turn tokenised prompts into G completions each, with their token log-probs.

The loop talks to a sampler only through ``Sampler.sample`` and ``RolloutBatch``, so a sampler
backed by another engine (vLLM, an inference server) plugs in by name without loop changes.
"""

from .base import RolloutBatch, Sampler, SamplerConfigError, SamplingParams, build_sampler
from .logprobs import completion_logprobs

__all__ = ["RolloutBatch", "Sampler", "SamplerConfigError", "SamplingParams", "build_sampler", "completion_logprobs"]
