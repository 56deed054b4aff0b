"""Grader configs as pydantic models, with errors turned into ``GraderConfigError``."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from ..errors import GraderConfigError

ConfigT = TypeVar("ConfigT", bound=pydantic.BaseModel)


class GraderConfig(pydantic.BaseModel):
    """Fields every grader has. Subclasses add theirs; unknown fields are errors (typos), and so
    are NaN and infinity in number fields (an infinite timeout is a hang). ``name`` is always
    there: ``build_grader`` fills it in when the JSON leaves it out (``grader_name``)."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)

    type: str
    name: str


def grader_name(config: dict[str, Any], key: str | None = None) -> str:
    """A grader's name: its ``name``, else the key it has in a ``multi`` grader, else its type.

    OpenAI's own examples leave ``name`` out (the RFT guide's top-level ``multi``, the Graders
    guide's ``python`` grader), so a missing name must not be an error; the key or the type is
    what metrics and ``sub_rewards`` then call it.
    """
    name = config.get("name")
    if name is not None:
        return str(name)
    return key if key is not None else str(config.get("type"))


def with_name(config: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """``config`` with ``name`` filled in as ``grader_name`` decides (a copy; the same dict when
    it has one)."""
    return config if "name" in config else {**config, "name": grader_name(config, key)}


#: how pydantic names the branches of a union in an error's location (not fields of the config)
_BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "none", "dict", "list"})


def _field_path(location: tuple[Any, ...]) -> str:
    """``input[0].content[1].input_audio.format``: the config's own path, without the names
    pydantic gives a union's branches (``str``, ``list[...]``, a tagged union and its tag)."""
    path = ""
    after_tagged_union = False
    for part in location:
        branch = isinstance(part, str) and ("[" in part or part in _BRANCH_NAMES or after_tagged_union)
        after_tagged_union = isinstance(part, str) and part.startswith("tagged-union[")
        if branch:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _telling_error(errors: list[Any]) -> Any:
    """The error to report: of the first bad field's errors, the one that got deepest. A value
    that fits no branch of a union fails every branch; the branch it was meant for (a content
    part of type ``input_audio``) went furthest and says what is wrong, the others only that it
    is not a string."""
    field = errors[0]["loc"][:1]
    candidates = [error for error in errors if error["loc"][:1] == field]
    return max(candidates, key=lambda error: (len(error["loc"]), not error["type"].endswith("_type")))


def parse_config(model: type[ConfigT], config: dict[str, Any]) -> ConfigT:
    """Validate ``config`` against ``model``; the first problem becomes a ``GraderConfigError``."""
    try:
        return model.model_validate(config)
    except pydantic.ValidationError as error:
        first = _telling_error(error.errors())
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] == "missing":
            message = "required field is missing"
        raise GraderConfigError(_field_path(first["loc"]) or None, message) from error
