"""Reading JSON, YAML and JSONL arguments, with errors that name the file, line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import click
import yaml

from ..documents import DocumentError, DocumentLimits, json_lines, load_json, load_yaml, read_text


def load_document(value: str, what: str = "grader") -> Any:
    """A JSON or YAML document given inline (``{...}``) or as a file path, under the document
    limits (size, UTF-8, YAML aliases, nesting: ``rft_plugins.documents``)."""
    limits = DocumentLimits.from_environment()
    text, source = value, "<inline>"
    try:
        if not value.lstrip().startswith(("{", "[")):
            path = Path(value)
            if not path.is_file():
                raise click.BadParameter(f"{what} file {value!r} does not exist")
            text, source = read_text(path, limits), value
        if source.endswith((".yaml", ".yml")):
            return load_yaml(text, limits)[0]
        return load_json(text, limits)
    except DocumentError as error:
        where = f"{source}:{error.line}" if error.line else source
        raise click.BadParameter(f"{where}: {error.message}") from None
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{source}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from error
    except yaml.YAMLError as error:
        raise click.BadParameter(f"{source}: invalid YAML: {error}") from error


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line (UTF-8, JSON, nesting) names
    file and line."""
    try:
        for number, row in json_lines(path, DocumentLimits.from_environment()):
            if not isinstance(row, dict):
                raise click.BadParameter(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield number, row
    except DocumentError as error:
        raise click.BadParameter(f"{path}:{error.line}: {error.message}") from None
