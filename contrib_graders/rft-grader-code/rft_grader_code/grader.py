"""``code``: run the program in the sample against the item's tests; reward = fraction passed.

Each test runs in a fresh interpreter inside rft-plugins' sandbox (``rft_plugins.sandbox``: the
same isolation as ``python`` graders), with its own wall-time, memory and output limits, so one
hanging or crashing test costs that test only. Tests of one sample run concurrently on the
pool's warm workers.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any, Literal

from pydantic import Field

from rft_plugins import Grade, GradingError, Sample
from rft_plugins.graders.config import GraderConfig, parse_config
from rft_plugins.graders.templates import Template
from rft_plugins.sandbox import SandboxLimits, SandboxPool, SandboxResult

from .cases import TestCase, decode, parse_cases
from .extract import Extraction, extract_program
from .verdict import OutputMatch, Verdict, judge

#: the sandbox's own margin over a test's time limit (starting the interpreter, writing files)
HARNESS_MARGIN_S = 15.0
_REPORTED = 50  # per-test statuses listed in scores


class CodeConfig(GraderConfig):
    tests: str
    input: str = "{{ sample.output_text }}"
    setup: str | None = None
    fn_name: str | None = None
    extract: Extraction = "auto"
    time_limit_s: float = Field(5.0, gt=0, le=300)
    memory_mb: int = Field(1024, ge=64)
    max_output_kb: int = Field(1024, ge=1)
    max_tests: int | None = Field(None, ge=1)
    output_match: OutputMatch = "lines"
    float_tolerance: float | None = Field(None, gt=0)
    scoring: Literal["fraction", "all"] = "fraction"
    workers: int | None = Field(None, ge=1)


def harness_source() -> str:
    """The harness module with the runner's source appended as ``RUNNER_SOURCE``."""
    package = resources.files(__package__)
    harness = (package / "sandbox_harness.py").read_text(encoding="utf-8")
    runner = (package / "sandbox_runner.py").read_text(encoding="utf-8")
    return f"{harness}\nRUNNER_SOURCE = {runner!r}\n"


def _setup_code(rendered: str) -> str:
    """Setup code; MBPP's ``test_imports`` arrive as a JSON list of lines."""
    value = decode(rendered)
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    return rendered


def _server_error(result: SandboxResult) -> Grade:
    grade = Grade.failed("python_grader_server_error", result.details)
    grade.errors["python_grader_server_error_type"] = result.kind
    return grade


class CodeGrader:
    """Built once per config; its sandbox workers start on the first grade."""

    io_bound = True  # each test waits on a sandbox worker: batches run samples concurrently

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(CodeConfig, config)
        self.spec = spec
        self.input = Template(spec.input, "input")
        self.tests = Template(spec.tests, "tests")
        self.setup = Template(spec.setup, "setup") if spec.setup is not None else None
        self.fn_name = Template(spec.fn_name, "fn_name") if spec.fn_name is not None else None
        self.limits = {
            "time_limit_s": spec.time_limit_s,
            "memory_mb": spec.memory_mb,
            "max_output_bytes": spec.max_output_kb * 1024,
        }
        self.source = harness_source()
        self.pool = SandboxPool(SandboxLimits(
            wall_time_s=spec.time_limit_s + HARNESS_MARGIN_S,
            memory_mb=max(spec.memory_mb, 256),
            file_write_mb=64 + 2 * spec.max_output_kb // 1024,
            workers=spec.workers,
        ))

    def _cases(self, context: dict[str, Any], item: dict[str, Any]) -> tuple[list[TestCase], str]:
        fn_name = self.fn_name.render(context, item).strip() if self.fn_name else None
        try:
            cases = parse_cases(decode(self.tests.render(context, item)), fn_name or None)
        except ValueError as error:
            raise GradingError("invalid_variable_error", f"tests: {error}") from error
        if not cases:
            raise GradingError("invalid_variable_error", "tests: the item has no tests")
        setup = _setup_code(self.setup.render(context, item)) if self.setup else ""
        return cases[: self.spec.max_tests], setup

    async def _run(self, program: str, case: TestCase, setup: str) -> Verdict | SandboxResult:
        result = await self.pool.arun(self.source, [program, case.runner_spec(setup), self.limits], entry="run_case")
        if result.kind in ("unavailable", "source_too_large"):
            return result
        if result.kind == "timeout":
            return Verdict("timeout", f"ran past {self.spec.time_limit_s:g} s")
        if not result.ok:
            return Verdict("sandbox_error", result.details[-200:])
        return judge(case, result.value, self.spec.output_match, self.spec.float_tolerance, self.spec.time_limit_s)

    async def agrade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        context = sample.to_dict()
        cases, setup = self._cases(context, item)
        program = extract_program(self.input.render(context, item), self.spec.extract)
        if program is None or not program.strip():
            raise GradingError("sample_parse_error", "no Python program in the output")
        syntax = await self.pool.arun(self.source, [program], entry="check_syntax")
        if syntax.kind in ("unavailable", "source_too_large"):
            return _server_error(syntax)
        if not syntax.ok or syntax.value is not None:
            raise GradingError("sample_parse_error", f"the program does not compile: {syntax.value or syntax.details}")
        outcomes = await asyncio.gather(*(self._run(program, case, setup) for case in cases))
        for outcome in outcomes:
            if isinstance(outcome, SandboxResult):
                return _server_error(outcome)
        return self._grade(outcomes)  # type: ignore[arg-type]

    def _grade(self, verdicts: list[Verdict]) -> Grade:
        passed = sum(verdict.passed for verdict in verdicts)
        if self.spec.scoring == "all":
            reward = 1.0 if passed == len(verdicts) else 0.0
        else:
            reward = passed / len(verdicts)
        failures = [(index, verdict) for index, verdict in enumerate(verdicts) if not verdict.passed]
        scores: dict[str, Any] = {
            "passed": passed,
            "total": len(verdicts),
            "results": [verdict.status for verdict in verdicts[:_REPORTED]],
        }
        if failures:
            index, verdict = failures[0]
            scores["first_failure"] = f"test {index}: {verdict.status}" + (f": {verdict.detail}" if verdict.detail else "")
        return Grade(reward=reward, scores=scores)

    def close(self) -> None:
        """Stop the sandbox workers."""
        self.pool.close()
