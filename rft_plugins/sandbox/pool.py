"""The trainer's side: warm sandbox workers, reused across calls, killed and replaced on faults.

``SandboxPool.run(source, args)`` never raises for what the code does: a timeout, a crash, a
memory blow-up or an exception comes back as a failed ``SandboxResult`` with a ``kind`` and the
details, and the next call gets a healthy worker.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from . import protocol
from .limits import SandboxLimits

logger = logging.getLogger(__name__)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: Loads ``rft_plugins.sandbox.worker`` without running ``rft_plugins/__init__`` (pydantic,
#: pluggy...): a worker starts in tens of milliseconds and imports nothing it does not need.
_BOOTSTRAP = (
    "import sys, types\n"
    f"for name, path in (('rft_plugins', {os.path.dirname(_PACKAGE_DIR)!r}), ('rft_plugins.sandbox', {_PACKAGE_DIR!r})):\n"
    "    module = types.ModuleType(name); module.__path__ = [path]; sys.modules[name] = module\n"
    "from rft_plugins.sandbox.worker import main\n"
    "main()\n"
)

#: Failure kinds: the code's fault (``exception``, ``bad_result``, ``timeout``, ``memory``,
#: ``crash``) or the sandbox's (``unavailable``, ``source_too_large``).
CODE_FAULTS = ("exception", "bad_result", "timeout", "memory", "crash")


class SandboxUnavailable(Exception):
    """A worker could not start. ``layer`` names the isolation layer the OS refused (None when
    the process itself failed to start): such a refusal is permanent."""

    def __init__(self, message: str, layer: str | None = None):
        super().__init__(message)
        self.layer = layer


@dataclass
class SandboxResult:
    """What one sandboxed call came to."""

    ok: bool
    value: Any = None
    kind: str | None = None
    details: str = ""

    @classmethod
    def failure(cls, kind: str, details: str) -> "SandboxResult":
        """A failed call: ``kind`` is one of ``CODE_FAULTS``, ``unavailable`` or ``source_too_large``."""
        return cls(ok=False, kind=kind, details=details)


@functools.lru_cache(maxsize=64)
def _measure(source: str) -> tuple[int, str]:
    """Size in bytes and SHA-256 of a source: once per source, not once per call (a grader
    sends the same source with every sample, up to 256 kB of it)."""
    encoded = source.encode()
    return len(encoded), hashlib.sha256(encoded).hexdigest()


def _kill_process_tree(process: subprocess.Popen, scratch: str) -> None:
    """Kill the launcher's whole process group (which takes the sandbox with it); drop scratch."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    shutil.rmtree(scratch, ignore_errors=True)


def _wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> bool:
    """Resolve a waiter's future on its own loop; False if that loop is closed."""
    settle = lambda: future.done() or future.set_result(None)  # noqa: E731
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        if running is loop:
            loop.call_soon(settle)  # same thread: no self-pipe write, no extra wake-up
        else:
            loop.call_soon_threadsafe(settle)
    except RuntimeError:
        return False
    return True


class WorkerProcess:
    """One sandbox (launcher, init, worker), seen from the trainer."""

    def __init__(self, limits: SandboxLimits, namespaces: bool):
        self.scratch = tempfile.mkdtemp(prefix="rft-sandbox-")
        config = {
            "scratch": self.scratch,
            "namespaces": namespaces,
            "limits": {**dataclasses.asdict(limits), "read_paths": list(limits.read_paths)},
        }
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.scratch,
            "TMPDIR": self.scratch,
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        with tempfile.TemporaryFile() as stderr:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, json.dumps(config)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
                    cwd=self.scratch, start_new_session=True, bufsize=0,
                )
            except OSError as error:
                shutil.rmtree(self.scratch, ignore_errors=True)
                raise SandboxUnavailable(f"cannot start a sandbox worker: {error}") from error
            self._finalizer = weakref.finalize(self, _kill_process_tree, self.process, self.scratch)
            self.request_fd = self.process.stdin.fileno()
            self.reader = protocol.FrameReader(self.process.stdout.fileno())
            try:
                ready = self.reader.receive(limits.start_timeout_s)
            except (TimeoutError, EOFError, protocol.ProtocolError) as error:
                self.kill()
                stderr.seek(0)
                output = stderr.read().decode(errors="replace").strip()[-2000:]
                raise SandboxUnavailable(f"sandbox worker did not start ({type(error).__name__}): {output}") from error
        if not ready.get("ready"):
            self.kill()
            raise SandboxUnavailable(ready.get("error", "sandbox worker refused to start"), ready.get("layer", "other"))
        self.isolation: dict[str, Any] = ready["isolation"]
        self.sources: set[str] = set()

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One round trip. ``TimeoutError``/``EOFError``/``OSError`` mean the worker is done for."""
        protocol.send(self.request_fd, request)
        return self.reader.receive(timeout)

    def exit_status(self) -> int | None:
        """The launcher's exit status once it has exited (it mirrors the worker's)."""
        try:
            return self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Kill the process group and remove scratch (once; also runs at garbage collection)."""
        self._finalizer()


