"""Reading JSON, YAML and JSONL arguments, with errors that name the file, line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import click
import yaml


def load_document(value: str, what: str = "grader") -> Any:
    """A JSON or YAML document given inline (``{...}``) or as a file path."""
    text, source = value, "<inline>"
    if not value.lstrip().startswith(("{", "[")):
        path = Path(value)
        if not path.is_file():
            raise click.BadParameter(f"{what} file {value!r} does not exist")
        text, source = path.read_text(encoding="utf-8"), value
    try:
        if source.endswith((".yaml", ".yml")):
            return yaml.safe_load(text)
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{source}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from error
    except yaml.YAMLError as error:
        raise click.BadParameter(f"{source}: invalid YAML: {error}") from error


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line names file and line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise click.BadParameter(f"{path}:{number}:{error.colno}: invalid JSON: {error.msg}") from error
            if not isinstance(row, dict):
                raise click.BadParameter(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield number, row
