"""The sandbox process: ``python -I -B -c BOOTSTRAP CONFIG_JSON``, speaking frames on stdin/stdout.

Three processes, so that nothing outlives what it belongs to:

- the *launcher* (the process the pool started) enters the namespaces, forks, and then only
  watches: if the trainer dies it kills the sandbox; if the sandbox dies it exits with its status;
- *init*, PID 1 of the new PID namespace, reaps orphans; when it dies the kernel kills every
  process in the namespace, so nothing the code started can survive the sandbox;
- the *worker* puts up Landlock, seccomp and rlimits, then runs requests one at a time.

Without user namespaces (the weaker mode) there is no init: the worker is a child subreaper
and kills its descendants itself. A request is ``{"id", "source_id", "source"?, "entry", "args",
"result"}``; a reply is ``{"id", "ok": true, "value"}`` or ``{"id", "ok": false, "kind",
"details"}``, plus ``"recycle": true`` when the worker should be replaced.
"""

from __future__ import annotations

import builtins
import json
import linecache
import math
import os
import select
import shutil
import signal
import sys
import traceback
from typing import Any, Callable

from ..scalars import real_number
from ..text_limits import shorten
from . import confine, protocol, syscalls

TRACEBACK_LINES = 8
SOURCE_FILENAME = "grader.py"


def _status_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # Linux < 5.3
        return None


def guard(child: int, trainer: int) -> None:
    """Launcher: exit with ``child``'s status, or kill it if the trainer goes away first.

    Not PR_SET_PDEATHSIG: that fires when the *thread* that started us exits, and graders are
    often called from short-lived threads.
    """
    watched = {fd: name for fd, name in ((_pidfd(child), "child"), (_pidfd(trainer), "trainer")) if fd is not None}
    poller = select.poll()
    for fd in watched:
        poller.register(fd, select.POLLIN)
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            os._exit(_status_code(status))
        if os.getppid() != trainer:
            break
        events = poller.poll(1000 if len(watched) == 2 else 200)
        if any(watched[fd] == "trainer" for fd, _ in events):
            break
    os.kill(child, signal.SIGKILL)
    os._exit(137)


def wait_for(pid: int) -> None:
    """Exit with ``pid``'s status once it exits."""
    _, status = os.waitpid(pid, 0)
    os._exit(_status_code(status))


