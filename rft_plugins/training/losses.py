"""The GRPO-family policy loss as pure tensor functions, matching TRL's ``GRPOTrainer``.

Shapes: per-token tensors are ``[sequences, completion tokens]``; ``mask`` is 1 on completion
tokens (up to and including EOS) and 0 on padding; ``advantages`` is one value per sequence.

Aggregation per ``loss_type`` (TRL 1.x ``_compute_loss``):

- ``grpo``: mean over each sequence's tokens, then mean over sequences (long answers weigh less
  per token: the length bias Dr. GRPO points out);
- ``dr_grpo``: sum over all tokens / (sequences x ``max_completion_length``), a constant
  normaliser, so no length bias;
- ``dapo``: sum over all tokens / number of tokens in the batch (token-level mean). Under data
  parallelism TRL divides by the token count of the whole batch over all processes divided by
  the number of processes; ``num_tokens`` lets the caller pass exactly that.

Micro-batching: the normalisers can be those of the whole step (``num_tokens``, and
``num_sequences`` for ``grpo`` and ``dr_grpo``), so the losses of a step's micro-batches add up to
the loss of the whole step, and so do their gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
#: how sampler/policy mismatch is corrected (TRL's ``vllm_importance_sampling_mode``)
IMPORTANCE_SAMPLING_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (0 when the mask is empty)."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def importance_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token ratio pi_theta / pi_old, computed in log space for stability."""
    return torch.exp(logprobs - old_logprobs)


def clipped_surrogate(
    ratio: torch.Tensor, advantages: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> torch.Tensor:
    """Per-token PPO loss ``-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``.

    The clip only bites on the side that would push the policy further in the advantage's
    direction: ratios above ``1 + eps_high`` for positive advantages, below ``1 - eps_low`` for
    negative ones. ``epsilon_high > epsilon_low`` is DAPO's clip-higher.
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    return -torch.min(ratio * advantages, clipped * advantages)


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi_theta || pi_ref) by Schulman's k3 estimator, as TRL: ``e^d - d - 1``.

    ``d = log pi_ref - log pi_theta``; unbiased, always >= 0, and low variance.
    """
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


def importance_sampling_weights(
    policy_logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "sequence_mask",
    clip_min: float | None = None,
    clip_max: float | None = 3.0,
) -> torch.Tensor:
    """Truncated or masked importance weights ``pi_policy / pi_sampler`` of the sampled tokens.

    An inference engine's log-probs differ from the training forward's (kernels, precision,
    quantisation), so its samples are slightly off-policy; the surrogate is weighted by the ratio,
    bounded (TRL's vLLM correction). ``token_*`` modes weigh each token, ``sequence_*`` modes each
    sequence by the product over its tokens; ``*_truncate`` clips the ratio to ``[clip_min,
    clip_max]``, ``*_mask`` zeroes the weights outside it. Shape ``[rows, tokens]`` or ``[rows, 1]``.
    """
    if mode not in IMPORTANCE_SAMPLING_MODES:
        known = ", ".join(IMPORTANCE_SAMPLING_MODES)
        raise ValueError(f"unknown importance sampling mode {mode!r}; expected one of {known}")
    difference = (policy_logprobs - sampler_logprobs).detach() * mask
    if mode.startswith("sequence"):
        difference = difference.sum(dim=-1, keepdim=True)
    ratio = torch.exp(difference)
    if mode.endswith("truncate"):
        return torch.clamp(ratio, min=clip_min, max=clip_max)
    low = -math.inf if clip_min is None else clip_min
    high = math.inf if clip_max is None else clip_max
    return ratio.masked_fill((ratio < low) | (ratio > high), 0.0)


def aggregate(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    max_completion_length: int | None = None,
    num_tokens: float | torch.Tensor | None = None,
    num_sequences: int | None = None,
) -> torch.Tensor:
    """Reduce per-token losses to one scalar the way ``loss_type`` says (see module docstring).

    ``num_tokens`` (dapo) and ``num_sequences`` (grpo, dr_grpo) default to those of these rows.
    """
    mask = mask.to(per_token_loss.dtype)
    sequences = per_token_loss.size(0) if num_sequences is None else num_sequences
    if loss_type == "grpo":
        per_sequence = (per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        return per_sequence.sum() / max(1, sequences)
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        return (per_token_loss * mask).sum() / (max(1, sequences) * max_completion_length)
    if loss_type == "dapo":
        normaliser = mask.sum() if num_tokens is None else torch.as_tensor(num_tokens, dtype=mask.dtype)
        return (per_token_loss * mask).sum() / normaliser.clamp(min=1.0)
    raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {', '.join(LOSS_TYPES)}")


@dataclass
class PolicyLoss:
    """The loss to back-propagate and the statistics worth logging (detached)."""

    loss: torch.Tensor
    kl: torch.Tensor | None
    clip_ratio: torch.Tensor
    clip_ratio_low: torch.Tensor
    clip_ratio_high: torch.Tensor


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: str,
    epsilon: float,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    max_completion_length: int | None = None,
    num_tokens: float | torch.Tensor | None = None,
    num_sequences: int | None = None,
    bias_correction_kl: bool = False,
    importance_weights: torch.Tensor | None = None,
) -> PolicyLoss:
    """The GRPO-family loss: clipped surrogate, plus ``beta`` x k3 KL per token, aggregated.

    The KL term is added per token before aggregation, as in TRL. With ``bias_correction_kl``
    (TRL's ``use_bias_correction_kl``, on by default there) it is multiplied by the importance
    ratio, which is differentiable: on-policy its value is 1 but its gradient changes the KL
    term's into the unbiased reverse-KL gradient. ``importance_weights`` (see
    ``importance_sampling_weights()``) multiply the surrogate, not the KL term, as TRL's. ``clip_ratio`` is
    the share of (masked) tokens where the clip was active: ratio below ``1 - eps`` with a negative
    advantage or above ``1 + eps_high`` with a positive one.
    """
    epsilon_high = epsilon if epsilon_high is None else epsilon_high
    mask = mask.to(logprobs.dtype)
    advantages = advantages.to(logprobs.dtype)
    ratio = importance_ratio(logprobs, old_logprobs)
    per_token = clipped_surrogate(ratio, advantages, epsilon, epsilon_high)
    if importance_weights is not None:
        per_token = per_token * importance_weights.to(per_token.dtype)
    kl = None
    if beta != 0.0:
        if ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs")
        per_token_kl = k3_kl(logprobs, ref_logprobs)
        if bias_correction_kl:
            per_token_kl = per_token_kl * ratio
        per_token = per_token + beta * per_token_kl
        kl = masked_mean(per_token_kl.detach(), mask)
    loss = aggregate(per_token, mask, loss_type, max_completion_length, num_tokens, num_sequences)
    column = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    ratio = ratio.detach()
    low = ((ratio < 1 - epsilon) & (column < 0)).to(mask.dtype)
    high = ((ratio > 1 + epsilon_high) & (column > 0)).to(mask.dtype)
    return PolicyLoss(
        loss=loss,
        kl=kl,
        clip_ratio=masked_mean(torch.maximum(low, high), mask),
        clip_ratio_low=masked_mean(low, mask),
        clip_ratio_high=masked_mean(high, mask),
    )
