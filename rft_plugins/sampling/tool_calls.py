"""Tool calls in completions, parsed into OpenAI's shape before graders see them.

A row with ``tools`` lets the model answer with calls in its chat template's own markup (Qwen's
``<tool_call>{...}</tool_call>``, Llama's, Gemma's, ...). Graders read them as
``sample.output_tools``: ``[{"id", "type": "function", "function": {"name", "arguments"}}]``
with ``arguments`` a JSON string, as OpenAI's API returns them, and ``sample.output_text`` is the
message's text without the markup. A sampler backed by an engine with its own tool parser fills
``RolloutBatch.tool_calls`` itself; otherwise the loop parses the completion with a tool-call
parser plugin (``trainer.tool_call_parser``): ``response_template`` uses the tokenizer's own
response template (transformers' response parsing), ``hermes`` the ``<tool_call>`` JSON blocks
most open models use. ``auto`` picks the first of the two the tokenizer supports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ToolCallParserError
from ..graders.types import openai_tool_calls
from ..registry import find, rejected_options


@dataclass
class ParsedCompletion:
    """A completion split into its text and its tool calls (OpenAI's shape)."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class ToolCallParser(Protocol):
    """Splits a completion (decoded with its special tokens) into text and tool calls.

    ``prompt`` is the rendered prompt before it (some templates open the turn there); ``tools``
    the row's tool definitions, to type the arguments where the parser can.
    """

    def parse(self, completion: str, prompt: str, tools: list[dict[str, Any]] | None) -> ParsedCompletion: ...


def tokenizer_supports(tokenizer: Any, parser: str) -> bool:
    """Whether ``tokenizer`` defines what the built-in ``parser`` reads."""
    if parser == "response_template":
        return getattr(tokenizer, "response_template", None) is not None
    if parser == "hermes":
        return "<tool_call>" in str(getattr(tokenizer, "chat_template", None) or "")
    return True


def build_tool_call_parser(name: str, tokenizer: Any, options: dict[str, Any] | None = None) -> ToolCallParser | None:
    """The parser ``name`` (a registered plugin), or for ``auto`` the first built-in one the
    tokenizer supports (None when none does: completions then stay plain text)."""
    field_name = "trainer.tool_call_parser"
    if name == "auto":
        name = next((choice for choice in ("response_template", "hermes") if tokenizer_supports(tokenizer, choice)), "")
        if not name:
            return None
    registration = find("tool_call_parsers", name, field_name, ToolCallParserError)
    if name == "response_template" and not tokenizer_supports(tokenizer, name):
        raise ToolCallParserError(field_name, "'response_template': the model's tokenizer defines none")
    return registration.create(tokenizer, dict(options or {}),
                               rejected=rejected_options(ToolCallParserError, f"{field_name}_options"))


class HermesParser:
    """``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (Qwen 2 and 2.5,
    Hermes, and the many templates that copied them); the rest, special tokens removed, is text.
    A block that is not valid JSON stays in the text (the model did not make a call)."""

    BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)

    def __init__(self, tokenizer: Any, options: dict[str, Any]):
        if options:
            raise ValueError(f"takes no options, got {sorted(options)}")
        specials = [token for token in getattr(tokenizer, "all_special_tokens", []) if token]
        self.specials = re.compile("|".join(map(re.escape, specials))) if specials else None

    def parse(self, completion: str, prompt: str, tools: list[dict[str, Any]] | None) -> ParsedCompletion:
        calls, kept = [], []
        position = 0
        for match in self.BLOCK.finditer(completion):
            try:
                call = json.loads(match.group(1))
            except json.JSONDecodeError:
                continue
            if not isinstance(call, dict) or "name" not in call:
                continue
            kept.append(completion[position : match.start()])
            position = match.end()
            calls.append(call)
        kept.append(completion[position:])
        text = "".join(kept)
        if self.specials is not None:
            text = self.specials.sub("", text)
        return ParsedCompletion(text.strip(), openai_tool_calls(calls))


class ResponseTemplateParser:
    """The tokenizer's ``response_template`` through transformers' ``parse_response``: whatever
    format the model's authors declared, arguments typed by the tools' schemas."""

    def __init__(self, tokenizer: Any, options: dict[str, Any]):
        if options:
            raise ValueError(f"takes no options, got {sorted(options)}")
        self.tokenizer = tokenizer

    def parse(self, completion: str, prompt: str, tools: list[dict[str, Any]] | None) -> ParsedCompletion:
        message = self.tokenizer.parse_response(completion, prefix=prompt, tools=tools)
        content = message.get("content")
        return ParsedCompletion(content.strip() if isinstance(content, str) else "",
                                openai_tool_calls(message.get("tool_calls") or []))


def parse_tool_calls(
    rollout: Any, tokenizer: Any, parser: ToolCallParser, prompts: list[list[int]],
    tools: list[list[dict[str, Any]] | None],
) -> None:
    """Fill ``rollout.tool_calls`` (and strip the markup from ``rollout.texts``) for the rows
    whose prompt offered tools; the others keep their text and no calls."""
    generations = rollout.num_generations
    prompt_texts = [tokenizer.decode(ids, skip_special_tokens=False) if offered else "" for ids, offered in
                    zip(prompts, tools)]
    calls: list[list[dict[str, Any]]] = []
    for row, (ids, mask) in enumerate(zip(rollout.completion_ids, rollout.completion_mask)):
        offered = tools[row // generations]
        if not offered:
            calls.append([])
            continue
        completion = tokenizer.decode(ids[mask.bool()].tolist(), skip_special_tokens=False)
        parsed = parser.parse(completion, prompt_texts[row // generations], offered)
        rollout.texts[row] = parsed.text
        calls.append(parsed.tool_calls)
    rollout.tool_calls = calls
