"""Per-token log-probs of completions under a model: the quantity the GRPO ratio is made of.

The full ``tokens x vocabulary`` logits are never materialised. The model's backbone gives the
final hidden states; only those that predict a real completion token go through the LM head, a
chunk of tokens at a time, and each chunk keeps just the chosen token's log-prob. With gradients
on, a chunk's logits are recomputed during the backward pass (activation checkpointing), so the
memory of this step grows with ``chunk_size x vocabulary``, not with ``batch x length x
vocabulary`` (with a 152k vocabulary, 64 x 1024 tokens of float32 logits alone are 40 GB).
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.checkpoint import checkpoint

#: completion tokens per LM-head chunk (``trainer.logprob_chunk_size``): 1024 x 152k float32 logits = 0.6 GB
DEFAULT_CHUNK_SIZE = 1024


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Run without dropout (sampling, reference passes), then restore the model's mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count only real tokens, so a left-padded row is scored like the same row
    unpadded (what ``generate`` does; models with absolute positions depend on it)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@dataclass(frozen=True)
class LMHead:
    """A causal LM split into its backbone (ids -> final hidden states) and its LM head, with the
    scaling some families apply to the logits afterwards (Gemma's soft-capping, Cohere's and
    Granite's scales), read from the model's config."""

    backbone: torch.nn.Module
    head: torch.nn.Module
    scale: float = 1.0
    softcap: float | None = None

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's logits for these final hidden states, in float32 (or wider)."""
        logits = at_least_float32(self.head(hidden))
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def lm_head_of(model: Any) -> LMHead | None:
    """The backbone and LM head of a Hugging Face causal LM (also inside a PEFT wrapper), or None
    when the model is not built that way."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    get_head = getattr(base, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    backbone = getattr(base, "base_model", None)
    if head is None or not isinstance(backbone, torch.nn.Module) or backbone is base:
        return None
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    scale = getattr(config, "logit_scale", None) or 1.0
    if getattr(config, "logits_scaling", None):
        scale = scale / config.logits_scaling
    return LMHead(backbone, head, float(scale), getattr(config, "final_logit_softcapping", None))


#: the models whose split into backbone + head was checked against their own forward: model -> head usable
_CHECKED: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


def _reproduces_logits(model: Any, parts: LMHead) -> bool:
    """Whether backbone + head give the model's own logits, on a few tokens (once per model): a
    family that post-processes its logits some other way falls back to the full forward."""
    device = next(model.parameters()).device
    weight = getattr(parts.head, "weight", None)
    vocabulary = weight.shape[0] if isinstance(weight, torch.Tensor) else 2
    ids = torch.arange(min(4, vocabulary), device=device).unsqueeze(0)
    with torch.no_grad(), eval_mode(model):
        expected = at_least_float32(model(input_ids=ids, use_cache=False).logits)
        found = parts.logits(parts.backbone(input_ids=ids, use_cache=False).last_hidden_state)
    tolerance = 1e-4 if expected.dtype == next(model.parameters()).dtype else 1e-2
    return bool(torch.allclose(found, expected, rtol=tolerance, atol=tolerance * max(1.0, expected.abs().max().item())))


def _split_model(model: Any) -> LMHead | None:
    parts = lm_head_of(model)
    if parts is None:
        return None
    usable = _CHECKED.get(model)
    if usable is None:
        usable = _CHECKED[model] = _reproduces_logits(model, parts)
        if not usable:
            warnings.warn(
                f"{type(model).__name__}: its logits are not its LM head's output; log-probs are computed from "
                "the full logits instead (more memory)",
                stacklevel=3,
            )
    return parts if usable else None


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """16-bit values as float32 (softmax over a large vocabulary needs it); float64 stays float64."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def chosen_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``log softmax(logits / temperature)`` at ``tokens``, in float32, without a second
    vocabulary-sized tensor for the softmax."""
    logits = at_least_float32(logits) / temperature
    return logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def _head_logprobs(parts: LMHead, hidden: torch.Tensor, tokens: torch.Tensor, temperature: float) -> torch.Tensor:
    return chosen_logprobs(parts.logits(hidden), tokens, temperature)


def chunked_logprobs(
    parts: LMHead, hidden: torch.Tensor, tokens: torch.Tensor, temperature: float, chunk_size: int
) -> torch.Tensor:
    """Log-probs of ``tokens`` given their final hidden states ``[n, H]``, ``chunk_size`` at a time;
    under autograd each chunk is recomputed in the backward pass instead of keeping its logits."""
    recompute = torch.is_grad_enabled() and (
        hidden.requires_grad or any(parameter.requires_grad for parameter in parts.head.parameters())
    )
    values = []
    for start in range(0, hidden.size(0), chunk_size):
        args = (parts, hidden[start : start + chunk_size], tokens[start : start + chunk_size], temperature)
        if recompute:
            values.append(checkpoint(_head_logprobs, *args, use_reentrant=False, preserve_rng_state=False))
        else:
            values.append(_head_logprobs(*args))
    return torch.cat(values) if values else at_least_float32(hidden.new_zeros(0))


def completion_logprobs(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    temperature: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    """``log p(token | prefix)`` for every completion token, logits divided by ``temperature``.

    One forward pass over prompt + completion with positions counted from the first real token;
    the log-probs are float32, 0 on padding. Gradients flow unless the caller disables them. Only
    tokens where ``completion_mask`` is 1 are scored: the attention mask is ``prompt_mask`` then
    ``completion_mask``.
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask,
              "position_ids": position_ids_from_mask(attention_mask), "use_cache": False}
    keep = completion_ids.size(1)
    parts = _split_model(model)
    if parts is None:  # the model's own logits, all of them
        logits = model(**inputs, logits_to_keep=keep + 1).logits[:, -keep - 1 : -1]
        values = chosen_logprobs(logits, completion_ids, temperature)
        return values * completion_mask.to(values.dtype)
    hidden = parts.backbone(**inputs).last_hidden_state[:, -keep - 1 : -1]  # the states predicting each token
    scored = completion_mask.bool()
    values = chunked_logprobs(parts, hidden[scored], completion_ids[scored], temperature, max(1, chunk_size))
    return torch.zeros(scored.shape, dtype=values.dtype, device=values.device).masked_scatter(scored, values)
