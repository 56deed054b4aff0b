"""The Linux calls Python's standard library lacks (3.10+): unshare, mount, prctl, capset.

Thin ctypes wrappers that raise ``OSError`` like the ``os`` module does.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 16384
MS_PRIVATE = 1 << 18

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAP_DAC_READ_SEARCH = 2

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    _check(
        _libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
        f"mount {fstype or ''} on {target}",
    )


def prctl(option: int, value: int = 0) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def limit_capabilities(keep: tuple[int, ...] = ()) -> None:
    """Hold only the capabilities in ``keep`` (ambient too, so that they survive ``exec``)."""
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for capability in keep:
        word, bit = divmod(capability, 32)
        data[word].effective |= 1 << bit
        data[word].permitted |= 1 << bit
        data[word].inheritable |= 1 << bit
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    for capability in keep:
        _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, capability, 0, 0), "raise ambient capability")


def map_ids(pid: int, sandbox_id: int) -> None:
    """Write the uid and gid maps of the user namespace that process ``pid`` just entered.

    Written by the parent, not by ``pid`` itself: mapping root needs CAP_SETFCAP in the parent
    namespace (Linux 5.12+). An ordinary user can map only itself: it becomes ``sandbox_id``
    inside, a non-zero id, so a later ``exec`` grants no capabilities. Root maps itself (0) and
    ``sandbox_id`` to the same ids outside, so that the sandbox can switch to that unprivileged
    id: the kernel never enforces RLIMIT_NPROC on uid 0.
    """
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        uid_map, gid_map = f"0 0 1\n{sandbox_id} {sandbox_id} 1", f"0 {gid} 1\n{sandbox_id} {sandbox_id} 1"
    else:
        with open(f"/proc/{pid}/setgroups", "w") as handle:
            handle.write("deny")
        uid_map, gid_map = f"{sandbox_id} {uid} 1", f"{sandbox_id} {gid} 1"
    with open(f"/proc/{pid}/uid_map", "w") as handle:
        handle.write(uid_map)
    with open(f"/proc/{pid}/gid_map", "w") as handle:
        handle.write(gid_map)


def become(sandbox_id: int, keep: tuple[int, ...]) -> None:
    """Switch to ``sandbox_id`` (uid, gid, no supplementary groups), keeping only ``keep``."""
    prctl(PR_SET_KEEPCAPS, 1)
    os.setgroups([])
    os.setresgid(sandbox_id, sandbox_id, sandbox_id)
    os.setresuid(sandbox_id, sandbox_id, sandbox_id)
    limit_capabilities(keep)
