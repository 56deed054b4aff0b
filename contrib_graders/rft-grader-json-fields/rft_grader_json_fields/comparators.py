"""How one field's output value is scored against the reference's, in [0, 1].

``exact``: equal as JSON (1 equals 1.0; true is not 1; objects ignore key order);
``numeric``: numbers (or numeric strings such as ``"1,250.5"``) within ``abs_tol``/``rel_tol``;
``fuzzy``: rapidfuzz's ``ratio`` of the two texts (partial credit); ``set``: arrays as sets,
scored by F1 of their elements (partial credit). ``threshold`` turns the partial scores into
pass (1) or fail (0).
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, utils

Comparison = Literal["exact", "numeric", "fuzzy", "set"]


class FieldRule(BaseModel):
    """How one field is compared and what it weighs in the reward."""

    model_config = ConfigDict(extra="forbid")

    compare: Comparison = "exact"
    weight: float = Field(1.0, gt=0)
    ignore_case: bool = False
    abs_tol: float = Field(0.0, ge=0)
    rel_tol: float = Field(0.0, ge=0)
    threshold: float | None = Field(None, gt=0, le=1)


def canonical(value: Any, ignore_case: bool) -> Any:
    """A hashable form in which equal JSON values are equal (and ``True`` is not ``1``)."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value.casefold() if ignore_case else value)
    if isinstance(value, list):
        return ("array", tuple(canonical(entry, ignore_case) for entry in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((str(key), canonical(entry, ignore_case)) for key, entry in value.items())))
    return ("other", repr(value))


def as_number(value: Any) -> float | None:
    """A finite number from a JSON number or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", "").replace("_", ""))
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _passing(similarity: float, threshold: float | None) -> float:
    if threshold is None:
        return similarity
    return 1.0 if similarity >= threshold else 0.0


def exact(expected: Any, actual: Any, rule: FieldRule) -> float:
    return float(canonical(expected, rule.ignore_case) == canonical(actual, rule.ignore_case))


def numeric(expected: Any, actual: Any, rule: FieldRule) -> float:
    wanted, got = as_number(expected), as_number(actual)
    if wanted is None or got is None:
        return 0.0
    return float(math.isclose(got, wanted, rel_tol=rule.rel_tol, abs_tol=rule.abs_tol))


def fuzzy(expected: Any, actual: Any, rule: FieldRule) -> float:
    processor = utils.default_process if rule.ignore_case else None
    return _passing(fuzz.ratio(_as_text(expected), _as_text(actual), processor=processor) / 100, rule.threshold)


def as_set(value: Any, ignore_case: bool) -> set[Any]:
    """An array's distinct elements (a lone value is a one-element set)."""
    entries = value if isinstance(value, list) else [value]
    return {canonical(entry, ignore_case) for entry in entries}


def set_f1(expected: Any, actual: Any, rule: FieldRule) -> float:
    wanted, got = as_set(expected, rule.ignore_case), as_set(actual, rule.ignore_case)
    if not wanted and not got:
        return 1.0
    return _passing(2 * len(wanted & got) / (len(wanted) + len(got)), rule.threshold)


COMPARATORS: dict[str, Callable[[Any, Any, FieldRule], float]] = {
    "exact": exact, "numeric": numeric, "fuzzy": fuzzy, "set": set_f1,
}
