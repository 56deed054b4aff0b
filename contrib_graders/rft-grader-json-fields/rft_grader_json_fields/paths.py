"""Field paths: JMESPath expressions (``address.city``, ``items[0].sku``, ``"odd key".x``).

Compared fields are either listed in the config or, by default, every leaf of the reference
object. A leaf is a value that is not a non-empty object: scalars, arrays (compared whole) and
``{}``. Extra-field detection works on key tuples: an output leaf is covered when it lies under
the leading keys of a compared path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FieldPath:
    """A compiled path and the keys it starts with (its ``covers`` prefix)."""

    expression: str
    compiled: ParsedResult
    covers: tuple[str, ...]

    @classmethod
    def parse(cls, expression: str) -> "FieldPath":
        """Compile ``expression``; ``ValueError`` if it is not JMESPath."""
        try:
            compiled = jmespath.compile(expression)
        except JMESPathError as error:
            raise ValueError(f"not a JMESPath expression: {error}") from error
        return cls(expression, compiled, leading_keys(compiled.parsed))

    @classmethod
    def of_keys(cls, keys: tuple[str, ...]) -> "FieldPath":
        """The path of a leaf found by walking an object."""
        expression = ".".join(key if _IDENTIFIER.fullmatch(key) else json.dumps(key) for key in keys)
        return cls(expression, jmespath.compile(expression), keys)

    def find(self, document: Any) -> Any:
        """The value at this path; None when absent (JMESPath does not tell absent from null)."""
        return self.compiled.search(document)


def leading_keys(node: dict[str, Any]) -> tuple[str, ...]:
    """The object keys a JMESPath AST starts with, up to its first index, filter or function."""
    kind = node["type"]
    if kind == "field":
        return (node["value"],)
    if kind == "index_expression":
        return leading_keys(node["children"][0])
    if kind != "subexpression":
        return ()
    keys: tuple[str, ...] = ()
    for child in node["children"]:
        keys += leading_keys(child)
        if child["type"] != "field":
            break
    return keys


def leaves(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Key tuples of every leaf under ``value`` (a non-empty object is walked, the rest is a leaf)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, (*prefix, str(key)))
    elif prefix:
        yield prefix
