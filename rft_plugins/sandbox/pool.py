"""The trainer's side: warm sandbox workers, reused across calls, killed and replaced on faults.

``SandboxPool.run(source, args)`` never raises for what the code does: a timeout, a crash, a
memory blow-up or an exception comes back as a failed ``SandboxResult`` with a ``kind`` and the
details, and the next call gets a healthy worker.

The code may also take over its worker process and answer for it, so nothing the worker sends is
believed: a request is written with a deadline (a worker that stops reading cannot block the
trainer), a reply must be one frame under ``max_output_kb`` that answers this request, and a
worker that breaks any of this is killed and its slot freed. Every wait has a deadline; a slot
whose caller never came back is reclaimed when its call is long overdue.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import hashlib
import importlib.util
import itertools
import json
import logging
import os
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from ..scalars import real_number
from ..text_limits import shorten
from . import protocol
from .limits import SandboxLimits
from .read_paths import sandbox_read_rules

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
#: ``crash``, ``output_too_large``, ``protocol`` — a worker that answered out of turn or with
#: something that is not a reply) or the sandbox's (``unavailable``, ``source_too_large``).
CODE_FAULTS = ("exception", "bad_result", "timeout", "memory", "crash", "output_too_large", "protocol")
#: the failure kinds an honest worker reports itself
WORKER_FAULTS = frozenset({"exception", "bad_result", "memory", "output_too_large"})
#: how long a caller waiting for a free worker sleeps before it checks for abandoned slots
WAIT_SLICE_S = 1.0
#: how far past its deadline (start-up and wall time) a busy slot must be before it is reclaimed
OVERDUE_GRACE_S = 5.0


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


@functools.lru_cache(maxsize=1)
def _pyseccomp_file() -> str | None:
    """Where the trainer's ``pyseccomp`` (one pure-Python module) lives, found without importing it."""
    spec = importlib.util.find_spec("pyseccomp")
    return spec.origin if spec is not None else None


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


def _is_crash(error: BaseException) -> bool:
    """The pipe broke or closed: the worker died (a timeout is also an ``OSError``, but not this)."""
    return isinstance(error, (EOFError, OSError)) and not isinstance(error, TimeoutError)


def _reply_problem(reply: Any, request: dict[str, Any]) -> str | None:
    """What makes ``reply`` not an honest worker's answer to ``request``, or None.

    The code can write to the worker's reply pipe itself, so a frame is checked before it is
    believed: the id of this request, ``ok`` a boolean, a finite number when a number was asked
    for, a failure kind the worker reports, text details.
    """
    if not isinstance(reply, dict):
        return f"the reply is a {type(reply).__name__}, not an object"
    if reply.get("id") != request["id"] or type(reply.get("ok")) is not bool:
        return "the reply does not answer this request"
    if reply.get("recycle") not in (None, True, False):
        return "'recycle' is not a boolean"
    if reply["ok"]:
        if "value" not in reply:
            return "the reply has no value"
        if request["result"] == "number":
            value = reply["value"]
            number = real_number(value) if type(value) in (int, float) else None
            if number is None or not math.isfinite(number):
                return "the value is not a finite number"
        return None
    if reply.get("kind") not in WORKER_FAULTS or not isinstance(reply.get("details", ""), str):
        return "the failure report is malformed"
    return None


