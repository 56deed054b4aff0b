"""What a sandboxed call may use. Defaults are OpenAI's limits for python graders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..text_limits import max_details_chars as default_max_details_chars


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox pool; every field can be overridden per grader.

    ``wall_time_s`` bounds each call (the parent kills the worker past it); ``memory_mb`` is the
    worker's address space (RLIMIT_AS); ``file_write_mb`` caps the scratch directory (a tmpfs of
    that size) and any single file (RLIMIT_FSIZE); ``max_processes`` caps fork bombs
    (RLIMIT_NPROC). ``read_paths`` are extra directories or files the code may read (the Python
    installation and system libraries are always readable). ``workers`` is the pool size
    (default: one per CPU core). ``namespaces=False`` skips Linux namespaces and runs the weaker
    mode that machines without unprivileged user namespaces get (see docs/sandbox.md).
    ``max_output_kb`` caps one reply (the value or the error): a larger one is refused, and a
    worker that sends one anyway is killed. ``max_details_chars`` cuts error details (a 30 MB
    exception message) to their head and tail (default: ``RFT_MAX_DETAILS_CHARS``, else 8000).
    ``python`` is the interpreter the workers run (default: the trainer's); whoever builds the
    limits must trust it, since it starts before the sandbox is up (``sandbox.interpreters``).
    """

    wall_time_s: float = 120.0
    memory_mb: int = 2048
    file_write_mb: int = 1024
    max_source_kb: int = 256
    max_processes: int = 64
    max_open_files: int = 256
    max_output_kb: int = 1024
    max_details_chars: int = field(default_factory=default_max_details_chars)
    read_paths: tuple[str, ...] = field(default_factory=tuple)
    workers: int | None = None
    namespaces: bool = True
    start_timeout_s: float = 30.0
    python: str | None = None

    @property
    def pool_size(self) -> int:
        """How many warm workers the pool may hold."""
        return self.workers or os.cpu_count() or 1

    @property
    def max_output_bytes(self) -> int:
        """``max_output_kb`` in bytes: the largest reply frame the pool reads."""
        return self.max_output_kb * 1024

    @property
    def max_source_bytes(self) -> int:
        """``max_source_kb`` in bytes (UTF-8), the unit sources are measured in."""
        return self.max_source_kb * 1024
