"""OpenAI-style templates (``{{ item.a.b }}``, ``{{ sample.output_tools[0].function.name }}``).

Rendered by jinja2's sandboxed environment, so a template from someone else's job file cannot
reach Python internals. Only the namespaces ``item`` and ``sample`` exist. Values that are not
strings render as JSON for lists, objects, booleans and null, and with ``str()`` for numbers
(OpenAI leaves this unspecified).
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import GraderConfigError, GradingError

NAMESPACES = frozenset({"item", "sample"})


def _render_value(value: Any) -> Any:
    if isinstance(value, str) or isinstance(value, jinja2.Undefined):
        return value
    if isinstance(value, (dict, list, tuple, bool)) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return str(value)


_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    finalize=_render_value,
    autoescape=False,
    keep_trailing_newline=True,
)


class Template:
    """A compiled template; compile errors and unknown namespaces are config errors."""

    def __init__(self, source: str, field: str):
        if not isinstance(source, str):
            raise GraderConfigError(field, f"must be a string template, not {type(source).__name__}")
        self.source = source
        self.field = field
        try:
            parsed = _ENVIRONMENT.parse(source)
        except jinja2.TemplateSyntaxError as error:
            raise GraderConfigError(field, f"template syntax error: {error.message}") from error
        unknown = meta.find_undeclared_variables(parsed) - NAMESPACES
        if unknown:
            raise GraderConfigError(
                field,
                f"unknown template namespace(s) {sorted(unknown)}: only 'item' and 'sample' exist",
            )
        self._template = _ENVIRONMENT.from_string(source)

    def render(self, sample: dict[str, Any], item: dict[str, Any]) -> str:
        """Render with the two namespaces; an unresolvable variable flags the sample."""
        try:
            return self._template.render(sample=sample, item=item)
        except jinja2.UndefinedError as error:
            raise GradingError("invalid_variable_error", f"{self.field}: {error.message}") from error
        except jinja2.exceptions.SecurityError as error:
            raise GradingError("invalid_variable_error", f"{self.field}: {error}") from error

