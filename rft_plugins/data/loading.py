"""Pick the data source for a location (by name or by what it is) and load validated rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import collect, unknown_name
from .rows import DataError, validate_row


def choose_source(location: Any, name: str | None = None) -> str:
    """The registered data source to use: ``name`` if given, else the first whose ``matches`` accepts."""
    sources = collect("data_sources")
    if name is not None:
        if name not in sources:
            raise DataError(unknown_name("data_sources", name, sources), field="trainer.data_source")
        return name
    for source_name, registration in sources.items():
        matches = getattr(registration.factory, "matches", None)
        if callable(matches) and matches(location):
            return source_name
    shown = location if isinstance(location, (str, Path)) else type(location).__name__
    raise DataError(f"no data source reads {shown}; set trainer.data_source (known: {', '.join(sorted(sources))})")


def load_rows(location: Any, source: str | None = None, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows from ``location`` (a path or an in-memory iterable), every one checked as an RFT row."""
    name = choose_source(location, source)
    reader = collect("data_sources")[name].factory(dict(options or {}))
    rows = list(reader.load(location))
    if not getattr(reader, "validates_rows", False):  # a third-party source: check its rows here
        label = location if isinstance(location, (str, Path)) else name
        rows = [validate_row(row, f"{label} row {index + 1}") for index, row in enumerate(rows)]
    return rows
