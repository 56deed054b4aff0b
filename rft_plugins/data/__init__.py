"""Dataset rows for ``rft train``: data sources (plugins) and the OpenAI RFT row checks."""

from .loading import choose_source, load_rows
from .rows import DataError, validate_row

__all__ = ["DataError", "choose_source", "load_rows", "validate_row"]
