"""Constrained decoding for OpenAI's ``response_format``: every sample parses as the schema says.

OpenAI's RFT applies the job's ``response_format`` while sampling, so graders that read
``sample.output_json`` always get JSON. Here the built-in sampler does the same with xgrammar (the
grammar engine vLLM and SGLang use): the schema is compiled once against the tokenizer, and at each
generation step a token bitmask per row allows only the tokens that keep the output valid. Masks
are filled on the CPU by xgrammar's C++ matchers for the whole batch and applied on the logits'
device with one kernel; the only synchronisation per step is reading the tokens just drawn.

xgrammar is an optional extra (``pip install 'rft-plugins[structured]'``). Other samplers receive
``SamplingParams.response_format`` and apply it their own way (an engine's guided decoding).
"""

from __future__ import annotations

import json
from typing import Any, cast

import torch
from transformers import LogitsProcessor

from ..errors import ResponseFormatError

#: OpenAI's response_format types; ``text`` (or none) means no constraint
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
#: where a job keeps its response format, for error messages
FIELD = "method.reinforcement.response_format"
EXTRA = "pip install 'rft-plugins[structured]'"


def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as error:
        raise ResponseFormatError(FIELD, f"constrained decoding needs xgrammar: {EXTRA}") from error
    return xgrammar


def schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema a response format asks for: ``{}`` for any JSON object, None for free text."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMAT_TYPES:
        raise ResponseFormatError(f"{FIELD}.type", f"{kind!r} is not one of {', '.join(RESPONSE_FORMAT_TYPES)}")
    if kind == "text":
        return None
    if kind == "json_object":
        return {}
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise ResponseFormatError(f"{FIELD}.json_schema.schema", "a json_schema response format needs a schema object")
    return spec["schema"]


def _grammar(xgrammar: Any, schema: dict[str, Any]) -> Any:
    if not schema:
        return xgrammar.Grammar.builtin_json_grammar()
    # compact JSON (no free whitespace): what OpenAI's structured outputs produce, and fewer
    # tokens for a small model to spend on layout
    return xgrammar.Grammar.from_json_schema(
        json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=True
    )


def check_response_format(response_format: dict[str, Any] | None) -> None:
    """Raise ``ResponseFormatError`` naming the field when the built-in sampler cannot enforce it:
    a malformed format, a schema feature the grammar engine does not support, xgrammar missing."""
    schema = schema_of(response_format)
    if schema is None:
        return
    xgrammar = _xgrammar()
    try:
        _grammar(xgrammar, schema)
    except Exception as error:  # xgrammar reports unsupported or invalid schemas as RuntimeError
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        field = f"{FIELD}.json_schema.schema" if schema else FIELD
        raise ResponseFormatError(field, f"cannot be enforced while sampling: {text}") from error


class GrammarConstraint(LogitsProcessor):
    """Masks each row's logits to the tokens its grammar allows next; one instance per
    ``generate`` call (the matchers follow that call's rows)."""

    def __init__(self, xgrammar: Any, batch: Any, compiled: Any, rows: int):
        self.xgrammar, self.batch = xgrammar, batch
        self.matchers = [xgrammar.GrammarMatcher(compiled) for _ in range(rows)]
        self.vocab_size = compiled.tokenizer_info.vocab_size
        self.bitmask = xgrammar.allocate_token_bitmask(rows, self.vocab_size)
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        active = [row for row, matcher in enumerate(self.matchers) if not matcher.is_terminated()]
        if self.started and active:  # the tokens drawn at the previous step, read once for the whole batch
            tokens = input_ids[:, -1].tolist()
            self.batch.batch_accept_token([self.matchers[row] for row in active], [tokens[row] for row in active])
            active = [row for row in active if not self.matchers[row].is_terminated()]
        self.started = True
        if active:  # the masks of all rows at once, on several threads
            self.batch.batch_fill_next_token_bitmask([self.matchers[row] for row in active], self.bitmask, active)
        vocabulary = min(scores.size(-1), self.vocab_size)  # a model's logits may be padded wider
        if scores.device.type in ("cuda", "cpu"):
            mask = self.bitmask.to(scores.device, non_blocking=True)
            self.xgrammar.apply_token_bitmask_inplace(scores, mask, vocab_size=vocabulary)
            return scores
        masked = scores.cpu()  # other devices: on the CPU
        self.xgrammar.apply_token_bitmask_inplace(masked, self.bitmask, vocab_size=vocabulary)
        return cast(torch.FloatTensor, masked.to(scores.device))  # same dtype: only the device moves


class StructuredDecoding:
    """A tokenizer's grammar compiler and the grammars compiled for it, kept for the run."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]):
        xgrammar = _xgrammar()
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self.xgrammar = xgrammar
        self.compiler = xgrammar.GrammarCompiler(info)
        self.batch = xgrammar.BatchGrammarMatcher()
        self.compiled: dict[str, Any] = {}

    def constraint(self, response_format: dict[str, Any] | None, rows: int) -> GrammarConstraint | None:
        """A logits processor enforcing ``response_format`` on ``rows`` sequences (None: free text)."""
        schema = schema_of(response_format)
        if schema is None:
            return None
        key = json.dumps(schema, sort_keys=True)
        if key not in self.compiled:
            self.compiled[key] = self.compiler.compile_grammar(_grammar(self.xgrammar, schema))
        return GrammarConstraint(self.xgrammar, self.batch, self.compiled[key], rows)
