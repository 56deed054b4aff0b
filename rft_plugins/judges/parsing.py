"""Reading the judge's verdict out of its reply, strictly where it matters and leniently where not.

Servers with structured outputs return the bare JSON object; others (and local models) wrap it in
prose or a Markdown code fence, so the first JSON object in the text that has a ``result`` is
taken. A server that ignores ``response_format`` answers what the grader's prompt asked for,
often a bare number ("0.75", as the RFT guide's prompt requests) or a bare label: such a reply is
the result itself. A missing, non-numeric or unknown ``result`` is a parse error
(``model_grader_parse_error``).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_OBJECT_STARTS = 200
_decoder = json.JSONDecoder()


class JudgeParseError(ValueError):
    """The judge answered, but not in a form that yields a verdict."""


def excerpt(text: str, limit: int = 200) -> str:
    """The start of ``text`` on one line, for error details."""
    flat = " ".join(text.split())
    return flat[:limit] + ("..." if len(flat) > limit else "")


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` that has a ``result`` key (else the first object)."""
    stripped = text.strip()
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return whole
    first: dict[str, Any] | None = None
    start = stripped.find("{")
    for _ in range(MAX_OBJECT_STARTS):
        if start < 0:
            break
        try:
            value, _end = _decoder.raw_decode(stripped, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            if "result" in value:
                return value
            first = first or value
        start = stripped.find("{", start + 1)
    if first is not None:
        return first
    raise JudgeParseError(f"no JSON object in the judge's reply: {excerpt(text)!r}")


def _steps(verdict: dict[str, Any]) -> list[Any]:
    steps = verdict.get("steps", [])
    return steps if isinstance(steps, list) else []


def _bare(text: str) -> str:
    """The reply without surrounding blanks, quotes, backticks and a final full stop."""
    return text.strip().removesuffix(".").strip().strip("\"'`").strip().removesuffix(".").strip()


def _number(text: str) -> float | None:
    """``text`` as a finite float, or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_score(text: str) -> tuple[float, list[Any]]:
    """``(result, steps)`` from a ``score_model`` reply; ``result`` may be a numeric string, and
    a reply that is nothing but a number is that number."""
    try:
        verdict = extract_json_object(text)
    except JudgeParseError:
        number = _number(_bare(text))
        if number is None:
            raise
        return number, []
    if "result" not in verdict:
        raise JudgeParseError(f"the judge's JSON has no 'result': {excerpt(text)!r}")
    result = verdict["result"]
    if isinstance(result, bool) or not isinstance(result, (int, float, str)):
        raise JudgeParseError(f"'result' is not a number: {result!r}")
    try:
        number = float(result)
    except ValueError:
        raise JudgeParseError(f"'result' is not a number: {result!r}") from None
    if not math.isfinite(number):
        raise JudgeParseError(f"'result' is not a finite number: {result!r}")
    return number, _steps(verdict)


def parse_label(text: str, labels: list[str]) -> tuple[str, list[Any]]:
    """``(label, steps)`` from a ``label_model`` reply; the label must be one of ``labels``.

    A reply that is just a label (quotes and a final full stop allowed) is accepted too.
    """
    try:
        verdict = extract_json_object(text)
    except JudgeParseError:
        if _bare(text) in labels:
            return _bare(text), []
        raise
    result = verdict.get("result")
    if not isinstance(result, str):
        raise JudgeParseError(f"the judge's JSON has no string 'result': {excerpt(text)!r}")
    if result not in labels:
        raise JudgeParseError(f"the judge chose {result!r}, which is not one of the labels {labels}")
    return result, _steps(verdict)
