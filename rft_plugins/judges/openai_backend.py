"""The ``openai`` judge backend: any OpenAI-compatible chat-completions server.

OpenAI itself, Azure OpenAI (``headers: {"api-key": "${AZURE_OPENAI_API_KEY}"}`` and
``query: {"api-version": ...}``), vLLM, SGLang, llama.cpp's server, LiteLLM... One POST to
``{base_url}/chat/completions`` per judge call, through ``httpx``, with the retry policy and the
per-loop client of ``judges.http``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import pydantic

from ..errors import GradingError
from ..graders.config import parse_config
from .base import JudgeReply, JudgeRequest
from .http import (
    MAX_RESPONSE_KB, HTTPCallFailed, LoopSessions, RetryPolicy, expand_env, expand_env_headers, post_json,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SERVER_ERROR = "model_grader_server_error"

#: OpenAI's ``sampling_params`` names -> chat-completions request fields.
SAMPLING_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "max_completions_tokens": "max_completion_tokens",
    "reasoning_effort": "reasoning_effort",
}


class OpenAIBackendOptions(pydantic.BaseModel):
    """The ``judge`` section for ``backend: openai`` (every field optional)."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    headers: dict[str, str] = pydantic.Field(default_factory=dict)
    query: dict[str, str] = pydantic.Field(default_factory=dict)
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    timeout: float = pydantic.Field(60.0, gt=0)
    max_retries: int = pydantic.Field(2, ge=0, le=10)
    backoff: float = pydantic.Field(0.5, ge=0)
    max_backoff: float = pydantic.Field(8.0, ge=0)
    max_concurrency: int = pydantic.Field(16, ge=1)
    max_response_kb: int = pydantic.Field(MAX_RESPONSE_KB, ge=1)


def integer_usage(usage: Any) -> dict[str, int]:
    """Token counts from a response's ``usage``: the integer fields, plus cached and reasoning
    tokens from the nested details, so that ``multi`` can add them up per model. A count of 0 is
    a count (OpenAI reports ``cached_tokens: 0``), kept like any other."""
    if not isinstance(usage, dict):
        return {}
    counts = {key: value for key, value in usage.items() if isinstance(value, int) and not isinstance(value, bool)}
    for details, key in (("prompt_tokens_details", "cached_tokens"), ("completion_tokens_details", "reasoning_tokens")):
        nested = usage.get(details)
        value = nested.get(key) if isinstance(nested, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            counts[key] = value
    return counts


def _content_text(content: Any) -> str | None:
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else None


class OpenAIBackend:
    """Chat completions over HTTP; failures after retries are ``model_grader_server_error``."""

    def __init__(self, model: str, options: dict[str, Any]):
        spec = parse_config(OpenAIBackendOptions, options)
        base_url = spec.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.url = expand_env(base_url, "base_url").rstrip("/") + "/chat/completions"
        self.headers = expand_env_headers(spec.headers)
        api_key = os.environ.get(spec.api_key_env)
        if api_key:
            self.headers.setdefault("Authorization", f"Bearer {api_key}")
        self.query = {key: expand_env(value, f"query.{key}") for key, value in spec.query.items()}
        self.response_format = spec.response_format
        self.policy = RetryPolicy(
            spec.max_retries, spec.timeout, spec.backoff, spec.max_backoff, spec.max_response_kb * 1024
        )
        self.sessions = LoopSessions(max_concurrency=spec.max_concurrency)
        self.model = model

    def request_body(self, request: JudgeRequest) -> dict[str, Any]:
        """The chat-completions request for one judge call."""
        body: dict[str, Any] = {"model": request.model, "messages": request.messages}
        for name, value in request.sampling.items():
            body[SAMPLING_FIELDS[name]] = value
        if self.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "strict": True, "schema": request.json_schema},
            }
        elif self.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        async with self.sessions.client() as client:
            try:
                response = await post_json(
                    client, self.url, self.request_body(request), self.policy, self.headers, self.query or None
                )
            except HTTPCallFailed as failure:
                raise GradingError(SERVER_ERROR, failure.details) from None
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise GradingError(SERVER_ERROR, f"not a chat completion: {response.text[:300]!r}") from None
        refusal = message.get("refusal") or None
        finish_reason = choice.get("finish_reason")
        if refusal is None and finish_reason == "content_filter":
            refusal = "the server's content filter stopped the reply (finish_reason: content_filter)"
        return JudgeReply(
            text=_content_text(message.get("content")),
            refusal=refusal,
            finish_reason=finish_reason,
            usage=integer_usage(data.get("usage")),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
        )

    def close(self) -> None:
        """Nothing to release: each loop's client closes when its last call finishes."""
