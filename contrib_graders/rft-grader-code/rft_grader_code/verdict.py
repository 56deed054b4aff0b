"""Whether one test passed, judged in the trainer from what the sandboxed run reported.

Comparison happens here, not in the sandbox: the expected output never enters the sandbox, so
the program cannot read it, and no code of the program's can change how it is compared.
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from typing import Any, Literal

from .cases import TestCase, decode

OutputMatch = Literal["lines", "tokens", "exact"]
_SHOWN = 120  # characters of an expected or actual value quoted in a failure


@dataclass(frozen=True)
class Verdict:
    """One test's outcome: ``passed``, ``failed`` (an assertion), ``wrong_answer``,
    ``runtime_error``, ``timeout``, ``memory_limit``, ``output_limit`` or ``sandbox_error``."""

    status: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _close(expected: str, actual: str, tolerance: float | None) -> bool:
    if expected == actual:
        return True
    if tolerance is None:
        return False
    try:
        return math.isclose(float(actual), float(expected), rel_tol=tolerance, abs_tol=tolerance)
    except ValueError:
        return False


def same_output(expected: str, actual: str, match: OutputMatch, tolerance: float | None) -> bool:
    """``exact``: byte for byte; ``lines``: trailing spaces and blank lines at the end ignored;
    ``tokens``: whitespace-separated tokens, numbers within ``tolerance`` when one is set."""
    if match == "exact":
        return expected == actual
    if match == "lines":
        return _lines(expected) == _lines(actual)
    wanted, got = expected.split(), actual.split()
    return len(wanted) == len(got) and all(_close(w, g, tolerance) for w, g in zip(wanted, got))


def same_value(expected: Any, actual: Any, tolerance: float | None) -> bool:
    """JSON values equal (numbers within ``tolerance`` when set); ``True`` is not ``1``."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual or (tolerance is not None and math.isclose(actual, expected, rel_tol=tolerance, abs_tol=tolerance))
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same_value(e, a, tolerance) for e, a in zip(expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same_value(expected[k], actual[k], tolerance) for k in expected)
    return expected == actual


def _expected_values(expected: Any) -> list[Any]:
    """The readings of an expected return value: as given, as JSON text (LiveCodeBench), and
    unwrapped from a one-element list (APPS stores ``[value]``)."""
    readings = [expected]
    if isinstance(expected, str) and (decoded := decode(expected)) is not expected:
        readings.append(decoded)
    if isinstance(expected, list) and len(expected) == 1:
        readings.append(expected[0])
    return readings


def _failure(run: dict[str, Any], time_limit_s: float) -> Verdict | None:
    """The verdict of a run that did not get to judging its output, if it did not."""
    if run["timed_out"] or run["exit_code"] == -signal.SIGXCPU:
        return Verdict("timeout", f"ran past {time_limit_s:g} s")
    if "MemoryError" in run["stderr"]:
        return Verdict("memory_limit", "MemoryError")
    if run["exit_code"] == -signal.SIGXFSZ or run["stdout_cut"]:
        return Verdict("output_limit", "wrote more output than max_output_kb")
    return None


def _error_line(run: dict[str, Any]) -> str:
    lines = run["stderr"].strip().splitlines()
    if lines:
        return lines[-1]
    if run["exit_code"] == 0:
        return "the program exited before its tests finished"
    return f"exit status {run['exit_code']}"


def judge(case: TestCase, run: dict[str, Any], match: OutputMatch, tolerance: float | None, time_limit_s: float) -> Verdict:
    """The verdict for ``case`` from the harness's report of running it."""
    failure = _failure(run, time_limit_s)
    if failure is not None:
        return failure
    if case.kind == "assert":
        if run["completed"]:
            return Verdict("passed")
        line = _error_line(run)
        if line.startswith("AssertionError"):  # a bare one says nothing: quote the test instead
            return Verdict("failed", _short(line if line != "AssertionError" else case.code.strip()))
        return Verdict("runtime_error", _short(line))
    if not run["completed"] or (case.kind == "stdio" and run["exit_code"] != 0):
        return Verdict("runtime_error", _short(_error_line(run)))
    if case.kind == "stdio":
        if same_output(case.expected, run["stdout"], match, tolerance):
            return Verdict("passed")
        return Verdict("wrong_answer", f"expected {_short(case.expected)!r}, got {_short(run['stdout'])!r}")
    actual = decode(run["value"])
    if any(same_value(reading, actual, tolerance) for reading in _expected_values(case.expected)):
        return Verdict("passed")
    return Verdict("wrong_answer", f"expected {_short(case.expected)}, got {_short(actual)}")
