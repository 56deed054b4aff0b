"""The layers a worker puts between untrusted code and the machine, in the order they go up.

1. Namespaces (user, mount, PID, network, IPC, UTS, cgroup): no network interface but a
   loopback that is down, a PID space of its own (whatever it starts dies with it), its own
   /proc, and a tmpfs scratch directory whose size caps file writes. Needs unprivileged user
   namespaces; without them the worker runs the weaker mode described in docs/sandbox.md.
2. Landlock: read-only access to the Python installation and system files, write access to the
   scratch directory only; no TCP; no signals to processes outside the sandbox (kernel 6.12+).
3. seccomp: no ``socket()`` at all (pipes and ``socketpair`` still work), no io_uring, ptrace,
   mount, module loading, BPF, keyrings and other kernel attack surface.
4. Capabilities dropped, ``no_new_privs`` set, rlimits (address space, file size, processes,
   open files, core dumps).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import resource
import site
import sys
import sysconfig
from typing import Any

from . import landlock, syscalls

#: Entered first; the PID namespace comes after the uid map is written (it needs the map).
NAMESPACES = (
    syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS | syscalls.CLONE_NEWNET | syscalls.CLONE_NEWIPC
    | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWCGROUP
)
#: The uid and gid untrusted code has inside its user namespace (mapped to ours outside).
SANDBOX_ID = 65534

SYSTEM_READ_PATHS = (
    "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/sys/devices/system/cpu",
    "/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/full",
)
#: /etc as a whole holds secrets readable by root (/etc/shadow); only what programs need.
#: Not /etc/ssl as a whole: /etc/ssl/private holds TLS keys, and root's sandbox keeps
#: CAP_DAC_READ_SEARCH.
ETC_READ_PATHS = (
    "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/nsswitch.conf", "/etc/localtime",
    "/etc/timezone", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/alternatives", "/etc/mime.types",
    "/etc/os-release", "/etc/locale.alias", "/etc/python3*",
)

#: Denied with EPERM. ``socket`` covers every address family: named Unix sockets
#: (/run/docker.sock...) escape network namespaces and are not covered by Landlock.
DENIED_SYSCALLS = (
    "socket", "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace",
    "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
    "fsmount", "fsconfig", "fspick", "mount_setattr", "swapon", "swapoff", "reboot", "setns",
    "unshare", "open_by_handle_at", "name_to_handle_at", "acct", "quotactl", "syslog",
    "lookup_dcookie", "vhangup",
    # System V IPC and POSIX message queues: in the weaker mode (no IPC namespace) they reach
    # those of every process of the user, the trainer's included; nothing a grader needs.
    "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
    "semtimedop", "semctl", "mq_open", "mq_unlink",
    "pidfd_getfd",  # another process's file descriptors (Landlock's ptrace rule also stops it)
)


class SetupError(Exception):
    """The sandbox could not be put up. ``layer`` names what failed (``namespaces`` can be
    retried without them, in the weaker mode; the others cannot)."""

    def __init__(self, message: str, layer: str):
        super().__init__(message)
        self.layer = layer


def mount_private_filesystems(scratch: str, size_mb: int) -> bool:
    """Scratch becomes a size-capped tmpfs; /proc shows only the sandbox. True if /proc is ours."""
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    syscalls.mount(
        "tmpfs", scratch, "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NODEV,
        f"size={size_mb}m,mode=0700,uid={SANDBOX_ID},gid={SANDBOX_ID}",
    )
    try:
        syscalls.mount("proc", "/proc", "proc", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
    except OSError:  # a /proc with masked paths (containers) cannot be mounted again: hide it
        return False
    return True


def python_read_paths() -> list[str]:
    """Where this interpreter's standard library and installed packages live."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)}
    paths.update(path for path in sysconfig.get_paths().values())
    paths.update(site.getsitepackages())
    return sorted(paths)