def run_init(worker: "Worker") -> None:
    """PID 1 of the sandbox: run ``worker`` in a child, reap every orphan, exit with its status.

    Init lets go of the protocol pipes, so the pool sees end-of-file the moment the worker dies;
    when init exits, the kernel kills whatever is left in the PID namespace.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        worker.start()
        os._exit(0)
    worker.close_pipes()
    while True:
        try:
            done, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if done == pid:
            os._exit(_status_code(status))


class Worker:
    """Runs requests: compiles each source once, calls its entry point, cleans up after it."""

    def __init__(self, config: dict[str, Any], request_fd: int, reply_fd: int, namespaces: bool):
        self.config = config
        self.request_fd = request_fd
        self.reply_fd = reply_fd
        self.namespaces = namespaces
        self.scratch = config["scratch"]
        self.modules: dict[str, dict[str, Any]] = {}
        #: Sources whose import failed, with the report: later calls without the source (the pool
        #: sends it once per worker) get the same report, not "source never sent".
        self.import_failures: dict[str, str] = {}
        self.children_fd: int | None = None

    def refuse(self, message: str, layer: str) -> None:
        """Tell the pool the sandbox cannot be put up, and exit."""
        protocol.send(self.reply_fd, {"ready": False, "error": message, "layer": layer})
        os._exit(3)

    def close_pipes(self) -> None:
        os.close(self.request_fd)
        os.close(self.reply_fd)

    def start(self) -> None:
        """Confine this process, say so to the pool, then serve until the pool hangs up."""
        try:
            if not self.namespaces:
                syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
                self.children_fd = os.open(f"/proc/self/task/{os.getpid()}/children", os.O_RDONLY)
            isolation = confine.confine(self.config, self.namespaces)
        except confine.SetupError as error:
            self.refuse(str(error), error.layer)
        except OSError as error:
            self.refuse(f"cannot confine the worker: {error}", "other")
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # setup is over: stderr no longer matters
        protocol.send(self.reply_fd, {"ready": True, "isolation": isolation, "pid": os.getpid()})
        while True:
            request = protocol.receive(self.request_fd)
            if request is None:
                os._exit(0)
            reply = self.handle(request)
            if not self.clean_up():
                reply["recycle"] = True
            protocol.write_all(self.reply_fd, self._reply_frame(reply))
            if reply.get("recycle"):
                os._exit(0)

    def _reply_frame(self, reply: dict[str, Any]) -> bytes:
        """The encoded reply, details cut to ``max_details_chars``; a refusal instead when it is
        over ``max_output_kb`` (the pool kills a worker that sends a larger frame, and honest code
        that returns too much deserves a reason)."""
        limits = self.config["limits"]
        if reply.get("details"):
            reply["details"] = shorten(str(reply["details"]), limits["max_details_chars"])
        frame = protocol.encode(reply)
        limit = limits["max_output_kb"] * 1024
        if len(frame) - protocol.HEADER_BYTES <= limit:
            return frame
        return protocol.encode({
            "id": reply.get("id"), "ok": False, "kind": "output_too_large", "recycle": reply.get("recycle", False),
            "details": f"the reply is {len(frame) - protocol.HEADER_BYTES} bytes; the limit is {limit} bytes "
            "(sandbox.max_output_kb)",
        })

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one request; whatever the code does becomes a reply, never an exception here."""
        reply: dict[str, Any] = {"id": request.get("id")}
        try:
            entry = self._entry_point(request)
            value = entry(*request.get("args", []))
            reply.update(ok=True, value=self._result(value, request.get("result", "json")))
        except _BadResult as error:
            reply.update(ok=False, kind="bad_result", details=f"{request.get('entry')}() {error}")
        except _ImportFailed as error:
            reply.update(ok=False, kind="exception", details=str(error))
        except MemoryError as error:
            self._free_memory(error)
            reply.update(ok=False, kind="memory", details=self._traceback(), recycle=True)
        except BaseException:  # SystemExit and KeyboardInterrupt from untrusted code included
            reply.update(ok=False, kind="exception", details=self._traceback())
        return reply

    def _entry_point(self, request: dict[str, Any]) -> Callable[..., Any]:
        source_id = request["source_id"]
        module = self.modules.get(source_id)
        if module is None:
            if source_id in self.import_failures:
                raise _ImportFailed(self.import_failures[source_id])
            source = request.get("source")
            if source is None:
                raise LookupError(f"source {source_id} was never sent to this worker")
            linecache.cache[SOURCE_FILENAME] = (len(source), None, source.splitlines(True), SOURCE_FILENAME)
            module = {"__name__": "__grader__", "__builtins__": builtins}
            try:
                exec(compile(source, SOURCE_FILENAME, "exec"), module)
            except MemoryError:
                raise  # the worker is replaced: the next one may import it fine
            except BaseException:
                self.import_failures[source_id] = self._traceback()
                raise _ImportFailed(self.import_failures[source_id]) from None
            self.modules[source_id] = module
        entry = module.get(request["entry"])
        if not callable(entry):
            raise NameError(f"the source defines no function {request['entry']}()")
        return entry

    @staticmethod
    def _result(value: Any, kind: str) -> Any:
        if kind == "number":
            number = real_number(value)
            if number is None:
                raise _BadResult(f"returned {type(value).__name__} {_short_repr(value)}, not a number")
            if not math.isfinite(number):
                raise _BadResult(f"returned {number}, not a finite number")
            return number
        try:
            json.dumps(value)
        except (TypeError, ValueError) as error:
            raise _BadResult(f"returned a value that is not JSON: {error}") from None
        return value

    def _free_memory(self, error: BaseException | None) -> None:
        """After a MemoryError, drop what the code holds (its globals, its frames' locals), so that
        the report can be formatted and sent: this worker is replaced anyway."""
        for namespace in self.modules.values():
            namespace.clear()
        self.modules.clear()
        while error is not None:
            traceback.clear_frames(error.__traceback__)
            error = error.__context__

    @staticmethod
    def _traceback() -> str:
        """The last lines of the exception being handled, without the worker's own frames."""
        kind, error, trace = sys.exc_info()
        while trace is not None and trace.tb_frame.f_code.co_filename == __file__:
            trace = trace.tb_next  # our own frames say nothing about the grader's bug
        try:
            lines = "".join(traceback.format_exception(kind, error, trace)).strip().splitlines()
        except MemoryError:  # what the code holds out of reach (a thread, an extension) leaves no room
            return f"{getattr(kind, '__name__', 'Error')} (no memory left to format the traceback)"
        return "\n".join(lines[-TRACEBACK_LINES:])

    def clean_up(self) -> bool:
        """Kill what the call left running, empty scratch, go back to it. False if that failed."""
        self._kill_strays()
        try:
            os.chdir(self.scratch)
            with os.scandir(self.scratch) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
        except OSError:
            return False
        return True

    def _kill_strays(self) -> None:
        if self.namespaces:
            try:
                os.kill(-1, signal.SIGKILL)  # everyone in our PID namespace but init and us
            except ProcessLookupError:
                return
            self._reap()
            return
        assert self.children_fd is not None  # start() opens it when there are no namespaces
        for _ in range(64):  # weaker mode: we are a subreaper, so orphans come back to us
            children = [int(pid) for pid in os.pread(self.children_fd, 65536, 0).split()]
            if not children:
                return
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._reap()

    @staticmethod
    def _reap() -> None:
        """Wait for every child (they were just sent SIGKILL)."""
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


