"""``endpoint``: your own HTTP service grades the sample (Azure OpenAI's endpoint grader).

Each sample is one ``POST url`` with JSON ``{"sample": {...}, "item": {...}, "trace_id": "<uuid>"}``
(the same ``trace_id`` on every retry of that sample); the service answers ``{"score": <number>}``.
Azure's fields are ``url``, ``headers`` and ``rate_limit``; ours add ``timeout`` (seconds per
attempt, the whole answer included), ``max_retries`` (at most 3, Azure's number), ``backoff``,
``max_concurrency`` and ``max_response_kb`` (a longer body is ``other_error``). Header values and the URL may
name environment variables as ``${NAME}``, resolved when the grader is built.

``rate_limit`` is requests per minute, spaced evenly. Flags: a service that never answers
usefully (timeouts, connection errors, 429 or 5xx after the retries) is
``unresponsive_reward_error``; any other HTTP error, or a reply without a numeric ``score``, is
``other_error``. Details always name the URL and the ``trace_id``.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pydantic

from ..contract import GraderFactory, Register
from ..errors import GraderConfigError, GradingError
from ..graders.config import GraderConfig, parse_config
from ..graders.types import Grade, Sample
from ..judges.http import (
    MAX_RESPONSE_KB, HTTPCallFailed, LoopSessions, RetryPolicy, expand_env, expand_env_headers, post_json,
)
from ..judges.rate_limit import RateLimiter
from ..project import hookimpl

MAX_RETRIES = 3


class EndpointConfig(GraderConfig):
    url: str
    headers: dict[str, str] = pydantic.Field(default_factory=dict)
    rate_limit: float | None = pydantic.Field(None, gt=0)
    timeout: float = pydantic.Field(30.0, gt=0)
    max_retries: int = pydantic.Field(MAX_RETRIES, ge=0, le=MAX_RETRIES)
    backoff: float = pydantic.Field(0.5, ge=0)
    max_concurrency: int = pydantic.Field(16, ge=1)
    max_response_kb: int = pydantic.Field(MAX_RESPONSE_KB, ge=1)


class EndpointGrader:
    """POSTs each sample to the service and takes its ``score`` as the reward."""

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(EndpointConfig, config)
        self.url = expand_env(spec.url, "url")
        if not self.url.startswith(("http://", "https://")):
            raise GraderConfigError("url", f"must be an http:// or https:// URL, got {self.url!r}")
        self.headers = expand_env_headers(spec.headers)
        self.policy = RetryPolicy(
            spec.max_retries, spec.timeout, spec.backoff, max_response_bytes=spec.max_response_kb * 1024
        )
        self.limiter = RateLimiter(spec.rate_limit) if spec.rate_limit else None
        self.sessions = LoopSessions(max_concurrency=spec.max_concurrency)

    async def agrade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        """One POST (and its retries, under one ``trace_id``); the reply's ``score`` is the reward."""
        trace_id = str(uuid.uuid4())
        payload = {"sample": sample.to_dict(), "item": item, "trace_id": trace_id}
        async with self.sessions.client() as client:
            try:
                response = await post_json(
                    client,
                    self.url,
                    payload,
                    self.policy,
                    self.headers,
                    before_attempt=self.limiter.wait if self.limiter else None,
                )
            except HTTPCallFailed as failure:
                flag = "unresponsive_reward_error" if failure.retryable else "other_error"
                raise GradingError(flag, f"{failure.details}; trace_id {trace_id}") from None
        return Grade(reward=self._score(response.text, trace_id), scores={"trace_id": trace_id})

    @staticmethod
    def _score(text: str, trace_id: str) -> float:
        try:
            reply = json.loads(text)
        except json.JSONDecodeError:
            reply = None
        score = reply.get("score") if isinstance(reply, dict) else None
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise GradingError(
                "other_error", f'expected {{"score": <number>}}, got {text[:200]!r}; trace_id {trace_id}'
            )
        return float(score)

    def close(self) -> None:
        """Nothing to release: each loop's client closes when its last call finishes."""


@hookimpl
def rft_register_graders(register: Register[GraderFactory]) -> None:
    register("endpoint", EndpointGrader)
