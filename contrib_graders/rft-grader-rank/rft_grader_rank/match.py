"""Which list entry is which answer: exact labels, whole words inside an entry, or fuzzy labels."""

from __future__ import annotations

import re
from typing import Callable, Literal

from rapidfuzz import fuzz

from .parse import ListItem

Matching = Literal["exact", "contains", "fuzzy"]


def normalise(text: str) -> str:
    """Case-folded, whitespace collapsed, outer punctuation removed: how labels are compared."""
    return " ".join(text.casefold().split()).strip(".,;:!?\"'()[]")


def matcher(matching: Matching, fuzzy_threshold: float) -> Callable[[ListItem, str], bool]:
    """``matches(item, alias)`` for the chosen way of matching (the alias is already normalised)."""
    if matching == "exact":
        return lambda item, alias: normalise(item.head) == alias
    if matching == "contains":
        return lambda item, alias: re.search(rf"(?<!\w){re.escape(alias)}(?!\w)", normalise(item.text)) is not None
    return lambda item, alias: fuzz.ratio(normalise(item.head), alias) >= fuzzy_threshold * 100


def distinct(items: list[ListItem]) -> tuple[list[ListItem], int]:
    """The items without repeats (first place kept), and how many repeats there were: naming an
    answer twice must not push other answers down, nor earn it a second place."""
    seen: set[str] = set()
    kept = []
    for item in items:
        key = normalise(item.head)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept, len(items) - len(kept)


def ranks(items: list[ListItem], answers: list[list[str]], matches: Callable[[ListItem, str], bool]) -> list[int | None]:
    """Rank (1-based) of each answer (a list of aliases) in ``items``, None where absent.

    One entry stands for one answer at most, so an entry that fits two answers counts once.
    """
    found: list[int | None] = [None] * len(answers)
    for position, item in enumerate(items, start=1):
        for index, aliases in enumerate(answers):
            if found[index] is None and any(matches(item, alias) for alias in aliases):
                found[index] = position
                break
    return found
