"""Files written all at once or not at all: under a ``*.tmp`` name beside the destination, flushed
to disk, then renamed into place with ``os.replace`` (atomic on one filesystem). Light on purpose:
the run report and the checkpoints both write this way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

#: the suffix of a file or folder being written; one left behind by a kill is deleted on resume
TMP_SUFFIX = ".tmp"


def fsync_directory(path: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform (Windows); the rename is still atomic
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: Path, writer: Callable[[Any], None]) -> None:
    """Call ``writer(file)`` on ``path.tmp``, flush it to disk, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + TMP_SUFFIX)
    with open(temporary, "wb") as handle:
        writer(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a small text file (JSON, Markdown) all at once or not at all."""
    atomic_write_bytes(path, lambda handle: handle.write(text.encode("utf-8")))
