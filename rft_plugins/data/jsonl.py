"""``jsonl``: OpenAI's RFT training/validation files, one JSON object per line, checked line by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .rows import DataError, validate_row


class JsonlSource:
    """Reads an OpenAI RFT JSONL file; a malformed line is an error naming file and line."""

    validates_rows = True

    def __init__(self, options: dict[str, Any] | None = None):
        if options:
            raise DataError(f"the jsonl data source takes no options, got {sorted(options)}", field="trainer.data_source_options")

    @staticmethod
    def matches(location: Any) -> bool:
        """Chosen by default for ``.jsonl`` files."""
        return isinstance(location, (str, Path)) and str(location).lower().endswith(".jsonl")

    def load(self, location: str | Path) -> list[dict[str, Any]]:
        path = Path(location)
        if not path.is_file():
            raise DataError("file does not exist", str(path))
        rows: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"invalid JSON: {error.msg} (column {error.colno})", where) from error
                rows.append(validate_row(row, where))
        return rows
