"""Built-in tool-call parsers, registered like any plugin's."""

from __future__ import annotations

from typing import Any

from ..contract import Register, ToolCallParserFactory
from ..project import hookimpl


def hermes(tokenizer: Any, options: dict[str, Any]) -> Any:
    """``<tool_call>{json}</tool_call>`` blocks (Qwen 2 / 2.5, Hermes and their kin)."""
    from ..sampling.tool_calls import HermesParser

    return HermesParser(tokenizer, options)


def response_template(tokenizer: Any, options: dict[str, Any]) -> Any:
    """The tokenizer's own ``response_template``, through transformers' response parsing."""
    from ..sampling.tool_calls import ResponseTemplateParser

    return ResponseTemplateParser(tokenizer, options)


@hookimpl
def rft_register_tool_call_parsers(register: Register[ToolCallParserFactory]) -> None:
    register("hermes", hermes)
    register("response_template", response_template)
