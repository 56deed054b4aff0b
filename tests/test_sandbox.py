"""The sandbox component, with every limit exercised for real (short limits keep this fast).

One pool with a single worker slot serves the fault tests, so "the next call still works" is
checked on the same pool, through the worker that replaced the faulty one.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rft_plugins.sandbox import SandboxLimits, SandboxPool, landlock

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or landlock.abi_version() < 1, reason="the sandbox needs Linux with Landlock"
)

WALL_S = 2.0
LIMITS = SandboxLimits(wall_time_s=WALL_S, memory_mb=256, file_write_mb=16, max_processes=32, workers=1)
ECHO = "def main(value):\n    return value\n"


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip()


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(LIMITS) as sandbox:
        yield sandbox


def run_timed(pool: SandboxPool, source: str, *args):
    started = time.monotonic()
    result = pool.run(code(source), list(args))
    return result, time.monotonic() - started


def assert_still_works(pool: SandboxPool) -> None:
    assert pool.run(ECHO, [{"still": "works"}]).value == {"still": "works"}


def host_processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes on the machine whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_warm_worker_is_reused_and_compiles_source_once(pool):
    counter = "calls = 0\ndef main():\n    global calls\n    calls += 1\n    return calls\n"
    first, second = pool.run(counter, []), pool.run(counter, [])
    assert (first.value, second.value) == (1, 2)
    assert pool.isolation["landlock"]["filesystem"] and pool.isolation["seccomp"]


def test_infinite_loop_is_killed_at_the_wall_time(pool):
    result, elapsed = run_timed(pool, "def main():\n    while True:\n        pass\n")
    assert result.kind == "timeout" and "2 s" in result.details
    assert WALL_S <= elapsed < WALL_S + 1.5
    assert_still_works(pool)


def test_memory_bomb_hits_the_address_space_limit(pool):
    # bytes(n) is calloc'd: address space is reserved (what RLIMIT_AS counts) without writing a
    # page. A bytearray bomb writes every byte; under other jobs' memory traffic faulting in
    # 224 MB took 1.2-1.6 s instead of 0.25 s, close to WALL_S, and once past it.
    result, elapsed = run_timed(
        pool,
        """
        def main():
            hoard = []
            while True:
                hoard.append(bytes(32 * 1024 * 1024))
        """,
    )
    assert result.kind == "memory" and "MemoryError" in result.details
    assert elapsed < WALL_S
    assert_still_works(pool)


def test_memory_held_in_globals_is_still_reported_as_memory():
    """Many small objects kept in a global leave no room to format a report: the worker drops the
    code's globals first, so the fault is ``memory`` with a traceback, not a crash."""
    with SandboxPool(SandboxLimits(wall_time_s=10, memory_mb=96, workers=1)) as small:
        result = small.run(code(
            """
            HOARD = []
            def main():
                while True:
                    HOARD.append(bytes(16))
            """
        ), [])
        assert result.kind == "memory" and 'File "grader.py", line 4, in main' in result.details
        assert_still_works(small)


def test_exception_reports_the_tracebacks_last_lines(pool):
    result = pool.run(code("def main():\n    ratio = 1 / 0\n    return ratio\n"), [])
    assert result.kind == "exception"
    assert 'File "grader.py", line 2, in main' in result.details
    assert result.details.endswith("ZeroDivisionError: division by zero")
    assert "worker.py" not in result.details  # our frames are not the grader's business
    assert_still_works(pool)


def test_non_number_is_refused_when_a_number_is_wanted(pool):
    result = pool.run(code("def main():\n    return 'high'\n"), [], result="number")
    assert result.kind == "bad_result" and "str 'high', not a number" in result.details
    assert pool.run(code("def main():\n    return 3\n"), [], result="number").value == 3.0


def test_connect_to_a_listening_loopback_port_fails(pool):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        result = pool.run(
            code(
                """
                import socket
                def main(port):
                    socket.create_connection(("127.0.0.1", port), timeout=1).sendall(b"leak")
                """
            ),
            [port],
        )
        with pytest.raises(socket.timeout):
            listener.accept()
    assert result.kind == "exception" and "PermissionError" in result.details
    assert_still_works(pool)


def test_huge_file_write_is_capped_and_scratch_is_emptied(pool):
    result = pool.run(
        code(
            """
            def main():
                with open("big.bin", "wb") as handle:
                    for _ in range(64):
                        handle.write(b"x" * 1024 * 1024)
            """
        ),
        [],
    )
    assert result.kind == "exception" and ("File too large" in result.details or "No space" in result.details)
    listing = pool.run(code("import os\ndef main():\n    return [os.getcwd() == os.environ['HOME'], os.listdir('.')]\n"), [])
    assert listing.value == [True, []]


def test_scratch_directory_is_writable(pool):
    result = pool.run(code("def main():\n    open('notes.txt', 'w').write('ok')\n    return open('notes.txt').read()\n"), [])
    assert result.value == "ok"


