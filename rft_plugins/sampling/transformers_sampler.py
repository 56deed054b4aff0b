"""The default sampler: ``model.generate`` from ``transformers``, G samples per prompt.

The sampling-time log-probs cost no second forward pass and keep no logits: a logits processor
sees each step's distribution and keeps only the log-prob of the token drawn from it (known at
the next step), so memory holds one step's ``samples x vocabulary``, not ``generate``'s
``output_logits`` of every step (16 x 128 tokens x 152k float32 = 1.2 GB).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pydantic
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from .base import RolloutBatch, SamplingParams
from .logprobs import at_least_float32, eval_mode
from .structured import StructuredDecoding, schema_of


class TransformersSamplerOptions(pydantic.BaseModel):
    """``trainer.sampler_options`` for the ``transformers`` sampler."""

    model_config = pydantic.ConfigDict(extra="forbid")

    prompts_per_call: int | None = pydantic.Field(
        None, ge=1, description="split a batch into generate() calls of this many prompts (memory)"
    )
    generation_kwargs: dict[str, Any] = pydantic.Field(
        default_factory=dict,
        description="extra GenerationConfig fields (e.g. repetition_penalty, cache_implementation); they "
        "change the sampling distribution but not the log-probs the loss uses",
    )
    autocast: bool = pydantic.Field(
        True, description="generate inside the step's mixed-precision autocast (false: in the weights' own dtype)"
    )


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token lists into a left-padded id tensor and its attention mask."""
    width = max(len(ids) for ids in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, tokens in enumerate(sequences):
        if tokens:
            ids[row, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
            mask[row, width - len(tokens) :] = 1
    return ids, mask


def completion_mask_for(completion_ids: torch.Tensor, eos_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """1 on tokens up to and including the first EOS; also whether each row had an EOS at all."""
    is_eos = torch.isin(completion_ids, torch.tensor(eos_ids, device=completion_ids.device))
    has_eos = is_eos.any(dim=1)
    width = completion_ids.size(1)
    first_eos = torch.where(has_eos, is_eos.int().argmax(dim=1), torch.full_like(has_eos, width, dtype=torch.long))
    positions = torch.arange(width, device=completion_ids.device).expand_as(completion_ids)
    return (positions <= first_eos.unsqueeze(1)).long(), has_eos


class ChosenTokenLogprobs(LogitsProcessor):
    """Records ``log softmax(scores / temperature)`` of each generated token, one step late.

    ``generate`` calls a logits processor with the ids so far and the next token's scores; the
    token drawn from those scores is the last id at the next call (or after ``generate`` returns).
    Only that step's log-softmax is held in between. The scores are the model's logits after any
    processors ``generation_kwargs`` added (a repetition penalty, ...), before temperature, top-k
    and top-p, like TRL's.
    """

    def __init__(self, temperature: float):
        self.temperature = temperature
        self.pending: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._take(input_ids[:, -1])
        # computed now: later processors (a grammar's mask) may change the scores in place
        self.pending = torch.log_softmax(at_least_float32(scores) / self.temperature, dim=-1)
        return scores

    def _take(self, tokens: torch.Tensor) -> None:
        if self.pending is not None:
            self.steps.append(self.pending.gather(-1, tokens.unsqueeze(-1)).squeeze(-1))
            self.pending = None

    def finish(self, completion_ids: torch.Tensor) -> torch.Tensor:
        """The ``[rows, generated tokens]`` log-probs, once ``generate`` has returned its ids."""
        if completion_ids.size(1):
            self._take(completion_ids[:, -1])
        if not self.steps:
            return completion_ids.new_zeros(completion_ids.shape, dtype=torch.float32)
        return torch.stack(self.steps, dim=1)


class TransformersSampler:
    """Samples with ``model.generate(do_sample=True, num_return_sequences=G)``."""

    def __init__(self, tokenizer: Any, options: dict[str, Any]):
        self.tokenizer = tokenizer
        self.options = TransformersSamplerOptions.model_validate(options)
        self.structured: StructuredDecoding | None = None  # built on the first constrained call
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            raise ValueError("the tokenizer has neither a pad token nor an EOS token")

    def _eos_ids(self, model: Any) -> list[int]:
        found = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        found.update(configured if isinstance(configured, list) else [configured])
        return sorted(token for token in found if token is not None)

    def _generation_config(self, params: SamplingParams, eos_ids: list[int]) -> GenerationConfig:
        return GenerationConfig(
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k or 0,  # 0 switches top-k off (the library default would be 50)
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=params.num_generations,
            pad_token_id=self.pad_id,
            eos_token_id=eos_ids,
            **self.options.generation_kwargs,
        )

    def _constraint(self, model: Any, response_format: dict[str, Any] | None, rows: int) -> Any:
        """The logits processor that keeps ``rows`` completions inside ``response_format``."""
        if schema_of(response_format) is None:
            return None
        if self.structured is None:
            self.structured = StructuredDecoding(self.tokenizer, model.config.vocab_size, self._eos_ids(model))
        return self.structured.constraint(response_format, rows)

    def _generate(
        self, model: Any, prompts: list[list[int]], config: GenerationConfig, device: torch.device,
        response_format: dict[str, Any] | None = None,
    ):
        prompt_ids, prompt_mask = left_pad(prompts, self.pad_id)
        prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
        recorder = ChosenTokenLogprobs(config.temperature)
        processors = LogitsProcessorList([recorder])  # first: the policy's log-probs, before any mask
        constraint = self._constraint(model, response_format, len(prompts) * config.num_return_sequences)
        if constraint is not None:
            processors.append(constraint)
        sequences = model.generate(
            input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=config, logits_processor=processors
        )
        completion_ids = sequences[:, prompt_ids.size(1) :]
        logprobs = recorder.finish(completion_ids)
        repeat = config.num_return_sequences
        return (
            prompt_ids.repeat_interleave(repeat, dim=0),
            prompt_mask.repeat_interleave(repeat, dim=0),
            completion_ids,
            logprobs,
        )

    def sample(self, model: Any, prompts: list[list[int]], params: SamplingParams) -> RolloutBatch:
        """G completions per prompt, with masks, log-probs, texts and truncation flags."""
        eos_ids = self._eos_ids(model)
        config = self._generation_config(params, eos_ids)
        device = next(model.parameters()).device
        step = self.options.prompts_per_call or len(prompts)
        parts = []
        # autocast off: 16-bit weights decode in their own dtype without autocast's per-op casts
        keep_autocast = self.options.autocast or not torch.is_autocast_enabled(device.type)
        precision = contextlib.nullcontext() if keep_autocast else torch.autocast(device.type, enabled=False)
        with torch.no_grad(), eval_mode(model), precision:
            for start in range(0, len(prompts), step):
                parts.append(
                    self._generate(model, prompts[start : start + step], config, device, params.response_format)
                )
        prompt_ids, prompt_mask = left_pad_tensors([(p[0], p[1]) for p in parts], self.pad_id)
        completion_ids = right_pad([p[2] for p in parts], self.pad_id)
        logprobs = right_pad([p[3] for p in parts], 0.0)
        completion_mask, has_eos = completion_mask_for(completion_ids, eos_ids)
        logprobs = logprobs * completion_mask
        texts = []
        for ids, mask in zip(completion_ids, completion_mask):
            kept = [token for token in ids[mask.bool()].tolist() if token not in eos_ids]
            texts.append(self.tokenizer.decode(kept, skip_special_tokens=True))
        return RolloutBatch(
            prompt_ids=prompt_ids,
            prompt_mask=prompt_mask,
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            logprobs=logprobs,
            texts=texts,
            truncated=[not flag for flag in has_eos.tolist()],
            num_generations=params.num_generations,
        )


def right_pad(tensors: list[torch.Tensor], value: float) -> torch.Tensor:
    """Concatenate row blocks of different widths, padding on the right."""
    width = max(t.size(1) for t in tensors)
    return torch.cat([torch.nn.functional.pad(t, (0, width - t.size(1)), value=value) for t in tensors])


def left_pad_tensors(pairs: list[tuple[torch.Tensor, torch.Tensor]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate left-padded (ids, mask) blocks of different widths, padding on the left."""
    width = max(ids.size(1) for ids, _ in pairs)
    ids = torch.cat([torch.nn.functional.pad(i, (width - i.size(1), 0), value=pad_id) for i, _ in pairs])
    mask = torch.cat([torch.nn.functional.pad(m, (width - m.size(1), 0), value=0) for _, m in pairs])
    return ids, mask
