"""``jsonl``: OpenAI's RFT training/validation files, one JSON object per line, checked line by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..documents import DocumentError, DocumentLimits, json_lines
from .loading import SourceWithoutOptions
from .rows import DataError, validate_row


class JsonlSource(SourceWithoutOptions):
    """Reads an OpenAI RFT JSONL file; a malformed line (bad UTF-8, bad JSON, nested past
    ``RFT_MAX_NESTING``) is an error naming file and line."""

    source_name = "jsonl"

    @staticmethod
    def matches(location: Any) -> bool:
        """Chosen by default for ``.jsonl`` files."""
        return isinstance(location, (str, Path)) and str(location).lower().endswith(".jsonl")

    def load(self, location: str | Path) -> list[dict[str, Any]]:
        path = Path(location)
        if not path.is_file():
            raise DataError("file does not exist", str(path))
        lines = json_lines(path, DocumentLimits.from_environment())
        try:
            return [validate_row(row, f"{path}:{number}") for number, row in lines]
        except DocumentError as error:
            raise DataError(error.message, f"{path}:{error.line}") from None
