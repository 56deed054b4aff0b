"""``python``: OpenAI's python grader. ``source`` defines ``grade(sample, item) -> float``.

The source runs in a sandbox (``rft_plugins.sandbox``): separate warm worker processes behind
namespaces, Landlock, seccomp and rlimits, never the trainer's process. ``sample`` and ``item``
arrive as plain dicts, as on OpenAI. A crash, hang, memory blow-up, exception or non-number
costs that sample: reward 0 with ``python_grader_runtime_error`` and the traceback's last lines.
A sandbox that cannot start is ``python_grader_server_error``.

Config beyond OpenAI's fields: ``sandbox`` overrides the limits (``wall_time_s``,
``memory_mb``, ``file_write_mb``, ``max_source_kb``, ``max_processes``, ``max_output_kb``,
``max_details_chars``, ``read_paths``, ``workers``) and may pick the interpreter (``python``).
The code runs on the interpreter ``RFT_GRADER_PYTHON`` names (an environment with OpenAI's grader
image, ``rft-plugins[grader-image]``), else on the trainer's, with the packages installed there;
``sandbox.python`` may choose only among those (``rft_plugins.sandbox.interpreters``).
``image_tag`` is accepted and otherwise ignored. A source that imports a package the interpreter
lacks fails on every sample: the details name the package and what to install, and the first
such failure of each package is logged once as an error. ``pass_threshold`` (OpenAI's evals)
adds a pass verdict beside the reward. As root, ``read_paths`` grants only what every user may
read (``rft_plugins.sandbox.read_paths``).
"""

from __future__ import annotations

import ast
import logging
import os
import threading
from typing import Any

import pydantic

from ..contract import GraderFactory, Register
from ..errors import GraderConfigError
from ..graders.config import GraderConfig, parse_config
from ..graders.types import Grade, Sample
from ..graders.verdicts import with_verdict
from ..project import hookimpl
from ..sandbox import SandboxLimits, SandboxPool, SandboxResult
from ..sandbox.grader_image import missing_module, missing_module_hint
from ..sandbox.interpreters import InterpreterNotAllowed, grader_interpreter
from ..sandbox.read_paths import readable_by_everyone
from ..text_limits import max_details_chars

logger = logging.getLogger(__name__)

_DEFAULTS = SandboxLimits()


class SandboxSettings(pydantic.BaseModel):
    """Per-grader overrides of the sandbox's limits (defaults: OpenAI's)."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)

    wall_time_s: float = pydantic.Field(default=_DEFAULTS.wall_time_s, gt=0)
    memory_mb: int = pydantic.Field(default=_DEFAULTS.memory_mb, ge=64)
    file_write_mb: int = pydantic.Field(default=_DEFAULTS.file_write_mb, ge=1)
    max_source_kb: int = pydantic.Field(default=_DEFAULTS.max_source_kb, ge=1)
    max_processes: int = pydantic.Field(default=_DEFAULTS.max_processes, ge=1)
    max_output_kb: int = pydantic.Field(default=_DEFAULTS.max_output_kb, ge=1)
    max_details_chars: int = pydantic.Field(default_factory=max_details_chars, ge=200)
    read_paths: list[str] = pydantic.Field(default_factory=list)
    workers: int | None = pydantic.Field(default=None, ge=1)
    python: str | None = pydantic.Field(default=None, min_length=1)

    def limits(self) -> SandboxLimits:
        """The pool's limits: these overrides on top of OpenAI's defaults, and the interpreter
        (``GraderConfigError`` on ``sandbox.python`` when it is not one the operator allows)."""
        try:
            python = grader_interpreter(self.python)
        except InterpreterNotAllowed as error:
            raise GraderConfigError("sandbox.python", str(error)) from error
        return SandboxLimits(**{**self.model_dump(), "read_paths": tuple(self.read_paths), "python": python})


def check_read_paths(paths: list[str]) -> None:
    """As root, a listed path that no ordinary user may read is refused up front: the sandbox
    would grant nothing there (``rft_plugins.sandbox.read_paths``), and the grader would fail
    later with a confusing permission error."""
    if os.geteuid() != 0:
        return
    for index, rules in enumerate(readable_by_everyone(paths)):
        if not rules:
            raise GraderConfigError(
                f"sandbox.read_paths[{index}]",
                f"{paths[index]} is missing or readable by root only; as root, read_paths grants only what "
                "every user may read",
            )


class PythonGraderConfig(GraderConfig):
    source: str
    image_tag: str | None = None
    pass_threshold: float | None = None
    sandbox: SandboxSettings = pydantic.Field(default_factory=SandboxSettings)


class MissingPackageReports:
    """Says once per process, loudly, that a grader's interpreter lacks a package: every sample
    the grader sees will score 0, and a run should not train on that in silence."""

    def __init__(self) -> None:
        self._said: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def report(self, grader: str, module: str, hint: str, interpreter: str) -> None:
        with self._lock:
            if (interpreter, module) in self._said:
                return
            self._said.add((interpreter, module))
        logger.error("python grader %r cannot import %s; every sample it grades scores 0. %s", grader, module, hint)


MISSING_PACKAGES = MissingPackageReports()


def _defines_grade(tree: ast.Module) -> bool:
    """Whether the module binds ``grade`` at top level (def, assignment or import)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == "grade":
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((alias.asname or alias.name) == "grade" for alias in node.names):
                return True
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(target, ast.Name) and target.id == "grade" for target in targets):
            return True
    return False


