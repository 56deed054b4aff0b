"""Pick the data source for a location (by name or by what it is) and load validated rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import build, collect, find
from .rows import DataError, validate_row

#: where a data source's name and options are set in a job
SOURCE_FIELD = "trainer.data_source"
OPTIONS_FIELD = "trainer.data_source_options"


def choose_source(location: Any, name: str | None = None) -> str:
    """The registered data source to use: ``name`` if given, else the first whose ``matches`` accepts."""
    if name is not None:
        return find("data_sources", name, SOURCE_FIELD, DataError).name
    sources = collect("data_sources")
    for source_name, registration in sources.items():
        matches = getattr(registration.factory, "matches", None)
        if callable(matches) and matches(location):
            return source_name
    shown = location if isinstance(location, (str, Path)) else type(location).__name__
    raise DataError(f"no data source reads {shown}; set trainer.data_source (known: {', '.join(sorted(sources))})")


def build_source(name: str, options: dict[str, Any] | None = None) -> Any:
    """The data source ``name`` with its options (a source rejects bad ones with a ``DataError``)."""
    return build("data_sources", name, dict(options or {}), field=SOURCE_FIELD, error=DataError)


def load_rows(
    location: Any, source: str | None = None, options: dict[str, Any] | None = None, reader: Any = None
) -> list[dict[str, Any]]:
    """Rows from ``location`` (a path or an in-memory iterable), every one checked as an RFT row;
    ``reader`` is the source ``source`` and ``options`` built already (a checked job's)."""
    name = choose_source(location, source)
    reader = reader if reader is not None else build_source(name, options)
    rows = list(reader.load(location))
    if not getattr(reader, "validates_rows", False):  # a third-party source: check its rows here
        label = location if isinstance(location, (str, Path)) else name
        rows = [validate_row(row, f"{label} row {index + 1}") for index, row in enumerate(rows)]
    return rows


class SourceWithoutOptions:
    """A built-in data source that takes no options: being given some is a ``DataError``."""

    #: the name the source is registered under, for the message
    source_name = ""
    validates_rows = True

    def __init__(self, options: dict[str, Any] | None = None):
        if options:
            raise DataError(f"the {self.source_name} data source takes no options, got {sorted(options)}", field=OPTIONS_FIELD)
