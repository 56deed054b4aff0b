"""``rft train JOB --set dotted.field=value``: any job field from the command line.

The value is read as YAML (``4`` is a number, ``true`` a boolean, ``[a, b]`` a list, ``null``
nothing; quote it for a string that would read otherwise), and set into the parsed job before it
is validated, so a bad value is reported like one in the file, naming ``--set`` and the field.
"""

from __future__ import annotations

from typing import Any, Sequence

import yaml

from ...fields import Path, dotted, path_of


class OverrideProblem(ValueError):
    """An override that cannot be applied: its document path, and why."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def parse_override(text: str) -> tuple[str, Any]:
    """``"trainer.num_generations=8"`` as ``("trainer.num_generations", 8)``; ValueError when it
    is not ``FIELD=VALUE`` or the value is not YAML."""
    field, equals, value = text.partition("=")
    field = field.strip()
    if not equals or not field or not path_of(field):
        raise ValueError(f"{text!r} is not FIELD=VALUE (e.g. trainer.learning_rate=1e-4)")
    try:
        return field, yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as error:
        raise ValueError(f"{field}: the value {value!r} is not YAML ({getattr(error, 'problem', error)})") from error


def apply_overrides(data: dict[str, Any], overrides: Sequence[tuple[str, Any]]) -> set[Path]:
    """Set each ``(dotted field, value)`` in ``data`` (changed in place), creating mappings on the
    way; returns the paths set. A path through something that is not a mapping (or a list long
    enough, for a ``[n]`` index) is an ``OverrideProblem``."""
    done: set[Path] = set()
    for field, value in overrides:
        path = path_of(field)
        node: Any = data
        for depth, key in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(node, dict) and not isinstance(key, int):
                if last:
                    node[key] = value
                elif node.get(key) is None:
                    node[key] = {}
            elif not (isinstance(node, list) and isinstance(key, int) and key < len(node)):
                where = dotted(path[:depth]) or "the job"
                shape = f"a list of {len(node)}" if isinstance(node, list) else f"a {type(node).__name__} value"
                raise OverrideProblem(path[:depth], f"cannot set {field}: {where} is {shape}")
            elif last:
                node[key] = value
            node = node[key]
        done.add(path)
    return done
