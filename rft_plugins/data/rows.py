"""What a dataset row must look like (OpenAI's RFT JSONL), checked the same way for every source.

A row is a JSON object: ``messages`` (chat messages, the last one from the user), optional
``tools``, and any other keys as reference data that graders read as ``item.<key>``. TRL's rows
are accepted too: a ``prompt`` that is a conversation (checked as ``messages`` are) or a text
(one user message: RFT prompts are chats, rendered with the chat template); the row then gets the
``messages`` it stands for and keeps its ``prompt``, so graders read either on both engines.
"""

from __future__ import annotations

import json
from typing import Any

from ..documents import DocumentError, DocumentLimits, check_depth
from ..errors import DataError

ROLES = ("system", "developer", "user", "assistant", "tool")


def _check_content(message: dict[str, Any], field: str, where: str) -> None:
    content = message.get("content")
    if isinstance(content, str):
        return
    if isinstance(content, list):
        for index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise DataError("a content part is an object with a 'type'", where, f"{field}.content[{index}]")
        return
    if content is None and message.get("role") == "assistant" and message.get("tool_calls"):
        return
    if content is None and "content" not in message:
        raise DataError("required field is missing", where, f"{field}.content")
    raise DataError(f"must be a string or a list of content parts, not {type(content).__name__}", where, f"{field}.content")


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """Check one row and return it; a problem raises ``DataError`` naming ``where`` and the field
    (rows nested past ``RFT_MAX_NESTING`` levels included: graders and templates walk them)."""
    if not isinstance(row, dict):
        raise DataError(f"a row is a JSON object, not {type(row).__name__}", where)
    try:
        check_depth(row, DocumentLimits.from_environment())
    except DocumentError as error:
        raise DataError(error.message, where) from None
    key = "messages" if "messages" in row or "prompt" not in row else "prompt"  # OpenAI's form, or TRL's
    messages = row.get(key)
    if messages is None:
        raise DataError("required field is missing (OpenAI's messages, or TRL's prompt)", where, "messages")
    if key == "prompt" and isinstance(messages, str):
        messages = messages_of_prompt(messages)
    if not isinstance(messages, list) or not messages:
        text = "a text or " if key == "prompt" else ""
        raise DataError(f"must be {text}a non-empty list of chat messages", where, key)
    for index, message in enumerate(messages):
        field = f"{key}[{index}]"
        if not isinstance(message, dict):
            raise DataError(f"a message is an object with role and content, not {type(message).__name__}", where, field)
        role = message.get("role")
        if role not in ROLES:
            problem = "required field is missing" if role is None else f"unknown role {role!r}"
            raise DataError(f"{problem}; one of {', '.join(ROLES)}", where, f"{field}.role")
        _check_content(message, field, where)
    if messages[-1]["role"] != "user":
        raise DataError(
            f"the last message must be from the user (OpenAI RFT), not {messages[-1]['role']!r}",
            where, f"{key}[{len(messages) - 1}].role",
        )
    tools = row.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools)):
        raise DataError("must be a list of tool definitions (objects)", where, "tools")
    return row if key == "messages" else {**row, "messages": messages}


def messages_of_prompt(prompt: Any) -> list[dict[str, Any]]:
    """OpenAI's ``messages`` for a TRL prompt: the conversation itself, or a text as one user message."""
    if isinstance(prompt, list):
        return list(prompt)
    return [{"role": "user", "content": "" if prompt is None else str(prompt)}]


def from_table(row: dict[str, Any]) -> dict[str, Any]:
    """Undo what tabular storage does to a row: JSON text columns, and nulls filled in by a schema.

    Parquet/Arrow give every message every key any message had (``None`` where absent), and a
    CSV can only hold ``messages``/``tools`` as JSON text.
    """
    row = dict(row)
    for key in ("messages", "tools"):
        if isinstance(row.get(key), str):
            try:
                row[key] = json.loads(row[key])
            except json.JSONDecodeError:
                pass  # validate_row reports the wrong type
    for key in ("messages", "prompt"):  # a TRL prompt that is a conversation, too
        if isinstance(row.get(key), list):
            row[key] = [
                {k: v for k, v in message.items() if v is not None} if isinstance(message, dict) else message
                for message in row[key]
            ]
    if row.get("tools") is None:
        row.pop("tools", None)
    return row