def test_writes_outside_scratch_are_denied(pool, tmp_path):
    existing = tmp_path / "checkpoint.json"
    existing.write_text("{}")
    targets = [str(tmp_path / "escaped.txt"), "/tmp/rft-sandbox-escaped.txt", str(existing)]
    result = pool.run(
        code(
            """
            def main(targets):
                denied = []
                for target in targets:
                    try:
                        open(target, "a").write("pwned")
                    except PermissionError:
                        denied.append(target)
                return denied
            """
        ),
        [targets],
    )
    assert result.value == targets
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/rft-sandbox-escaped.txt").exists()
    assert existing.read_text() == "{}"


def test_private_files_are_hidden_and_python_is_not(pool):
    result = pool.run(
        code(
            """
            import fractions, json
            def main(paths):
                hidden = []
                for path in paths:
                    try:
                        open(path).read()
                    except PermissionError:
                        hidden.append(path)
                return [hidden, str(fractions.Fraction(1, 3))]
            """
        ),
        [["/etc/shadow", __file__]],
    )
    assert result.value == [["/etc/shadow", __file__], "1/3"]


def test_trainer_secrets_stay_out_of_the_sandbox(monkeypatch, tmp_path):
    """API keys in the trainer's environment, SSH keys, the home and project directories and
    root-only key stores are out of reach, even where the sandbox keeps CAP_DAC_READ_SEARCH."""
    secret = "sk-rft-test-not-for-graders"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    directories = [str(home), os.path.expanduser("~"), os.getcwd(), str(Path(__file__).parent)]
    directories += [path for path in ("/etc/ssl/private",) if os.path.isdir(path)]
    files = [str(home / ".ssh" / "id_ed25519"), "/etc/shadow"]
    with SandboxPool(LIMITS) as fresh:  # workers start now, with the key in our environment
        result = fresh.run(
            code(
                """
                import glob, os
                def main(directories, files):
                    environments = [dict(os.environ)]
                    for path in glob.glob("/proc/*/environ"):
                        try:
                            environments.append(open(path, "rb").read().decode(errors="replace"))
                        except OSError:
                            pass
                    denied = []
                    for path in directories + files:
                        try:
                            os.listdir(path) if path in directories else open(path).read()
                        except PermissionError:
                            denied.append(path)
                    return [repr(environments), denied]
                """
            ),
            [directories, files],
        )
    environments, denied = result.value
    assert secret not in environments and "OPENAI_API_KEY" not in environments
    assert denied == directories + files


def test_child_process_left_sleeping_is_killed_after_the_call(pool):
    marker = "4242.125"
    result = pool.run(
        code(
            """
            import subprocess
            def main(marker):
                subprocess.Popen(["sleep", marker], start_new_session=True)
                return 1.0
            """
        ),
        [marker],
    )
    assert result.value == 1.0
    assert host_processes_with(f"sleep {marker}") == []
    assert_still_works(pool)


