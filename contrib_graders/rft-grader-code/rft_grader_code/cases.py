"""Test cases as code-RL datasets store them, read into one form.

Three kinds: ``assert`` (code that raises when the program is wrong: MBPP's ``test_list``,
HumanEval's ``check``), ``stdio`` (input on stdin, expected stdout: APPS, CodeContests, TACO,
open-r1's ``verification_info``) and ``call`` (a function's arguments and expected return value:
APPS with ``fn_name``, LiveCodeBench's functional tests, LeetCode-style ``Solution`` classes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

_STDIO_TYPES = {None, "stdin_stdout", "stdin", "stdio"}
_CALL_TYPES = {"function_call", "functional", "call"}


@dataclass(frozen=True)
class TestCase:
    """One test. ``expected`` stays in the trainer: the program's process never sees it."""

    __test__ = False  # not a pytest class

    kind: Literal["assert", "stdio", "call"]
    code: str = ""
    input: str = ""
    fn_name: str = ""
    args: list[Any] = field(default_factory=list)
    expected: Any = None

    def runner_spec(self, setup: str) -> dict[str, Any]:
        """What the sandboxed runner needs to run this case, and nothing it could cheat with."""
        spec: dict[str, Any] = {"mode": self.kind, "setup": setup if self.kind != "stdio" else ""}
        if self.kind == "assert":
            spec["test"] = self.code
        elif self.kind == "stdio":
            spec["input"] = self.input
        else:
            spec.update(fn_name=self.fn_name, args=self.args)
        return spec


def decode(text: str) -> Any:
    """JSON when the text is JSON (templates render lists and objects as JSON), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _stdio(given: Any, expected: Any) -> TestCase:
    if isinstance(given, list) and all(isinstance(line, str) for line in given):
        given = "\n".join(given) + "\n"
    if isinstance(expected, list) and all(isinstance(line, str) for line in expected):
        expected = "\n".join(expected)
    if not isinstance(given, str) or not isinstance(expected, str):
        raise ValueError("a stdin/stdout test needs text input and output")
    return TestCase("stdio", input=given, expected=expected)


def _call(fn_name: str | None, given: Any, expected: Any) -> TestCase:
    if not fn_name:
        raise ValueError("a function-call test needs fn_name (in the test or the grader's fn_name)")
    if isinstance(given, str):  # LiveCodeBench: one JSON value per line
        try:
            given = [json.loads(line) for line in given.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise ValueError(f"function-call input is not JSON lines: {error}") from error
    args = given if isinstance(given, list) else [given]
    return TestCase("call", fn_name=fn_name, args=args, expected=expected)


def _one(entry: dict[str, Any], fn_name: str | None) -> TestCase:
    kind = entry.get("type", entry.get("testtype"))
    if "input" not in entry or "output" not in entry:
        raise ValueError(f"a test object needs input and output; this one has {sorted(entry)}")
    if kind in _CALL_TYPES or "fn_name" in entry:
        return _call(entry.get("fn_name") or fn_name, entry["input"], entry["output"])
    if kind in _STDIO_TYPES:
        return (_call(fn_name, entry["input"], entry["output"]) if fn_name else _stdio(entry["input"], entry["output"]))
    raise ValueError(f"unknown test type {kind!r}")


def parse_cases(value: Any, fn_name: str | None = None) -> list[TestCase]:
    """Every test in ``value``; ``ValueError`` saying what is wrong with it.

    Accepted: a string (one assert-style test); a list of strings (asserts) or of test objects
    (``{"input", "output"}``, with ``type``/``testtype`` or ``fn_name``); an object with
    ``inputs``/``outputs`` (or ``input``/``output``) lists and maybe ``fn_name``; an object with
    ``test_cases``. A function name given to the grader turns input/output pairs into calls.
    """
    if isinstance(value, str):
        return [TestCase("assert", code=value)] if value.strip() else []
    if isinstance(value, list):
        return [TestCase("assert", code=entry) if isinstance(entry, str) else _one(_object(entry), fn_name) for entry in value]
    if not isinstance(value, dict):
        raise ValueError(f"tests are code, a list or an object, not {type(value).__name__}")
    if "test_cases" in value:
        return parse_cases(value["test_cases"], value.get("fn_name") or fn_name)
    inputs, outputs = value.get("inputs", value.get("input")), value.get("outputs", value.get("output"))
    if isinstance(inputs, list) and isinstance(outputs, list):
        if len(inputs) != len(outputs):
            raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
        name = value.get("fn_name") or fn_name
        return [_call(name, given, expected) if name else _stdio(given, expected) for given, expected in zip(inputs, outputs)]
    return [_one(value, fn_name)]


def _object(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValueError(f"a test is code or an object, not {type(entry).__name__}")
    return entry