class SandboxPool:
    """Up to ``limits.pool_size`` warm workers, started on first use, shared by threads and
    event loops (``run`` and ``arun``).

    Where the OS refuses user namespaces the pool falls back to the weaker mode (with a loud
    warning) unless ``require_namespaces=True``, which makes that refusal an error instead.
    """

    def __init__(self, limits: SandboxLimits | None = None, require_namespaces: bool = False):
        self.limits = limits or SandboxLimits()
        self.require_namespaces = require_namespaces
        self.namespaces = self.limits.namespaces
        self.size = self.limits.pool_size  # once: os.cpu_count() is a system call
        self._idle: list[WorkerProcess] = []
        self._started = 0
        self._lock = threading.Condition()
        self._async_waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = collections.deque()
        self._closed = False
        self._ids = itertools.count()
        self.isolation: dict[str, Any] | None = None
        self.unavailable: str | None = None

    def run(self, source: str, args: list[Any], entry: str = "main", result: str = "json") -> SandboxResult:
        """Run ``entry(*args)`` from ``source`` in a worker; ``result="number"`` wants a float."""
        refusal = self._check_source(source)
        if refusal is not None:
            return refusal
        try:
            worker = self._checkout()
        except SandboxUnavailable as error:
            return SandboxResult.failure("unavailable", str(error))
        request = self._request(worker, source, entry, args, result)
        try:
            reply = worker.call(request, self.limits.wall_time_s)
        except TimeoutError:
            return self._timed_out(worker, entry)
        except (EOFError, OSError, protocol.ProtocolError) as error:
            return self._crashed(worker, entry, error, worker.exit_status())
        return self._finish(worker, request, reply)

    async def arun(self, source: str, args: list[Any], entry: str = "main", result: str = "json") -> SandboxResult:
        """``run`` for event loops: waits on the worker's pipe, no thread per call."""
        refusal = self._check_source(source)
        if refusal is not None:
            return refusal
        try:
            worker = await self._acheckout()
        except SandboxUnavailable as error:
            return SandboxResult.failure("unavailable", str(error))
        request = self._request(worker, source, entry, args, result)
        try:
            protocol.send(worker.request_fd, request)
            reply = await worker.reader.areceive(self.limits.wall_time_s)
        except TimeoutError:
            return self._timed_out(worker, entry)
        except asyncio.CancelledError:  # the caller gave up: the worker's state is unknown
            self._discard(worker)
            raise
        except (EOFError, OSError, protocol.ProtocolError) as error:
            return self._crashed(worker, entry, error, await asyncio.to_thread(worker.exit_status))
        return self._finish(worker, request, reply)

    def _check_source(self, source: str) -> SandboxResult | None:
        size, _ = _measure(source)
        if size > self.limits.max_source_bytes:
            return SandboxResult.failure(
                "source_too_large", f"source is {size} bytes; the limit is {self.limits.max_source_bytes} bytes"
            )
        return None

    def _request(self, worker: WorkerProcess, source: str, entry: str, args: list[Any], result: str) -> dict[str, Any]:
        """The request frame; the source travels only to workers that have not compiled it yet."""
        _, source_id = _measure(source)
        request: dict[str, Any] = {
            "id": next(self._ids), "source_id": source_id, "entry": entry, "args": args, "result": result,
        }
        if source_id not in worker.sources:
            request["source"] = source
        return request

    def _timed_out(self, worker: WorkerProcess, entry: str) -> SandboxResult:
        self._discard(worker)
        return SandboxResult.failure(
            "timeout", f"{entry}() did not return within {self.limits.wall_time_s:g} s; its sandbox was killed"
        )

    def _crashed(self, worker: WorkerProcess, entry: str, error: BaseException, status: int | None) -> SandboxResult:
        self._discard(worker)
        how = f"exit status {status}" if status is not None else type(error).__name__
        return SandboxResult.failure("crash", f"the sandboxed process died during {entry}() ({how})")

    def _finish(self, worker: WorkerProcess, request: dict[str, Any], reply: dict[str, Any]) -> SandboxResult:
        worker.sources.add(request["source_id"])
        if reply.get("recycle"):
            self._discard(worker)
        else:
            self._checkin(worker)
        if reply.get("ok"):
            return SandboxResult(ok=True, value=reply.get("value"))
        return SandboxResult.failure(reply.get("kind", "exception"), reply.get("details", ""))

    def _reserve(self) -> WorkerProcess | bool:
        """Under the lock: an idle worker, True if the caller may start one, False to wait."""
        if self._closed:
            raise SandboxUnavailable("the sandbox pool is closed")
        if self.unavailable is not None:
            raise SandboxUnavailable(self.unavailable)
        if self._idle:
            return self._idle.pop()
        if self._started < self.size:
            self._started += 1
            return True
        return False

    def _checkout(self) -> WorkerProcess:
        with self._lock:
            while (reserved := self._reserve()) is False:
                self._lock.wait()
        return reserved if isinstance(reserved, WorkerProcess) else self._start_reserved()

    async def _acheckout(self) -> WorkerProcess:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                reserved = self._reserve()
                if reserved is False:
                    wakeup = loop.create_future()
                    self._async_waiters.append((loop, wakeup))
            if isinstance(reserved, WorkerProcess):
                return reserved
            if reserved is True:
                starting = asyncio.ensure_future(asyncio.to_thread(self._start_reserved))
                try:
                    return await asyncio.shield(starting)
                except asyncio.CancelledError:  # the caller gave up: keep the worker for others
                    starting.add_done_callback(self._keep_started)
                    raise
            try:
                await wakeup
            except asyncio.CancelledError:
                with self._lock:
                    self._wake_one()  # pass on the wake-up this task may have been handed
                raise

    def _keep_started(self, starting: asyncio.Future) -> None:
        if not starting.cancelled() and starting.exception() is None:
            self._checkin(starting.result())

    def _wake_one(self) -> None:
        """Under the lock: a worker came back (or a slot freed); wake a thread and a coroutine."""
        self._lock.notify()
        while self._async_waiters:
            loop, wakeup = self._async_waiters.popleft()
            if not wakeup.done() and _wake(loop, wakeup):
                return

    def _start_reserved(self) -> WorkerProcess:
        try:
            worker = self._spawn()
        except SandboxUnavailable as error:
            with self._lock:
                self._started -= 1
                if error.layer is not None:
                    self.unavailable = str(error)  # the OS will not change its mind: fail fast
                self._lock.notify_all()
                self._wake_all_async()
            raise
        self.isolation = worker.isolation
        return worker

    def _wake_all_async(self) -> None:
        while self._async_waiters:
            _wake(*self._async_waiters.popleft())

    def _spawn(self) -> WorkerProcess:
        try:
            return WorkerProcess(self.limits, self.namespaces)
        except SandboxUnavailable as error:
            if error.layer != "namespaces" or self.require_namespaces:
                raise
            self.namespaces = False
            logger.warning(
                "SANDBOX IS WEAKER: %s. Landlock and seccomp still confine files and block sockets, "
                "but there is no PID, network or /proc isolation and no cap on total scratch writes. "
                "See docs/sandbox.md.", error,
            )
            return WorkerProcess(self.limits, namespaces=False)

    def _checkin(self, worker: WorkerProcess) -> None:
        with self._lock:
            if self._closed:
                self._started -= 1
                worker.kill()
            else:
                self._idle.append(worker)
            self._wake_one()

    def _discard(self, worker: WorkerProcess) -> None:
        worker.kill()
        with self._lock:
            self._started -= 1
            self._wake_one()

    def close(self) -> None:
        """Kill every worker; calls in flight finish, later ones report the pool closed."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._started -= len(idle)
            self._lock.notify_all()
            self._wake_all_async()
        for worker in idle:
            worker.kill()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
