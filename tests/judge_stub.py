"""A real HTTP server on 127.0.0.1 that plays an OpenAI-compatible judge (or a grading endpoint).

Each test scripts it: ``stub.push(reply, ...)`` queues what the next requests get, in order;
once the queue is empty every request gets ``stub.default``. A reply is a ``Reply`` (status,
JSON or raw body, delay, hang, or a body streamed piece by piece as a hostile server sends it)
or a callable ``(request) -> Reply``. The stub records every
request (path, headers, JSON body) and the most requests it ever had in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator, Union

import pytest


@dataclass
class Reply:
    """What the stub answers to one request."""

    status: int = 200
    body: Any = None  # a dict is sent as JSON, a str as it is
    delay: float = 0.0
    hang: bool = False  # never answer (until the stub stops)
    headers: dict[str, str] = field(default_factory=dict)
    #: a body sent piece by piece, without a length, until it ends, the client hangs up or the stub stops
    stream: Callable[[], Iterable[bytes]] | None = None


@dataclass
class Request:
    """One request the stub received."""

    path: str
    headers: dict[str, str]
    json: Any
    at: float = field(default_factory=time.monotonic)  # arrival time


Script = Union[Reply, Callable[[Request], Reply]]


def completion(
    content: str | None,
    *,
    refusal: str | None = None,
    finish_reason: str = "stop",
    model: str = "stub-judge-1",
    usage: dict[str, Any] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A chat-completions response with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    return Reply(
        body={
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage if usage is not None else {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
        },
        delay=delay,
    )


def verdict(result: Any, steps: list | None = None, **options: Any) -> Reply:
    """A completion whose content is the structured verdict ``{"steps", "result"}``."""
    steps = steps if steps is not None else [{"description": "compared", "conclusion": "ok"}]
    return completion(json.dumps({"steps": steps, "result": result}), **options)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections when many judge calls start at once


class JudgeStub:
    """The server, on an ephemeral port, serving from a daemon thread."""

    def __init__(self) -> None:
        self.queue: deque[Script] = deque()
        self.default: Script = verdict(1.0)
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def url(self) -> str:
        """A grading-endpoint URL on the same server."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/grade"

    def push(self, *replies: Script) -> None:
        with self._lock:
            self.queue.extend(replies)

    def _next(self) -> Script:
        with self._lock:
            return self.queue.popleft() if self.queue else self.default

    def _enter(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                stub._enter(request)
                try:
                    script = stub._next()
                    reply = script(request) if callable(script) else script
                    if reply.hang:
                        stub._stopping.wait()
                        return
                    if reply.delay:
                        time.sleep(reply.delay)
                    if reply.stream is not None:
                        self._stream(reply)
                        return
                    payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                    data = payload.encode()
                    self.send_response(reply.status)
                    content_type = "text/plain" if isinstance(reply.body, str) else "application/json"
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer
                finally:
                    stub._leave()

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")  # the body ends when the connection does
                self.end_headers()
                self.close_connection = True
                for piece in reply.stream():
                    if stub._stopping.is_set():
                        return
                    self.wfile.write(piece)
                    self.wfile.flush()

        return Handler

    def start(self) -> "JudgeStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def judge_stub() -> Iterator[JudgeStub]:
    """A started stub, stopped after the test (import this fixture into a test module)."""
    stub = JudgeStub().start()
    yield stub
    stub.stop()
