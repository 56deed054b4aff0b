"""HTTP plumbing shared by the OpenAI-compatible judge backend and the ``endpoint`` grader.

Two problems solved once here:

- An ``httpx.AsyncClient`` (and an ``asyncio.Semaphore``) belongs to the event loop it first ran
  on, and graders are called from many loops (``LoadedGrader.grade`` runs ``asyncio.run`` per
  call, ``grade_batch`` one per batch). ``LoopSessions`` keeps one client per running loop, opened
  by the first call in flight there and closed by the last, so nothing outlives its loop.
- Retries with exponential backoff on 429, 5xx, timeouts and connection errors, honouring
  ``Retry-After``; every failure ends as one ``HTTPCallFailed`` carrying what went wrong.
- A server is not trusted to end its answer: each attempt has one deadline for everything
  (connecting, sending, waiting, reading the whole body), so a server that drips a byte a
  second cannot hold a grade past it, and the body is streamed with a byte cap, so one that
  sends for ever cannot fill the trainer's memory.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import ssl
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import httpx

from ..errors import GraderConfigError

#: ``${NAME}`` inside a header value (or URL) is replaced by environment variable NAME.
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
RETRY_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 60.0
#: default cap on a response body (``max_response_kb``): a chat completion or a score is a few kB
MAX_RESPONSE_KB = 1024

_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context for every client: building one costs ~30 ms, reusing it nothing."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return _ssl_context


def expand_env(value: str, field: str) -> str:
    """Replace each ``${NAME}`` with the environment variable; an unset one is a config error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise GraderConfigError(field, f"environment variable {name} is not set")
        return os.environ[name]

    return ENV_REFERENCE.sub(replace, value)


def expand_env_headers(headers: dict[str, str], field: str = "headers") -> dict[str, str]:
    """Header values with ``${NAME}`` references resolved (errors name the header)."""
    return {key: expand_env(value, f"{field}.{key}") for key, value in headers.items()}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a request, and how much of an answer to accept.

    ``timeout`` bounds each attempt as a whole, the body's last byte included; waits between
    attempts double from ``backoff`` up to ``max_backoff`` seconds (with jitter), or follow the
    server's ``Retry-After``. A body over ``max_response_bytes`` ends the call (not retried).
    """

    max_retries: int = 2
    timeout: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_response_bytes: int = MAX_RESPONSE_KB * 1024

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)


class HTTPCallFailed(Exception):
    """A request that did not get a usable answer, after retries where retrying made sense.

    ``retryable`` says whether the last failure was of a kind worth retrying (timeout, 5xx...):
    callers map it to "the server did not answer" rather than "the server said no".
    """

    def __init__(self, details: str, status: int | None = None, retryable: bool = False):
        self.details = details
        self.status = status
        self.retryable = retryable
        super().__init__(details)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _body_excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


class _BodyTooLarge(Exception):
    """The server sent more than the policy accepts."""


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, read as it streams in; ``_BodyTooLarge`` as soon as it passes ``limit`` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


async def _attempt(
    client: httpx.AsyncClient, url: str, payload: Any, policy: RetryPolicy, headers: dict[str, str] | None,
    params: dict[str, str] | None,
) -> httpx.Response:
    """One POST whose whole answer arrives within ``policy.timeout`` seconds (or it is cancelled),
    returned as a response with its body already read."""

    async def exchange() -> httpx.Response:
        request = client.build_request(
            "POST", url, json=payload, headers=headers, params=params, timeout=policy.timeout
        )
        streamed = await client.send(request, stream=True)
        try:
            body = await _read_capped(streamed, policy.max_response_bytes)
        finally:
            await streamed.aclose()
        return httpx.Response(streamed.status_code, headers=streamed.headers, content=body, request=request)

    return await asyncio.wait_for(exchange(), policy.timeout)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: Any,
    policy: RetryPolicy,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    before_attempt: Callable[[], Any] | None = None,
) -> httpx.Response:
    """POST ``payload`` as JSON and return the 2xx response, retrying what is worth retrying.

    ``before_attempt`` (awaited if it returns an awaitable) runs before every attempt: the
    endpoint grader's rate limiter. Raises ``HTTPCallFailed`` with the last failure's details.
    """
    attempts = policy.max_retries + 1
    for attempt in range(attempts):
        if before_attempt is not None:
            waiting = before_attempt()
            if asyncio.iscoroutine(waiting):
                await waiting
        retry_after = None
        try:
            response = await _attempt(client, url, payload, policy, headers, params)
        except (httpx.TimeoutException, asyncio.TimeoutError):
            failure = HTTPCallFailed(
                f"no response within {policy.timeout:g} s (the whole answer, body included)", retryable=True
            )
        except _BodyTooLarge:
            failure = HTTPCallFailed(
                f"the response body is over the {policy.max_response_bytes}-byte limit (max_response_kb)"
            )
        except httpx.TransportError as error:
            failure = HTTPCallFailed(f"{type(error).__name__}: {error}", retryable=True)
        else:
            if response.is_success:
                return response
            status = response.status_code
            retryable = status in RETRY_STATUSES or status >= 500
            failure = HTTPCallFailed(f"HTTP {status}: {_body_excerpt(response)}", status, retryable)
            retry_after = _retry_after(response)
        if not failure.retryable or attempt == attempts - 1:
            failure.details = f"{failure.details} (POST {url}, {attempt + 1} attempt{'s' * (attempt > 0)})"
            raise failure
        await asyncio.sleep(policy.wait(attempt, retry_after))
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _Session:
    client: httpx.AsyncClient
    gate: asyncio.Semaphore | None
    users: int = 0


class LoopSessions:
    """One ``httpx.AsyncClient`` and concurrency gate per running event loop.

    Opened by the first call in flight on a loop and closed when the last one finishes, so a
    client never outlives the loop it is bound to. Concurrent calls (a batch) share one client and
    its connection pool; ``max_concurrency`` bounds how many requests are in flight per loop.
    """

    def __init__(self, max_concurrency: int | None = None, **client_options: Any):
        self.max_concurrency = max_concurrency
        self.client_options = client_options
        self._sessions: dict[asyncio.AbstractEventLoop, _Session] = {}
        self._lock = threading.Lock()

    def _open(self) -> _Session:
        limits = httpx.Limits(max_connections=self.max_concurrency or 100)
        client = httpx.AsyncClient(verify=shared_ssl_context(), limits=limits, **self.client_options)
        gate = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
        return _Session(client, gate)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The loop's client, held for one call; waits at the gate when the limit is reached."""
        loop = asyncio.get_running_loop()
        with self._lock:
            session = self._sessions.get(loop)
            if session is None:
                session = self._sessions[loop] = self._open()
            session.users += 1
        try:
            if session.gate is None:
                yield session.client
            else:
                async with session.gate:
                    yield session.client
        finally:
            with self._lock:
                session.users -= 1
                last = session.users == 0
                if last:
                    del self._sessions[loop]
            if last:
                await session.client.aclose()

    @property
    def open_sessions(self) -> int:
        """How many loops hold a client right now (0 once every call has finished)."""
        return len(self._sessions)
