"""``python``: rows already in memory (a list of dicts), for ``train(job, train_rows=[...])``."""

from __future__ import annotations

from typing import Any, Iterable

from .loading import SourceWithoutOptions
from .rows import validate_row


class PythonRowsSource(SourceWithoutOptions):
    """Takes any iterable of dicts (a list, a generator, a ``datasets.Dataset``) and checks each."""

    source_name = "python"

    @staticmethod
    def matches(location: Any) -> bool:
        """Chosen by default for anything that is not a path."""
        return not isinstance(location, (str, bytes)) and hasattr(location, "__iter__")

    def load(self, location: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [validate_row(dict(row) if hasattr(row, "keys") else row, f"row {index + 1}") for index, row in enumerate(location)]