def test_children_die_with_a_sandbox_killed_for_time(pool):
    marker = "4343.125"
    result = pool.run(
        code(
            """
            import subprocess, time
            def main(marker):
                subprocess.Popen(["sleep", marker], start_new_session=True)
                time.sleep(60)
            """
        ),
        [marker],
    )
    assert result.kind == "timeout"
    deadline = time.monotonic() + 3
    while host_processes_with(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes_with(f"sleep {marker}") == []
    assert_still_works(pool)


def test_os_exit_is_a_crash(pool):
    result, elapsed = run_timed(pool, "import os\ndef main():\n    os._exit(7)\n")
    assert result.kind == "crash" and "exit status 7" in result.details
    assert elapsed < WALL_S
    assert_still_works(pool)


def test_source_over_the_size_cap_is_refused(pool):
    oversized = "def main():\n    return 1\n" + "#" * (LIMITS.max_source_bytes + 1)
    result = pool.run(oversized, [])
    assert result.kind == "source_too_large" and str(LIMITS.max_source_bytes) in result.details
    assert_still_works(pool)


def test_fork_bomb_is_capped(pool):
    if not pool.isolation["namespaces"]:
        pytest.skip("RLIMIT_NPROC is per user outside a user namespace")
    result = pool.run(
        code(
            """
            import os, time
            def main():
                started = 0
                try:
                    while started < 500:
                        if os.fork() == 0:
                            time.sleep(30)
                            os._exit(0)
                        started += 1
                except BlockingIOError:
                    return started
            """
        ),
        [],
    )
    assert isinstance(result.value, int) and result.value < LIMITS.max_processes
    assert_still_works(pool)


def test_namespaces_hide_processes_and_the_network(pool):
    if not pool.isolation["namespaces"]:
        pytest.skip("this machine has no unprivileged user namespaces")
    result = pool.run(
        code(
            """
            import os
            def main():
                return [os.getpid(), sorted(p for p in os.listdir("/proc") if p.isdigit())]
            """
        ),
        [],
    )
    pid, visible = result.value
    assert pid == 2 and visible == ["1", "2"]  # init and the worker: nothing of the host's


def test_async_calls_share_the_pool_and_faults_stay_local():
    async def scenario(pool: SandboxPool):
        calls = [pool.arun(ECHO, [index]) for index in range(6)]
        calls.append(pool.arun("def main():\n    while True:\n        pass\n", []))
        return await asyncio.gather(*calls)

    with SandboxPool(SandboxLimits(wall_time_s=1.0, memory_mb=256, workers=2)) as pool:
        results = asyncio.run(scenario(pool))
        assert [result.value for result in results[:6]] == list(range(6))
        assert results[6].kind == "timeout"
        assert asyncio.run(pool.arun(ECHO, ["after"])).value == "after"


def test_callers_that_give_up_do_not_leak_workers():
    async def scenario(pool: SandboxPool):
        with pytest.raises(asyncio.TimeoutError):  # gives up while the worker is starting
            await asyncio.wait_for(pool.arun(ECHO, [0]), 0.001)
        busy = asyncio.ensure_future(pool.arun("import time\ndef main():\n    time.sleep(0.3)\n    return 1\n", []))
        await asyncio.sleep(0.1)
        waiting = asyncio.ensure_future(pool.arun(ECHO, [2]))
        await asyncio.sleep(0.05)
        waiting.cancel()  # gives up while waiting for the only worker
        return await busy, await asyncio.wait_for(pool.arun(ECHO, [3]), 5)

    with SandboxPool(SandboxLimits(wall_time_s=WALL_S, memory_mb=256, workers=1)) as pool:
        busy, last = asyncio.run(scenario(pool))
        assert (busy.value, last.value) == (1, 3) and pool._started == 1


def test_a_sandbox_that_cannot_start_is_unavailable(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    with SandboxPool(LIMITS) as pool:
        result = pool.run(ECHO, [1])
    assert result.kind == "unavailable" and "/nonexistent/python3" in result.details


SYSV_SHM = """
import ctypes, os
def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.shmget(0, 4096, 0o1600) < 0:  # IPC_PRIVATE, IPC_CREAT | 0600
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return "a System V segment shared with the host"
"""


@pytest.mark.parametrize("source", [
    "import socket\ndef main():\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n",
    "def main():\n    open('/tmp/rft-weak-escape.txt', 'w')\n",
    SYSV_SHM,  # no IPC namespace in this mode
])
def test_weaker_mode_still_blocks_sockets_ipc_and_outside_writes(source):
    with SandboxPool(SandboxLimits(wall_time_s=WALL_S, memory_mb=256, workers=1, namespaces=False)) as pool:
        result = pool.run(source, [])
        assert result.kind == "exception" and "PermissionError" in result.details
        assert pool.isolation["namespaces"] is False
        assert_still_works(pool)
    assert not Path("/tmp/rft-weak-escape.txt").exists()


def test_weaker_mode_creates_no_message_queue_on_the_host():
    """Landlock refuses to open a POSIX message queue, but only after the kernel created it."""
    name = f"/rft-sandbox-test-{os.getpid()}"
    source = code(
        """
        import ctypes
        def main(name):
            if ctypes.CDLL(None, use_errno=True).mq_open(name.encode(), 0o100, 0o600, None) < 0:  # O_CREAT
                raise OSError(ctypes.get_errno(), "mq_open")
        """
    )
    with SandboxPool(SandboxLimits(wall_time_s=WALL_S, memory_mb=256, workers=1, namespaces=False)) as pool:
        result = pool.run(source, [name])
    assert result.kind == "exception" and "PermissionError" in result.details
    left_on_host = ctypes.CDLL(None, use_errno=True).mq_unlink(name.encode()) == 0  # removes it if so
    assert not left_on_host


def test_weaker_mode_kills_children_left_behind():
    marker = "4444.125"
    with SandboxPool(SandboxLimits(wall_time_s=WALL_S, memory_mb=256, workers=1, namespaces=False)) as pool:
        source = "import subprocess\ndef main(m):\n    subprocess.Popen(['sleep', m], start_new_session=True)\n    return 1\n"
        assert pool.run(source, [marker]).value == 1
        assert host_processes_with(f"sleep {marker}") == []


def test_sandbox_dies_with_the_trainer(tmp_path):
    """SIGKILL the process that owns the pool: its sandbox must not outlive it."""
    script = tmp_path / "trainer.py"
    script.write_text(
        code(
            """
            import sys, time
            from rft_plugins.sandbox import SandboxLimits, SandboxPool
            pool = SandboxPool(SandboxLimits(workers=1))
            assert pool.run("def main():\\n    return 1\\n", []).value == 1
            print(pool._idle[0].scratch, flush=True)
            time.sleep(60)
            """
        )
    )
    trainer = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    scratch = trainer.stdout.readline().strip()
    assert scratch and host_processes_with(scratch)  # launcher, namespace holder, init, worker
    os.kill(trainer.pid, signal.SIGKILL)
    trainer.wait()
    deadline = time.monotonic() + 5
    while host_processes_with(scratch) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes_with(scratch) == []
