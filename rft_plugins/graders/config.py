"""Grader configs as pydantic models, with errors turned into ``GraderConfigError``."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from ..errors import GraderConfigError
from ..options import parse_options

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


def parse_config(model: type[ConfigT], config: dict[str, Any]) -> ConfigT:
    """Validate ``config`` against ``model``; the first problem becomes a ``GraderConfigError``."""
    return parse_options(model, config, GraderConfigError)
