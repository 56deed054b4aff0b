"""Exceptions users see. Each names what is wrong and where, so a bad config costs one read.

Every problem with a setting is a ``ConfigError``: the dotted ``field`` to fix and a one-line
``message``. Each kind of setting has its subclass (``GraderConfigError``, ``SamplerConfigError``,
...), so callers catch the kind they can handle, and the job loader catches them all to point at
the job file's line.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from .fields import nested

ConfigErrorT = TypeVar("ConfigErrorT", bound="ConfigError")


class RFTError(Exception):
    """Base class of every error this package raises on purpose."""


def first_line(error: BaseException) -> str:
    """The first line of an error's text, or its type's name when it has none: one line is what a
    plugin's rejection becomes in our messages (pydantic's and tracebacks' reports are longer)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class ConfigError(RFTError, ValueError):
    """A setting is invalid: ``field`` is its dotted path (None: the setting as a whole),
    ``message`` what is wrong with it; ``where`` (a file and line, a row) prefixes the text."""

    def __init__(self, field: str | None, message: str, where: str | None = None):
        self.field = field
        self.message = message
        self.where = where
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"{self.where}: {text}" if self.where else text

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from its fields, not from ``args`` (the subclasses' constructors differ): copies
        # and pickles (a sandbox worker, a data-parallel process) keep every attribute
        return _restore, (type(self), self.args, dict(self.__dict__))

    def within(self: ConfigErrorT, prefix: str) -> ConfigErrorT:
        """The same error with its field nested under ``prefix`` (a multi grader's key, the
        ``judge`` object a backend's options come from)."""
        moved = copy.copy(self)
        moved.field = nested(prefix, self.field)
        moved.args = (moved._text(),)
        return moved


def _restore(cls: type[ConfigErrorT], args: tuple[Any, ...], state: dict[str, Any]) -> ConfigErrorT:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class GraderConfigError(ConfigError):
    """A grader config is invalid; ``field`` is the dotted path of the bad field.

    ``flag`` names the OpenAI error flag a run reports for it instead of failing, if any
    (``formula_parse_error``).
    """

    def __init__(self, field: str | None, message: str, flag: str | None = None):
        self.flag = flag
        super().__init__(field, message)


class SamplerConfigError(ConfigError):
    """``trainer.sampler`` or its options are invalid; ``field`` is the dotted path of the bad field."""


class ShaperConfigError(ConfigError):
    """A ``trainer.reward_shapers`` entry is invalid; ``field`` is the dotted path of the bad field."""


class ToolCallParserError(ConfigError):
    """``trainer.tool_call_parser`` cannot be used; ``field`` is the dotted path of the bad part."""


class ResponseFormatError(ConfigError):
    """A response_format that cannot be applied; ``field`` is the dotted path of the bad part."""


class DataError(ConfigError):
    """A dataset row is malformed: ``where`` is ``file:line`` (or ``file row N``), ``field`` dotted;
    or a data source setting is (``field`` ``trainer.data_source...``, no ``where``)."""

    def __init__(self, message: str, where: str | None = None, field: str | None = None):
        super().__init__(field, message, where)


class JobError(ConfigError):
    """A job file is invalid: ``file``, ``line`` (1-based, when known) and dotted ``field``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, field: str | None = None):
        self.file = file
        self.line = line
        where = ":".join(str(part) for part in (file, line) if part is not None)
        super().__init__(field, message, where or None)


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
