"""Length-prefixed JSON frames over a pair of pipes: one request, one reply, nothing else.

Raw ``os.read``/``os.write`` on file descriptors, no buffering layers: a round trip costs two
system calls on each side, which is what lets a pool grade thousands of samples a second.

The pool's side trusts nothing the worker does: it writes requests with a deadline (a worker that
stops reading cannot block the trainer on a full pipe), refuses reply frames over its size limit,
and turns any malformed reply into ``ProtocolError``.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import time
from typing import Any

HEADER_BYTES = 4
MAX_FRAME_BYTES = 256 * 1024 * 1024


class ProtocolError(Exception):
    """The other side sent something that is not a frame (or a frame too large to accept)."""


class FrameTooLarge(ProtocolError):
    """A frame announced more bytes than the reader accepts: the sender floods."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"a frame of {size} bytes is over the {limit}-byte limit")
        self.size = size
        self.limit = limit


def encode(message: Any) -> bytes:
    """One frame: 4-byte big-endian length, then compact UTF-8 JSON."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def send(fd: int, message: Any) -> None:
    """Write a whole frame (a blocking fd; partial writes are retried)."""
    write_all(fd, encode(message))


def write_all(fd: int, frame: bytes) -> None:
    """Write already encoded bytes to a blocking fd (partial writes are retried)."""
    data = memoryview(frame)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _write_available(fd: int, view: memoryview) -> memoryview:
    """Write as much of ``view`` as a non-blocking ``fd`` takes now; returns the rest."""
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            break
    return view


def send_by(fd: int, data: bytes, deadline: float) -> None:
    """Write ``data`` (an encoded frame) to a non-blocking ``fd`` before ``deadline``
    (``time.monotonic``); ``TimeoutError`` past it."""
    view = _write_available(fd, memoryview(data))
    if not view:
        return
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise TimeoutError
        view = _write_available(fd, view)


async def asend_by(fd: int, data: bytes, deadline: float) -> None:
    """``send_by`` for event loops: waits for the pipe to drain on the loop, not in a thread."""
    view = _write_available(fd, memoryview(data))
    while view:
        loop = asyncio.get_running_loop()
        writable = loop.create_future()
        loop.add_writer(fd, settle, writable, None)
        timer = loop.call_later(max(0.0, deadline - time.monotonic()), settle, writable, TimeoutError())
        try:
            await writable
        finally:
            loop.remove_writer(fd)
            timer.cancel()
        view = _write_available(fd, view)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # RecursionError: [[[[... nested past the C stack
        raise ProtocolError(f"not JSON: {type(error).__name__}") from error


def _frame_size(header: bytes | bytearray, limit: int = MAX_FRAME_BYTES) -> int:
    size = int.from_bytes(header, "big")
    if size > limit:
        raise FrameTooLarge(size, limit)
    return size


def receive(fd: int) -> Any | None:
    """Block until a whole frame arrives; None when the other side closed the pipe."""
    header = _read_exactly(fd, HEADER_BYTES)
    if header is None:
        return None
    body = _read_exactly(fd, _frame_size(header))
    if body is None:
        raise ProtocolError("pipe closed in the middle of a frame")
    return _decode(body)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


class FrameReader:
    """Reads replies from a worker's pipe with a deadline, from threads or from an event loop;
    a frame over ``max_frame_bytes`` raises ``FrameTooLarge`` before its body is read."""

    def __init__(self, fd: int, max_frame_bytes: int = MAX_FRAME_BYTES):
        self.fd = fd
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def receive(self, timeout: float) -> Any:
        """The next frame; ``TimeoutError`` past ``timeout`` s, ``EOFError`` if the pipe closed."""
        deadline = time.monotonic() + timeout
        while (message := self._take()) is _INCOMPLETE:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poll.poll(remaining * 1000):
                raise TimeoutError
            self._read()
        return message

    async def areceive(self, timeout: float) -> Any:
        """``receive`` for event loops: waits on the loop, not in a thread.

        The deadline is a timer on the loop rather than ``asyncio.wait_for``, which would cost a
        task per call.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (message := self._take()) is _INCOMPLETE:
            readable = loop.create_future()
            loop.add_reader(self.fd, settle, readable, None)
            timer = loop.call_at(deadline, settle, readable, TimeoutError())
            try:
                await readable
            finally:
                loop.remove_reader(self.fd)
                timer.cancel()
            self._read()
        return message

    def _read(self) -> None:
        chunk = os.read(self.fd, 65536)
        if not chunk:
            raise EOFError
        self._buffer += chunk

    def _take(self) -> Any:
        if len(self._buffer) < HEADER_BYTES:
            return _INCOMPLETE
        size = _frame_size(self._buffer[:HEADER_BYTES], self.max_frame_bytes)
        if len(self._buffer) < HEADER_BYTES + size:
            return _INCOMPLETE
        if len(self._buffer) > HEADER_BYTES + size:
            raise ProtocolError("more bytes than one frame: the worker wrote outside the protocol")
        body = bytes(self._buffer[HEADER_BYTES:])
        self._buffer.clear()
        return _decode(body)


_INCOMPLETE = object()


def settle(future: asyncio.Future, error: BaseException | None) -> None:
    """Resolve ``future`` (with ``error`` raised if given) unless it is done: for loop callbacks."""
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
