"""Cutting text that may be huge (an exception message, a server's body) down to a readable size.

Details travel into ``samples.jsonl``, checkpoints and terminals: a grader whose exception message
is 30 MB must not make each of them 30 MB. Stdlib only: the sandbox worker imports it before it
is confined.
"""

from __future__ import annotations

import os

#: default for ``RFT_MAX_DETAILS_CHARS``: the longest ``*_details`` text a grade keeps
MAX_DETAILS_CHARS = 8000
DETAILS_ENVIRONMENT_VARIABLE = "RFT_MAX_DETAILS_CHARS"


def max_details_chars() -> int:
    """The details limit in force: ``RFT_MAX_DETAILS_CHARS`` when set (at least 200), else 8000."""
    value = os.environ.get(DETAILS_ENVIRONMENT_VARIABLE, "")
    return max(200, int(value)) if value.strip().isdigit() else MAX_DETAILS_CHARS


def shorten(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its head and tail around a note saying
    how much was cut: the start names the error, the end usually holds the message."""
    if len(text) <= limit:
        return text
    note = f"\n[... {len(text) - limit:,} characters cut: details are limited to {limit:,} ...]\n"
    keep = max(0, limit - len(note))
    head = keep // 2
    return text[:head] + note + text[len(text) - (keep - head):]
