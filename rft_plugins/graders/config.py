"""Grader configs as pydantic models, with errors turned into ``GraderConfigError``."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from ..errors import GraderConfigError

ConfigT = TypeVar("ConfigT", bound=pydantic.BaseModel)


class GraderConfig(pydantic.BaseModel):
    """Fields every grader has. Subclasses add theirs; unknown fields are errors (typos), and so
    are NaN and infinity in number fields (an infinite timeout is a hang)."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)

    type: str
    name: str


def _field_path(location: tuple[Any, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_config(model: type[ConfigT], config: dict[str, Any]) -> ConfigT:
    """Validate ``config`` against ``model``; the first problem becomes a ``GraderConfigError``."""
    try:
        return model.model_validate(config)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] == "missing":
            message = "required field is missing"
        raise GraderConfigError(_field_path(first["loc"]) or None, message) from error