def check_source(source: str, max_bytes: int) -> None:
    """Size, syntax and a top-level ``grade``, checked by parsing only: untrusted code never
    runs in the trainer's process."""
    size = len(source.encode())
    if size > max_bytes:
        raise GraderConfigError(
            "source", f"is {size} bytes; the limit is {max_bytes} bytes (sandbox.max_source_kb)",
            flag="python_grader_server_error",  # run_grader answers with this flag; validate raises
        )
    try:
        tree = ast.parse(source, filename="grader.py")
        compile(tree, "grader.py", "exec", dont_inherit=True)
    except SyntaxError as error:
        raise GraderConfigError("source", f"line {error.lineno}: {error.msg}") from error
    except (ValueError, RecursionError, MemoryError) as error:
        raise GraderConfigError("source", f"cannot be compiled: {error}") from error
    if not _defines_grade(tree):
        raise GraderConfigError("source", "defines no top-level grade(sample, item) function")


class PythonGrader:
    """Grades in a pool of warm sandbox workers, started on the first grade (not on validate)."""

    io_bound = True  # each call waits on a worker process: batches run calls concurrently

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(PythonGraderConfig, config)
        self.limits = spec.sandbox.limits()
        check_source(spec.source, self.limits.max_source_bytes)
        check_read_paths(spec.sandbox.read_paths)
        if spec.image_tag is not None:
            logger.info("python grader %r: image_tag %r: the code runs on %s", spec.name, spec.image_tag, self.limits.python)
        self.name = spec.name
        self.source = spec.source
        self.pass_threshold = spec.pass_threshold
        self.pool = SandboxPool(self.limits)

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        """One grade from the calling thread (``run_grader``, sync callers)."""
        return self._to_grade(self.pool.run(self.source, [sample.to_dict(), item], entry="grade", result="number"))

    async def agrade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        """Batches take this path: one event loop waits on all workers' pipes, no thread per call."""
        return self._to_grade(await self.pool.arun(self.source, [sample.to_dict(), item], entry="grade", result="number"))

    def _to_grade(self, result: SandboxResult) -> Grade:
        if result.ok:
            return with_verdict(Grade(reward=result.value), self.pass_threshold)
        if result.kind in ("unavailable", "source_too_large"):
            grade = Grade(
                reward=0.0,
                errors={
                    "python_grader_server_error": True,
                    "python_grader_server_error_type": result.kind,
                    "python_grader_server_error_details": result.details,
                },
            )
            return with_verdict(grade, self.pass_threshold)
        details = result.details
        module = missing_module(details) if result.kind == "exception" else None
        if module is not None:
            hint = missing_module_hint(module, str(self.limits.python))
            details = f"{details}\n{hint}"
            MISSING_PACKAGES.report(self.name, module, hint, str(self.limits.python))
        grade = Grade.failed("python_grader_runtime_error", details)
        grade.metadata["sandbox_fault"] = result.kind
        if module is not None:
            grade.metadata["missing_module"] = module
        return with_verdict(grade, self.pass_threshold)

    def close(self) -> None:
        """Kill this grader's workers."""
        self.pool.close()


@hookimpl
def rft_register_graders(register: Register[GraderFactory]) -> None:
    register("python", PythonGrader)
