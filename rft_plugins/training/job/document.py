"""Where a problem is in the job file: the parsed YAML or JSON with the line of every key, and
pydantic's errors turned into one ``JobError`` naming the file, the line and the dotted field as
the user wrote it (a TRL name, a ``--set`` on the command line)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pydantic
import yaml
from pydantic_core import ErrorDetails

from ...documents import DocumentError, DocumentLimits, load_json, load_yaml, read_text
from ...errors import JobError
from ...fields import dotted
from ...options import problem_message
from .aliases import hint as trl_hint
from .schema import Hyperparameters, Job, LoraSettings, Method, Reinforcement, TrainerSettings

#: which pydantic model validates the object at each path, for "did you mean" hints
_SECTIONS: dict[tuple[str, ...], type[pydantic.BaseModel]] = {
    (): Job,
    ("method",): Method,
    ("method", "reinforcement"): Reinforcement,
    ("method", "reinforcement", "hyperparameters"): Hyperparameters,
    ("trainer",): TrainerSettings,
    ("trainer", "lora"): LoraSettings,
}
#: where the grader sits in a job
GRADER_PATH = ("method", "reinforcement", "grader")
#: where a problem with a ``--set`` (or ``--backend``) value is reported
OVERRIDE_SOURCE = "command line"


@dataclass
class Document:
    """A parsed YAML/JSON document and the line of each key, by path; the fields written under
    TRL's names (``written``: our path -> the path as written) and set by ``--set``."""

    source: str
    data: Any
    lines: dict[tuple[Any, ...], int]
    written: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    overridden: set[tuple[Any, ...]] = field(default_factory=set)

    def as_written(self, path: Sequence[Any]) -> tuple[Any, ...]:
        """``path`` as the user wrote it (a TRL name for one of our fields)."""
        path = tuple(path)
        for end in range(len(path), 0, -1):
            if path[:end] in self.written:
                return self.written[path[:end]] + path[end:]
        return path

    def error(self, path: Sequence[Any], message: str) -> "JobError":
        """A ``JobError`` about ``path``: the field as written, at its line, or in ``--set``."""
        shown = self.as_written(path)
        field_name = dotted(shown) or None
        if any(shown[:end] in self.overridden for end in range(len(shown), 0, -1)):
            return JobError(message, OVERRIDE_SOURCE, None, field_name)
        return JobError(message, self.source, self.line_of(shown), field_name)

    def line_of(self, path: Sequence[Any]) -> int | None:
        """The line of the deepest key of ``path`` that the document has."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def _key_lines(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = path + (key.value,)
            lines[child] = key.start_mark.line + 1
            _key_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _key_lines(value, path + (index,), lines)


def read_document(path: Path) -> Document:
    """Parse YAML or JSON (by suffix; JSON first when unknown), keeping each key's line; size,
    UTF-8, YAML aliases and nesting are checked first (``rft_plugins.documents``)."""
    try:
        return _parse_document(path, DocumentLimits.from_environment())
    except DocumentError as error:
        raise JobError(error.message, str(path), error.line) from error


def _parse_document(path: Path, limits: DocumentLimits) -> Document:
    source = str(path)
    try:
        text = read_text(path, limits)
    except OSError as error:
        raise JobError(f"cannot read: {error.strerror or error}", source) from error
    is_yaml = path.suffix.lower() in {".yaml", ".yml"}
    root = None
    if not is_yaml:
        try:
            data = load_json(text, limits)
        except json.JSONDecodeError as error:
            if path.suffix.lower() == ".json":
                raise JobError(f"invalid JSON: {error.msg} (column {error.colno})", source, error.lineno) from error
            is_yaml = True
    if is_yaml:
        try:
            data, root = load_yaml(text, limits)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            problem = getattr(error, "problem", None) or str(error)
            raise JobError(f"invalid YAML: {problem}", source, mark.line + 1 if mark else None) from error
    lines: dict[tuple[Any, ...], int] = {}
    try:  # JSON is (nearly) YAML: one composer gives key lines for both
        root = root or yaml.compose(text)
        if root is not None:
            _key_lines(root, (), lines)
    except yaml.YAMLError:
        pass
    return Document(source, data, lines)


def _clean_location(data: Any, location: Sequence[Any], missing: bool) -> tuple[Any, ...]:
    """pydantic's error location without union-member tags (``int``, ``literal['auto']``)."""
    path: list[Any] = []
    for index, part in enumerate(location):
        last = index == len(location) - 1
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif not (missing and last):
            continue
        path.append(part)
    return tuple(path)


def _message(error: ErrorDetails, path: tuple[Any, ...]) -> str:
    """``problem_message``, with what to write instead of an unknown field (TRL's name, a typo)."""
    if error["type"] != "extra_forbidden":
        return problem_message(error)
    instead = trl_hint(str(path[-1]))
    if instead:  # a TRL / transformers field without a counterpart here
        return f"unknown field (TRL's {path[-1]} has no counterpart here): {instead}"
    section = _SECTIONS.get(path[:-1])
    hint = difflib.get_close_matches(str(path[-1]), list(section.model_fields), n=1) if section else []
    return "unknown field" + (f"; did you mean {hint[0]!r}?" if hint else "")


def schema_error(error: pydantic.ValidationError, document: Document) -> JobError:
    """The first problem pydantic found, located; union alternatives are merged into one line."""
    problems = error.errors()
    first = problems[0]
    path = _clean_location(document.data, first["loc"], first["type"] == "missing")
    messages: list[str] = []
    for problem in problems:
        if _clean_location(document.data, problem["loc"], problem["type"] == "missing") == path:
            text = _message(problem, path)
            if messages:
                text = text.removeprefix("Input should be ")
            if text not in messages:
                messages.append(text)
    return document.error(path, " or ".join(messages))
