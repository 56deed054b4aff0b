"""Turn a grader's JSON object into a runnable grader, through the plugin registry."""

from __future__ import annotations

from typing import Any

import pydantic

from ..errors import GraderConfigError
from ..registry import Registration, find
from .config import with_name
from .runner import LoadedGrader


def _rejected(error: Exception, registration: Registration) -> GraderConfigError:
    """A grader plugin's own ``GraderConfigError`` as it is; any other exception its factory
    raised, as a ``GraderConfigError`` naming the plugin."""
    if isinstance(error, GraderConfigError):
        return error
    if isinstance(error, pydantic.ValidationError):
        return GraderConfigError(None, f"{registration.plugin}: {error}")
    return GraderConfigError(
        None, f"grader type {registration.name!r} (plugin {registration.plugin}) rejected its config: {error}"
    )


def build_grader(config: dict[str, Any], key: str | None = None) -> LoadedGrader:
    """Build the grader that ``config["type"]`` names; bad configs raise ``GraderConfigError``.

    A grader without ``name`` (as in OpenAI's examples) is named after ``key`` (its key in a
    ``multi`` grader) or else its type; the plugin receives the config with that name in it.
    """
    if not isinstance(config, dict):
        raise GraderConfigError(None, f"a grader is a JSON object, not {type(config).__name__}")
    if "type" not in config:
        raise GraderConfigError("type", "required field is missing")
    registration = find("graders", config["type"], "type", GraderConfigError)
    config = with_name(config, key)
    if not isinstance(config["name"], str) or not config["name"]:
        raise GraderConfigError("name", "must be a non-empty string")
    impl = registration.create(config, rejected=_rejected)
    if not (hasattr(impl, "grade") or hasattr(impl, "agrade")):
        raise GraderConfigError(
            "type", f"plugin {registration.plugin} built a {type(impl).__name__} without grade() or agrade()"
        )
    return LoadedGrader(config, impl, registration.plugin)


def validate_grader(config: dict[str, Any]) -> dict[str, Any]:
    """Check a grader config by building it (then releasing it); returns the config unchanged."""
    build_grader(config).close()
    return config
