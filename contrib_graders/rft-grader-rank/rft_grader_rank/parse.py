"""Ranked lists out of model text: JSON arrays, numbered or bulleted lines, comma-separated runs.

A model writes rankings many ways ("1. BRCA1 - likely", "- **TP53**", "Answer: A, B, C", a
JSON array); each becomes a list of ``ListItem``s in rank order. An item keeps its full text (for
``contains`` matching) and its head, the label before an explanation (" - ", ": ", " (").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_NUMBERED = re.compile(r"^\s*(?:rank\s*)?#?\(?\d{1,3}(?:[.):\]]|\s*[-–—:])\s*(?P<item>\S.*)$", re.IGNORECASE)
_BULLETED = re.compile(r"^\s*[-*•+‣◦▪]\s+(?P<item>\S.*)$")
_LABEL = re.compile(r"^[^,;:>\n]{1,40}:\s*(?=\S)")  # "Answer: ", "Ranking: " before a one-line list
_SEPARATORS = re.compile(r"\s*(?:[,;]|\s>\s|->|→)\s*")
_EXPLANATION = re.compile(r"\s+[-–—]\s+|:\s+|\s+\(")
_MARKUP = re.compile(r"[*_`~]+")


class UnparseableList(ValueError):
    """The text holds no list of answers."""


@dataclass(frozen=True)
class ListItem:
    """One entry of a ranked list: its whole text and the label that heads it."""

    text: str
    head: str


def _item(raw: str) -> ListItem | None:
    text = _MARKUP.sub("", raw).strip().strip("\"'").rstrip(".,;").strip()
    head = _EXPLANATION.split(text, maxsplit=1)[0].strip().strip("\"'").rstrip(".,;:").strip()
    return ListItem(text, head) if head else None


def _from_json(value: Any) -> list[str] | None:
    """The entries of a JSON array (or of an object's only array); None for other JSON."""
    if isinstance(value, dict):
        arrays = [entry for entry in value.values() if isinstance(entry, list)]
        value = arrays[0] if len(arrays) == 1 else None
    if not isinstance(value, list):
        return None
    if not all(isinstance(entry, (str, int, float)) and not isinstance(entry, bool) for entry in value):
        raise UnparseableList("the JSON array holds objects or arrays, not answers")
    return [str(entry) for entry in value]


def _marked_lines(lines: list[str]) -> list[str]:
    numbered = [match["item"] for line in lines if (match := _NUMBERED.match(line))]
    return numbered or [match["item"] for line in lines if (match := _BULLETED.match(line))]


def _split_one_line(line: str, max_item_words: int) -> list[str]:
    body = _LABEL.sub("", line, count=1) if _SEPARATORS.search(line) else line
    parts = [part for part in _SEPARATORS.split(body) if part.strip()]
    if len(parts) == 1 and len(parts[0].split()) > max_item_words:
        raise UnparseableList(f"no list: one sentence of {len(parts[0].split())} words")
    return parts


def parse_ranked_list(text: str, max_item_words: int = 12) -> list[ListItem]:
    """The list's items in rank order; ``UnparseableList`` when there is none.

    Tried in turn: a JSON array; numbered lines (prose around them is ignored); bulleted lines;
    several plain lines, one item each; one line split on ``,`` ``;`` ``>`` ``->``. One line
    without separators is a one-item list unless it is longer than ``max_item_words`` (prose).
    """
    stripped = text.strip()
    if not stripped:
        raise UnparseableList("the output is empty")
    try:
        raw = _from_json(json.loads(stripped))
    except json.JSONDecodeError:
        raw = None
    if raw is None:
        lines = [line for line in stripped.splitlines() if line.strip()]
        raw = _marked_lines(lines)
        if not raw:
            raw = lines if len(lines) > 1 else _split_one_line(lines[0], max_item_words)
    items = [item for entry in raw if (item := _item(entry)) is not None]
    if not items:
        raise UnparseableList("the list has no entries")
    return items
