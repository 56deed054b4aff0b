"""Landlock (Linux 5.13+), through its three system calls: which files a process may touch.

A Landlock ruleset, once applied, holds for the process and every child it starts, and cannot be
lifted: exactly what untrusted code needs. Python has no binding in its standard library and the
one on PyPI is a pre-release that knows filesystem rules only; this module also handles TCP
(ABI 4) and the scoping of signals and abstract Unix sockets (ABI 6) when the kernel has them.
"""

from __future__ import annotations

import ctypes
import os
import stat
from dataclasses import dataclass, field

_SYS_CREATE_RULESET = 444  # the same number on every architecture (new-style syscall table)
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

# Filesystem rights, with the ABI version that introduced them.
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3

#: What ABI 1 handles: every right above but REFER and TRUNCATE.
ABI1_RIGHTS = (
    EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR
    | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
)
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE
READ = EXECUTE | READ_FILE | READ_DIR
WRITE = (
    WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_SYM
    | REFER | TRUNCATE
)

_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled at boot."""
    version = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    """The filesystem rights this kernel knows; naming others makes create_ruleset fail."""
    return ABI1_RIGHTS | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock {what}: {os.strerror(code)}")
    return result


@dataclass
class Ruleset:
    """Paths and their rights; ``restrict_self`` denies everything else, for good.

    Paths that do not exist are skipped (a system without /lib64 is fine).
    """

    abi: int
    rules: list[tuple[str, int]] = field(default_factory=list)

    def allow(self, path: str, rights: int) -> None:
        """Grant ``rights`` on ``path`` and, for a directory, everything beneath it."""
        self.rules.append((path, rights))

    def restrict_self(self) -> dict[str, bool]:
        """Apply the ruleset to this process (single-threaded!); returns what was enforced."""
        if self.abi < 1:
            raise OSError("Landlock is not available in this kernel")
        handled_fs = _handled_fs(self.abi)
        attr = _RulesetAttr(handled_access_fs=handled_fs)
        size = 8
        if self.abi >= 4:
            attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP  # no rule: no TCP at all
            size = 16
        if self.abi >= 6:
            attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
            size = 24
        ruleset_fd = _check(
            _libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)),
            "create_ruleset",
        )
        try:
            for path, rights in self.rules:
                self._add_rule(ruleset_fd, path, rights & handled_fs)
            _check(_libc.prctl(38, 1, 0, 0, 0), "no_new_privs")  # PR_SET_NO_NEW_PRIVS
            _check(_libc.syscall(_SYS_RESTRICT_SELF, ruleset_fd, ctypes.c_uint32(0)), "restrict_self")
        finally:
            os.close(ruleset_fd)
        return {"filesystem": True, "tcp": self.abi >= 4, "signals": self.abi >= 6}

    @staticmethod
    def _add_rule(ruleset_fd: int, path: str, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                rights &= FILE_RIGHTS
            attr = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
            _check(
                _libc.syscall(_SYS_ADD_RULE, ruleset_fd, _RULE_PATH_BENEATH, ctypes.byref(attr), ctypes.c_uint32(0)),
                f"add_rule({path})",
            )
        finally:
            os.close(fd)