def filesystem_ruleset(scratch: str, extra_read: list[str], own_proc: bool) -> landlock.Ruleset:
    """Read: system and Python; read-write: scratch and /dev/null; nothing else."""
    ruleset = landlock.Ruleset(landlock.abi_version())
    read_paths = [*SYSTEM_READ_PATHS, *python_read_paths(), *extra_read]
    for pattern in ETC_READ_PATHS:
        read_paths.extend(glob.glob(pattern))
    if own_proc:
        read_paths.append("/proc")
    for path in read_paths:
        ruleset.allow(path, landlock.READ)
    ruleset.allow(scratch, landlock.READ | landlock.WRITE)
    ruleset.allow("/dev/null", landlock.READ_FILE | landlock.WRITE_FILE | landlock.TRUNCATE)
    return ruleset


def preload_seccomp(fallback: str | None) -> None:
    """Import ``pyseccomp`` while it can still be read: from this interpreter's packages, or else
    from the trainer's copy at ``fallback`` (a grader environment need not have it). Landlock goes
    up first and hides the trainer's environment; ``load_seccomp_filter`` then finds the module
    already imported, or reports that it is missing."""
    try:
        import pyseccomp  # noqa: F401
        return
    except ImportError:
        if fallback is None:
            return
    except RuntimeError:  # libseccomp.so.2 is missing: the trainer's copy cannot load it either
        return
    spec = importlib.util.spec_from_file_location("pyseccomp", fallback)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (OSError, ImportError, RuntimeError, SyntaxError):
        return
    sys.modules["pyseccomp"] = module


def load_seccomp_filter() -> None:
    """Deny the system calls in ``DENIED_SYSCALLS`` (unknown names on this kernel are skipped)."""
    try:
        import pyseccomp
    except (ImportError, RuntimeError) as error:  # RuntimeError: libseccomp.so.2 is missing
        raise SetupError(f"seccomp is unavailable ({error}); install libseccomp2", "seccomp") from error
    syscall_filter = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            syscall_filter.add_rule(pyseccomp.ERRNO(1), name)  # EPERM
        except (OSError, ValueError):
            continue
    syscall_filter.load()


def apply_rlimits(limits: dict[str, Any], count_processes: bool) -> None:
    """Memory, file size, open files, core dumps and (in a user namespace) processes."""
    mib = 1024 * 1024
    caps = {
        resource.RLIMIT_AS: limits["memory_mb"] * mib,
        resource.RLIMIT_FSIZE: limits["file_write_mb"] * mib,
        resource.RLIMIT_NOFILE: limits["max_open_files"],
        resource.RLIMIT_CORE: 0,
    }
    if count_processes:  # outside a user namespace RLIMIT_NPROC counts all of the user's processes
        caps[resource.RLIMIT_NPROC] = limits["max_processes"]
    for which, value in caps.items():
        resource.setrlimit(which, (value, value))


def confine(config: dict[str, Any], namespaces: bool) -> dict[str, Any]:
    """Put every layer up in this (single-threaded) worker; returns what is in force."""
    scratch = config["scratch"]
    own_proc = False
    if namespaces:
        try:
            own_proc = mount_private_filesystems(scratch, config["limits"]["file_write_mb"])
        except OSError as error:
            raise SetupError(f"cannot mount the sandbox's filesystems: {error}", "namespaces") from error
    os.chdir(scratch)
    try:
        enforced = filesystem_ruleset(scratch, config["limits"]["read_paths"], own_proc).restrict_self()
    except OSError as error:
        raise SetupError(
            f"Landlock is unavailable ({error}); the sandbox needs Linux 5.13+ with Landlock enabled", "landlock"
        ) from error
    load_seccomp_filter()
    switched = namespaces and os.geteuid() == 0
    if switched:
        # Root's sandbox: leave uid 0 (which RLIMIT_NPROC exempts) for SANDBOX_ID, keeping only
        # the right to read files root owns (the Python installation may live under /root);
        # Landlock still decides which files those are.
        syscalls.become(SANDBOX_ID, keep=(syscalls.CAP_DAC_READ_SEARCH,))
    else:
        syscalls.limit_capabilities()
    apply_rlimits(config["limits"], count_processes=namespaces)
    return {
        "namespaces": namespaces,
        "uid_switched": switched,
        "own_proc": own_proc,
        "scratch_tmpfs": namespaces,
        "landlock_abi": landlock.abi_version(),
        "landlock": enforced,
        "seccomp": True,
    }