def _wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> bool:
    """Resolve a waiter's future on its own loop; False if that loop is closed."""
    def settle() -> None:
        if not future.done():
            future.set_result(None)

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

    def __init__(self, limits: SandboxLimits, namespaces: bool, read_rules: list[str] | None = None):
        self.scratch = tempfile.mkdtemp(prefix="rft-sandbox-")
        rules = list(limits.read_paths) if read_rules is None else read_rules
        config = {
            "scratch": self.scratch,
            "namespaces": namespaces,
            "limits": {**dataclasses.asdict(limits), "read_paths": rules},
            "pyseccomp": _pyseccomp_file(),  # for an interpreter that lacks it (sandbox.interpreters)
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
                    [limits.python or sys.executable, "-I", "-B", "-c", _BOOTSTRAP, json.dumps(config)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
                    cwd=self.scratch, start_new_session=True, bufsize=0,
                )
            except OSError as error:
                shutil.rmtree(self.scratch, ignore_errors=True)
                raise SandboxUnavailable(f"cannot start a sandbox worker: {error}") from error
            self._finalizer = weakref.finalize(self, _kill_process_tree, self.process, self.scratch)
            assert self.process.stdin is not None and self.process.stdout is not None  # both are PIPEs
            self.request_fd = self.process.stdin.fileno()
            os.set_blocking(self.request_fd, False)  # requests are written with a deadline
            self.reader = protocol.FrameReader(self.process.stdout.fileno(), limits.max_output_bytes)
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

    def call(self, request: dict[str, Any], deadline: float) -> Any:
        """One round trip before ``deadline`` (``time.monotonic``). ``TimeoutError``, ``EOFError``,
        ``OSError`` and ``ProtocolError`` mean the worker is done for."""
        protocol.send_by(self.request_fd, protocol.encode(request), deadline)
        return self.reader.receive(deadline - time.monotonic())

    async def acall(self, request: dict[str, Any], deadline: float) -> Any:
        """``call`` for event loops."""
        await protocol.asend_by(self.request_fd, protocol.encode(request), deadline)
        return await self.reader.areceive(deadline - time.monotonic())

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
        #: checked-out workers and when they are overdue (a caller that never came back)
        self._busy: dict[WorkerProcess, float] = {}
        self._started = 0
        self._lock = threading.Condition()
        self._async_waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = collections.deque()
        self._closed = False
        self._ids = itertools.count()
        self.isolation: dict[str, Any] | None = None
        self.unavailable: str | None = None
        self._read_rules_checked: list[str] | None = None

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
            reply = worker.call(request, time.monotonic() + self.limits.wall_time_s)
        except BaseException as error:
            return self._failed(worker, entry, error, worker.exit_status() if _is_crash(error) else None)
        return self._finish(worker, request, reply)

    async def arun(self, source: str, args: list[Any], entry: str = "main", result: str = "json") -> SandboxResult:
        """``run`` for event loops: waits on the worker's pipes, no thread per call."""
        refusal = self._check_source(source)
        if refusal is not None:
            return refusal
        try:
            worker = await self._acheckout()
        except SandboxUnavailable as error:
            return SandboxResult.failure("unavailable", str(error))
        request = self._request(worker, source, entry, args, result)
        try:
            reply = await worker.acall(request, time.monotonic() + self.limits.wall_time_s)
        except BaseException as error:  # a cancelled caller too: the worker's state is unknown
            status = await asyncio.to_thread(worker.exit_status) if _is_crash(error) else None
            return self._failed(worker, entry, error, status)
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

    def _failed(self, worker: WorkerProcess, entry: str, error: BaseException, status: int | None) -> SandboxResult:
        """The worker is done for: kill it, free its slot, and say why (or re-raise what is not
        the worker's doing, such as a cancelled caller)."""
        self._discard(worker)
        if isinstance(error, TimeoutError):
            return SandboxResult.failure(
                "timeout", f"{entry}() did not return within {self.limits.wall_time_s:g} s; its sandbox was killed"
            )
        if isinstance(error, protocol.FrameTooLarge):
            return SandboxResult.failure(
                "output_too_large",
                f"the sandboxed process sent {error.size} bytes for {entry}(); the limit is {error.limit} bytes "
                "(sandbox.max_output_kb); its sandbox was killed",
            )
        if isinstance(error, protocol.ProtocolError):
            return self._broke_protocol(entry, str(error))
        if _is_crash(error):
            how = f"exit status {status}" if status is not None else type(error).__name__
            return SandboxResult.failure("crash", f"the sandboxed process died during {entry}() ({how})")
        raise error

    @staticmethod
    def _broke_protocol(entry: str, problem: str) -> SandboxResult:
        return SandboxResult.failure(
            "protocol", f"the sandboxed process broke the reply protocol during {entry}() ({problem}); "
            "its sandbox was killed",
        )

    def _finish(self, worker: WorkerProcess, request: dict[str, Any], reply: Any) -> SandboxResult:
        """Believe a reply only if it answers this request in the protocol's shape."""
        problem = _reply_problem(reply, request)
        if problem is not None:
            self._discard(worker)
            return self._broke_protocol(request["entry"], problem)
        worker.sources.add(request["source_id"])
        if reply.get("recycle"):
            self._discard(worker)
        else:
            self._checkin(worker)
        if reply["ok"]:
            value = reply["value"]
            return SandboxResult(ok=True, value=float(value) if request["result"] == "number" else value)
        return SandboxResult.failure(reply["kind"], shorten(reply.get("details", ""), self.limits.max_details_chars))

    def _reserve(self) -> WorkerProcess | bool:
        """Under the lock: an idle worker (now busy), True if the caller may start one, False to wait."""
        if self._closed:
            raise SandboxUnavailable("the sandbox pool is closed")
        if self.unavailable is not None:
            raise SandboxUnavailable(self.unavailable)
        if self._idle:
            worker = self._idle.pop()
            self._busy[worker] = self._overdue_at()
            return worker
        if self._started < self.size:
            self._started += 1
            return True
        return False

    def _overdue_at(self) -> float:
        """When a worker checked out now is overdue: its caller must have lost it."""
        return time.monotonic() + self.limits.start_timeout_s + self.limits.wall_time_s + OVERDUE_GRACE_S

    def _take_overdue(self) -> list[WorkerProcess]:
        """Under the lock: free the slots of busy workers long past any deadline (their callers
        never brought them back); the caller kills the workers returned, outside the lock."""
        now = time.monotonic()
        overdue = [worker for worker, at in self._busy.items() if now > at]
        for worker in overdue:
            del self._busy[worker]
            self._started -= 1
            self._wake_one()
        if overdue:
            logger.warning("sandbox pool: %d worker(s) never came back from a call; killed and replaced", len(overdue))
        return overdue

    def _checkout(self) -> WorkerProcess:
        while True:
            overdue: list[WorkerProcess] = []
            with self._lock:
                reserved = self._reserve()
                if reserved is False and not self._lock.wait(WAIT_SLICE_S):
                    overdue = self._take_overdue()
            for worker in overdue:
                worker.kill()
            if reserved is not False:
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
            timer = loop.call_later(WAIT_SLICE_S, protocol.settle, wakeup, TimeoutError())
            try:
                await wakeup
            except TimeoutError:
                with self._lock:
                    overdue = self._take_overdue()
                for worker in overdue:
                    worker.kill()
            except asyncio.CancelledError:
                with self._lock:
                    self._wake_one()  # pass on the wake-up this task may have been handed
                raise
            finally:
                timer.cancel()

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
        with self._lock:
            self._busy[worker] = self._overdue_at()
        return worker

    def _wake_all_async(self) -> None:
        while self._async_waiters:
            _wake(*self._async_waiters.popleft())

    def _spawn(self) -> WorkerProcess:
        try:
            return WorkerProcess(self.limits, self.namespaces, self._read_rules())
        except SandboxUnavailable as error:
            if error.layer != "namespaces" or self.require_namespaces:
                raise
            self.namespaces = False
            logger.warning(
                "SANDBOX IS WEAKER: %s. Landlock and seccomp still confine files and block sockets, "
                "but there is no PID, network or /proc isolation and no cap on total scratch writes. "
                "See docs/sandbox.md.", error,
            )
            return WorkerProcess(self.limits, namespaces=False, read_rules=self._read_rules())

    def _read_rules(self) -> list[str]:
        """``read_paths`` as Landlock rules, checked once (as root: what every user may read)."""
        if self._read_rules_checked is None:
            self._read_rules_checked = sandbox_read_rules(self.limits.read_paths)
        return self._read_rules_checked

    def _checkin(self, worker: WorkerProcess) -> None:
        with self._lock:
            if self._busy.pop(worker, None) is None:  # reclaimed as overdue: its slot is gone
                worker.kill()
            elif self._closed:
                self._started -= 1
                worker.kill()
            else:
                self._idle.append(worker)
            self._wake_one()

    def _discard(self, worker: WorkerProcess) -> None:
        worker.kill()
        with self._lock:
            if self._busy.pop(worker, None) is not None:  # not already reclaimed as overdue
                self._started -= 1
            self._wake_one()

    @property
    def counts(self) -> dict[str, int]:
        """Slots in use, idle and busy workers: for monitoring, and for tests that check the
        books balance after hostile code."""
        with self._lock:
            return {"started": self._started, "idle": len(self._idle), "busy": len(self._busy)}

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
