"""OpenAI-style templates (``{{ item.a.b }}``, ``{{ sample.output_tools[0].function.name }}``).

As on OpenAI, a template is text with references: a namespace (``item`` or ``sample``) followed
by ``.name`` and ``[index]`` steps (``["key"]``, ``[0]``, ``[-1]``). Nothing else of jinja2 is
accepted (operators, filters, calls, ``{% %}`` statements): a template from someone else's job
file could otherwise compute ``{{ 10 ** 99999999 }}`` or build ``{{ "x" * 3000000000 }}`` in the
trainer. Rendering still goes through jinja2's sandboxed environment, which keeps references
away from Python internals (``item.x.__class__``). Values that are not strings render as JSON for
lists, objects, booleans and null, and with ``str()`` for numbers (OpenAI leaves this unspecified).
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import GraderConfigError, GradingError
from .types import Sample

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


_NOT_A_REFERENCE = "templates hold references such as {{ item.a[0].b }} only"


def _is_index(node: nodes.Node) -> bool:
    """A constant key or position: ``"key"``, ``0``, ``-1``."""
    if isinstance(node, nodes.Neg):
        return isinstance(node.node, nodes.Const) and type(node.node.value) is int
    return isinstance(node, nodes.Const) and isinstance(node.value, (int, str))


def _check_reference(node: nodes.Node, field: str) -> None:
    """``node`` is a name followed by ``.attr`` and constant ``[index]`` steps, or a config error."""
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getitem) and not _is_index(node.arg):
            raise GraderConfigError(field, f"{_NOT_A_REFERENCE}: an index is a number or a quoted key")
        node = node.node
    if not isinstance(node, nodes.Name):
        raise GraderConfigError(field, f"{_NOT_A_REFERENCE}, not {type(node).__name__}")


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
        for output in parsed.body:
            if not isinstance(output, nodes.Output):
                raise GraderConfigError(field, f"{_NOT_A_REFERENCE}, not {type(output).__name__} statements")
            for node in output.nodes:
                if not isinstance(node, nodes.TemplateData):
                    _check_reference(node, field)
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


class InputAndReference:
    """The ``input`` and ``reference`` templates of a grader that compares the two (string_check,
    text_similarity, plugins such as math_verify), compiled once and rendered together."""

    def __init__(self, input: str, reference: str):
        self.input = Template(input, "input")
        self.reference = Template(reference, "reference")

    def render(self, sample: Sample, item: dict[str, Any]) -> tuple[str, str]:
        """``(input, reference)`` for one sample; an unresolvable variable flags the sample."""
        context = sample.to_dict()
        return self.input.render(context, item), self.reference.render(context, item)
