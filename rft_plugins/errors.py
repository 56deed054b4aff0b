"""Exceptions users see. Each names what is wrong and where, so a bad config costs one read."""

from __future__ import annotations


class RFTError(Exception):
    """Base class of every error this package raises on purpose."""


class GraderConfigError(RFTError, ValueError):
    """A grader config is invalid; ``field`` is the dotted path of the bad field.

    ``flag`` names the OpenAI error flag a run reports for it instead of failing, if any
    (``formula_parse_error``).
    """

    def __init__(self, field: str | None, message: str, flag: str | None = None):
        self.field = field
        self.message = message
        self.flag = flag
        super().__init__(f"{field}: {message}" if field else message)

    def within(self, prefix: str) -> "GraderConfigError":
        """The same error with its field nested under ``prefix`` (e.g. a multi grader's key)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return GraderConfigError(field, self.message, self.flag)


class PluginConflictError(RFTError):
    """Two plugins registered the same name for the same kind of thing."""


class PluginLoadError(RFTError):
    """A plugin failed to import (raised only with ``RFT_STRICT_PLUGINS=1``)."""


class GradingError(RFTError):
    """Raised by a grader to flag one sample: costs that sample's reward, never the run.

    ``flag`` is one of OpenAI's error flags (``invalid_variable_error``, ...); ``details`` is
    reported next to it where OpenAI has a ``*_details`` field.
    """

    def __init__(self, flag: str, details: str = ""):
        self.flag = flag
        self.details = details
        super().__init__(f"{flag}: {details}" if details else flag)
