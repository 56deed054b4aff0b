"""Per-token log-probs of completions under a model: the quantity the GRPO ratio is made of."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Run without dropout (sampling, reference passes), then restore the model's mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def completion_logprobs(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``log p(token | prefix)`` for every completion token, logits divided by ``temperature``.

    One forward pass over prompt + completion; only the completion's logits are kept (TRL's
    ``logits_to_keep``), computed in float32. Padding positions come out as 0. Gradients flow
    unless the caller disables them.
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    keep = completion_ids.size(1)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep + 1).logits
    logits = logits[:, -keep - 1 : -1, :].float() / temperature
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    return logprobs * completion_mask.to(logprobs.dtype)
