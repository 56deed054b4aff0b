"""The sampler protocol: what a rollout sampler receives, what it returns, how it is built.

A sampler plugin registers a factory ``factory(tokenizer, options: dict) -> Sampler`` through
``rft_register_samplers``; ``options`` is the job's ``trainer.sampler_options``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from ..errors import SamplerConfigError
from ..registry import find, rejected_options


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: G completions per prompt, at most ``max_new_tokens`` tokens each.

    ``response_format`` is the job's OpenAI response format (``json_schema`` / ``json_object``):
    a sampler constrains decoding to it, so every finished completion parses.
    """

    num_generations: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    response_format: dict[str, Any] | None = None


@dataclass
class RolloutBatch:
    """G completions for each of B prompts, grouped: rows ``i*G .. i*G+G-1`` answer prompt ``i``.

    Tensors have ``N = B * G`` rows. Prompts are left-padded, completions right-padded.
    ``completion_mask`` is 1 on generated tokens up to and including the first EOS.
    ``logprobs`` are the per-token log-probs of the completion tokens under the sampling policy
    with logits divided by the temperature (top-p / top-k ignored, as TRL computes them), 0 on
    padding; None when a sampler cannot give them (the loop then computes them itself).
    ``truncated`` marks completions that hit ``max_new_tokens`` without an EOS. ``tool_calls``
    holds each completion's tool calls in OpenAI's shape when the sampler parsed them itself (an
    engine's tool parser); None lets the loop parse them (``rft_plugins.sampling.tool_calls``).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    logprobs: torch.Tensor | None
    texts: list[str]
    truncated: list[bool]
    num_generations: int
    tool_calls: list[list[dict[str, Any]]] | None = None

    @property
    def completion_lengths(self) -> list[int]:
        """Tokens per completion, EOS included."""
        return [int(n) for n in self.completion_mask.sum(-1).tolist()]

    def validate(self, num_prompts: int) -> "RolloutBatch":
        """Check the shapes a third-party sampler returned, so a mistake fails here, not in the loss."""
        rows = num_prompts * self.num_generations
        problems = []
        for name in ("prompt_ids", "prompt_mask"):
            if tuple(getattr(self, name).shape[:1]) != (rows,):
                problems.append(f"{name} has shape {tuple(getattr(self, name).shape)}, expected ({rows}, P)")
        for name in ("completion_ids", "completion_mask", "logprobs"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != tuple(self.completion_ids.shape):
                problems.append(f"{name} has shape {tuple(value.shape)}, not that of completion_ids")
        if self.completion_ids.shape[0] != rows:
            problems.append(f"completion_ids has {self.completion_ids.shape[0]} rows, expected {rows}")
        if self.prompt_ids.shape != self.prompt_mask.shape:
            problems.append("prompt_mask does not match prompt_ids")
        if len(self.texts) != rows or len(self.truncated) != rows:
            problems.append(f"{len(self.texts)} texts and {len(self.truncated)} truncated flags, expected {rows}")
        if self.tool_calls is not None and len(self.tool_calls) != rows:
            problems.append(f"{len(self.tool_calls)} lists of tool calls, expected {rows}")
        if problems:
            raise ValueError("the sampler returned a malformed RolloutBatch: " + "; ".join(problems))
        return self


@runtime_checkable
class Sampler(Protocol):
    """Generates completions for the loop.

    Optional methods the loop calls when present: ``update_weights(model)`` after each
    optimisation step (a separate inference engine syncs the new weights there) and ``close()``
    at the end of training.
    """

    def sample(self, model: Any, prompts: list[list[int]], params: SamplingParams) -> RolloutBatch:
        """Sample ``params.num_generations`` completions for each tokenised prompt."""
        ...


def build_sampler(name: str, tokenizer: Any, options: dict[str, Any] | None = None) -> Sampler:
    """Build the registered sampler ``name``; an unknown name lists the known ones.

    A factory that raises rejects its options: ``SamplerConfigError`` names the option.
    """
    registration = find("samplers", name, "trainer.sampler", SamplerConfigError)
    rejected = rejected_options(SamplerConfigError, "trainer.sampler_options", "sampler ")
    sampler = registration.create(tokenizer, dict(options or {}), rejected=rejected)
    if not callable(getattr(sampler, "sample", None)):
        raise TypeError(f"sampler {name!r} (plugin {registration.plugin}) has no sample() method")
    return sampler
