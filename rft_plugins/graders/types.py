"""What a grader receives (``Sample``) and what it may return (``Grade``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..text_limits import max_details_chars, shorten

#: OpenAI's error flags, in the order its run response lists them. Flags ending in ``_details``
#: or ``_type`` carry text; the others are booleans.
ERROR_FLAGS: tuple[str, ...] = (
    "formula_parse_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
    "invalid_variable_error",
    "other_error",
    "python_grader_server_error",
    "python_grader_server_error_type",
    "python_grader_runtime_error",
    "python_grader_runtime_error_details",
    "model_grader_server_error",
    "model_grader_server_error_details",
    "model_grader_refusal_error",
    "model_grader_parse_error",
)
BOOLEAN_FLAGS: tuple[str, ...] = tuple(
    flag for flag in ERROR_FLAGS if not flag.endswith(("_details", "_type"))
)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None


def openai_tool_calls(calls: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Tool calls as OpenAI's API gives them, whatever produced them (a chat-template parser, TRL,
    an engine): an ``id``, ``type: function``, ``function.name`` and ``function.arguments`` as a
    JSON string."""
    shaped = []
    for number, call in enumerate(calls or []):
        function = call.get("function", call)
        arguments = function.get("arguments", function.get("parameters", {}))
        shaped.append({
            "id": call.get("id") or f"call_{number}",
            "type": "function",
            "function": {
                "name": str(function.get("name", "")),
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            },
        })
    return shaped


def item_of(row: dict[str, Any]) -> dict[str, Any]:
    """A dataset row as graders see it under ``rft train``: OpenAI's row, plus ``prompt`` (its
    messages, under TRL's name) so one grader config reads the same on either engine."""
    if "prompt" in row or "messages" not in row:
        return row
    return {**row, "prompt": row["messages"]}


@dataclass
class Sample:
    """One model answer as graders see it (OpenAI's ``sample`` namespace).

    ``output_json`` is the parsed output when the text is valid JSON, else None. ``output_audio``
    is OpenAI's audio output (``data`` in Base64, ``transcript``); None for text models.
    """

    output_text: str
    output_json: Any = None
    output_tools: list[dict] = field(default_factory=list)
    choices: list[dict] = field(default_factory=list)
    output_audio: dict[str, Any] | None = None

    @classmethod
    def from_text(cls, text: str, tool_calls: list[dict] | None = None) -> "Sample":
        """A sample from the model's text output (and tool calls, if it made any, in OpenAI's shape)."""
        calls = openai_tool_calls(tool_calls)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        return cls(
            output_text=text,
            output_json=_parse_json(text),
            output_tools=calls,
            choices=[{"index": 0, "message": message, "finish_reason": "stop"}],
        )

    @classmethod
    def coerce(cls, value: "Sample | str | dict") -> "Sample":
        """Accept what users pass around: a Sample, the output text, or a dict of sample fields."""
        if isinstance(value, Sample):
            return value
        if isinstance(value, str):
            return cls.from_text(value)
        if isinstance(value, dict):
            text = value.get("output_text")
            if text is None:
                raise TypeError("a sample dict needs 'output_text'")
            sample = cls.from_text(str(text), value.get("output_tools"))
            if "output_tools" in value:  # given as they are, not reshaped
                sample.output_tools = list(value["output_tools"] or [])
            if "output_json" in value:
                sample.output_json = value["output_json"]
            if "choices" in value:
                sample.choices = list(value["choices"])
            if "output_audio" in value:
                sample.output_audio = value["output_audio"]
            return sample
        raise TypeError(f"a sample is a str, a dict or a Sample, not {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """The plain-dict form that templates and ``python`` graders see."""
        return {
            "output_text": self.output_text,
            "output_json": self.output_json,
            "output_tools": self.output_tools,
            "choices": self.choices,
            "output_audio": self.output_audio,
        }


@dataclass
class Grade:
    """A grader's verdict on one sample.

    ``reward`` is None when the grader does not apply to the sample (excluded from means, as in
    TRL). ``errors`` holds the flags that were raised (absent flags are False).
    """

    reward: float | None
    errors: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    sub_rewards: dict[str, float | None] = field(default_factory=dict)
    token_usage: dict[str, int] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    execution_time: float = 0.0

    @classmethod
    def failed(cls, flag: str, details: str = "") -> "Grade":
        """Reward 0 with ``flag`` raised and, if given, ``<flag>_details`` saying why (cut to
        ``RFT_MAX_DETAILS_CHARS``, 8000 by default: a message may be megabytes long).

        OpenAI has ``_details`` fields for some flags only; we add one to any flag that has text.
        """
        errors: dict[str, Any] = {flag: True}
        if details:
            errors[f"{flag}_details"] = shorten(details, max_details_chars())
        return cls(reward=0.0, errors=errors)

    @property
    def flagged(self) -> list[str]:
        """The boolean flags raised on this grade."""
        return [flag for flag in BOOLEAN_FLAGS if self.errors.get(flag)]
