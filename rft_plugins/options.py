"""A config or a plugin's options checked by a pydantic model, reported as one ``field: problem``.

Graders, judge backends, samplers, reward shapers and data sources describe what they accept with
pydantic models. pydantic's report runs to many lines and names union branches (``str``,
``literal['auto']``) that are no field of the config; users get the first problem instead, as a
``ConfigError`` of the plugin's kind naming the dotted field, in the words the job loader uses too.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

import pydantic
from pydantic_core import ErrorDetails

from .errors import ConfigError
from .fields import Path, dotted, nested

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

#: how pydantic names the branches of a union in an error's location (not fields of the config)
BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "none", "dict", "list"})


def field_path(location: Sequence[Any]) -> Path:
    """``("input", 0, "content", 1, "input_audio", "format")``: the config's own path in a pydantic
    error location, without the names pydantic gives a union's branches (``str``, ``list[...]``, a
    tagged union and its tag)."""
    path: list[Any] = []
    after_tagged_union = False
    for part in location:
        branch = isinstance(part, str) and ("[" in part or part in BRANCH_NAMES or after_tagged_union)
        after_tagged_union = isinstance(part, str) and part.startswith("tagged-union[")
        if not branch:
            path.append(part)
    return tuple(path)


def problem_message(error: ErrorDetails) -> str:
    """What is wrong, in one line: ``unknown field``, ``required field is missing``, or pydantic's
    message without its ``Value error,`` prefix."""
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return error["msg"].removeprefix("Value error, ")


def telling_error(errors: Sequence[ErrorDetails]) -> ErrorDetails:
    """The error to report: of the first bad field's errors, the one that got deepest. A value
    that fits no branch of a union fails every branch; the branch it was meant for (a content
    part of type ``input_audio``) went furthest and says what is wrong, the others only that it
    is not a string."""
    field = errors[0]["loc"][:1]
    candidates = [error for error in errors if error["loc"][:1] == field]
    return max(candidates, key=lambda error: (len(error["loc"]), not error["type"].endswith("_type")))


def first_problem(error: pydantic.ValidationError) -> tuple[str, str]:
    """The problem to report of a failed validation: its dotted field (``""``: the whole config)
    and one line saying what is wrong."""
    telling = telling_error(error.errors())
    return dotted(field_path(telling["loc"])), problem_message(telling)


def parse_options(
    model: type[ModelT], data: Any, error: type[ConfigError] = ConfigError, within: str = "",
    whole: str | None = None,
) -> ModelT:
    """``data`` validated by ``model``; the first problem raises ``error`` naming its field under
    ``within`` (a problem with the config as a whole names ``within``, else ``whole``)."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as failure:
        field, message = first_problem(failure)
        raise error(nested(within, field) or whole, message) from failure