class _BadResult(Exception):
    """The entry point returned something the caller did not ask for."""


class _ImportFailed(Exception):
    """The source raised while it was imported; the message is its traceback's last lines."""


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:
        return "(unprintable)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main() -> None:
    """Launcher entry point; ``sys.argv[1]`` is the JSON config the pool wrote."""
    config = json.loads(sys.argv[1])
    confine.preload_seccomp(config.get("pyseccomp"))
    request_fd, reply_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # untrusted print() must never write into the protocol pipe
    trainer = os.getppid()
    worker = Worker(config, request_fd, reply_fd, namespaces=bool(config["namespaces"]))
    if not worker.namespaces:
        child = os.fork()
        if child == 0:
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
            worker.start()
        worker.close_pipes()
        guard(child, trainer)
    to_launcher_r, to_launcher_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    child = os.fork()
    if child == 0:  # the namespaces' holder: enters them, waits for its uid map, starts init
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        try:
            syscalls.unshare(confine.NAMESPACES | syscalls.CLONE_NEWPID)
        except OSError as error:
            worker.refuse(f"user namespaces are unavailable: {error}", "namespaces")
        os.write(to_launcher_w, b"+")
        if os.read(to_child_r, 1) != b"+":
            os._exit(3)
        init = os.fork()
        if init == 0:
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
            run_init(worker)
        worker.close_pipes()
        wait_for(init)
    if os.read(to_launcher_r, 1) == b"+":
        try:
            syscalls.map_ids(child, confine.SANDBOX_ID)
        except OSError as error:
            os.kill(child, signal.SIGKILL)
            worker.refuse(f"cannot map the sandbox's user id: {error}", "namespaces")
        os.write(to_child_w, b"+")
    worker.close_pipes()
    guard(child, trainer)
