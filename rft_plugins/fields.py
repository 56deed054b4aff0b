"""Dotted field names (``trainer.reward_shapers[0].cache``) and the document paths they stand for.

Every error about a setting names its field the same way, whether it was found in a job file, a
grader's JSON, a plugin's options or a ``--set`` on the command line, so that one spelling can be
searched for, typed back into ``--set``, and located in the file.
"""

from __future__ import annotations

from typing import Any, Sequence

#: a field as a path into the parsed document: keys, and list indices as ints
Path = tuple[Any, ...]


def dotted(path: Sequence[Any]) -> str:
    """A document path as the dotted field name errors show: ``trainer.lora.r``, ``a.b[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def path_of(dotted: str) -> Path:
    """``"a.b[0].c"`` as a document path: ``("a", "b", 0, "c")``."""
    parts = dotted.replace("[", ".").replace("]", "").split(".")
    return tuple(int(part) if part.isdigit() else part for part in parts if part)


def nested(prefix: str | None, field: str | None) -> str:
    """``field`` under ``prefix`` as one dotted name (``judge`` and ``model``: ``judge.model``);
    either may be empty."""
    return ".".join(part for part in (prefix, field) if part)
