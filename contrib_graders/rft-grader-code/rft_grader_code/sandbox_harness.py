"""Runs inside an rft-plugins sandbox worker: one test case of a candidate program per call.

The program never runs in this process. Each case starts a fresh ``python -I -B`` (the
``sandbox_runner`` source) in its own session, so whatever a case does (patch builtins, exit
early, fork, hang) cannot reach this harness, the worker's pipes or the next case, and the
expected outputs never enter the program's process. The sandbox confines all of it (files,
network, processes); this file adds per-case limits: wall time (the process group is killed),
address space and output size (rlimits the runner sets before the program starts).

Standard library only: the worker imports nothing else. Entry points: ``check_syntax(program)``
and ``run_case(program, case, limits)``; ``RUNNER_SOURCE`` is appended by the grader.
"""

import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time

RUNNER_SOURCE = ""  # replaced: the grader appends the runner's source after this module
STDERR_TAIL_BYTES = 2000


def check_syntax(program):
    """None when the program compiles, else why not (compiled here, in the sandbox, not in the trainer)."""
    try:
        compile(program, "solution.py", "exec", dont_inherit=True)
    except SyntaxError as error:
        return f"line {error.lineno}: {error.msg}"
    except (ValueError, RecursionError, MemoryError) as error:
        return f"cannot be compiled: {type(error).__name__}: {error}"
    return None


def _write(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)
    return path


def _read(path, limit, tail=False):
    with open(path, "rb") as stream:
        if tail:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - limit))
        data = stream.read(limit + 1)
    return data.decode("utf-8", errors="replace"), len(data) > limit


def _exit_waiter(process):
    """A descriptor that becomes readable when the process exits (a pidfd), or None."""
    try:
        return os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        return None


def _collect(process, result_fd, deadline, max_bytes):
    """Read the runner's report until the process exits or the deadline passes."""
    report = bytearray()
    exited = _exit_waiter(process)
    watched = [result_fd] + ([exited] if exited is not None else [])
    timed_out = False
    try:
        while process.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select(watched, [], [], remaining if exited is not None else min(remaining, 0.01))
            if result_fd in ready:
                chunk = os.read(result_fd, 65536)
                if not chunk:
                    watched.remove(result_fd)
                elif len(report) <= max_bytes:
                    report += chunk
        while not timed_out and result_fd in watched and select.select([result_fd], [], [], 0)[0]:
            chunk = os.read(result_fd, 65536)
            if not chunk or len(report) > max_bytes:
                break
            report += chunk
    finally:
        if exited is not None:
            os.close(exited)
    return bytes(report), timed_out


def run_case(program, case, limits):
    """Run one case in a fresh interpreter; report what happened (the grader judges it)."""
    folder = tempfile.mkdtemp(prefix="case-", dir=os.getcwd())
    _write(folder, "solution.py", program)
    _write(folder, "case.json", json.dumps(case))
    stdin_path = _write(folder, "stdin.txt", case.get("input", ""))
    nonce = secrets.token_hex(16).encode()
    nonce_read, nonce_write = os.pipe()
    result_read, result_write = os.pipe()
    os.write(nonce_write, nonce)
    os.close(nonce_write)
    started = time.monotonic()
    with open(stdin_path, "rb") as stdin, open(os.path.join(folder, "stdout.txt"), "wb") as stdout, \
            open(os.path.join(folder, "stderr.txt"), "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", RUNNER_SOURCE, folder, str(nonce_read), str(result_write), json.dumps(limits)],
            stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=(nonce_read, result_write),
            cwd=folder, start_new_session=True,
        )
    os.close(nonce_read)
    os.close(result_write)
    try:
        report, timed_out = _collect(process, result_read, started + limits["time_limit_s"], limits["max_output_bytes"])
    finally:
        os.close(result_read)
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the program's children too
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
    duration = time.monotonic() - started
    marker, _, value = report.partition(b"\n")
    output, output_cut = _read(os.path.join(folder, "stdout.txt"), limits["max_output_bytes"])
    errors, _ = _read(os.path.join(folder, "stderr.txt"), STDERR_TAIL_BYTES, tail=True)
    return {
        "timed_out": timed_out,
        "exit_code": process.returncode,
        "completed": secrets.compare_digest(marker, nonce),
        "value": value.decode("utf-8", errors="replace"),
        "stdout": output,
        "stdout_cut": output_cut,
        "stderr": errors,
        "duration_s": round(duration, 4),
    }
