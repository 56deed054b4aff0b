"""The contributed grader packages, pip-installed (not editable) by the Makefile, found by entry point."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from rft_plugins import GraderConfigError, run_grader, validate_grader
from rft_plugins.registry import collect


CONTRIB = {
    "math_verify": "rft-grader-math",
    "json_schema": "rft-grader-jsonschema",
    "code": "rft-grader-code",
    "rank": "rft-grader-rank",
    "json_fields": "rft-grader-json-fields",
}


@pytest.mark.parametrize(("grader_type", "distribution"), CONTRIB.items())
def test_installed_as_distributions_and_found_by_entry_point(grader_type, distribution):
    dist = importlib.metadata.distribution(distribution)
    assert dist.read_text("direct_url.json") is None or '"editable": true' not in dist.read_text("direct_url.json")
    assert collect("graders")[grader_type].plugin == grader_type


def test_rft_plugins_json_lists_every_contrib_package():
    result = subprocess.run([sys.executable, "-m", "rft_plugins.cli", "plugins", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    listed = {plugin["name"]: plugin for plugin in report["plugins"]}
    for grader_type, distribution in CONTRIB.items():
        assert listed[grader_type]["distribution"] == distribution
        assert listed[grader_type]["registers"] == {"graders": [grader_type]}
    assert not [failure for failure in report["failed"] if failure["name"] in CONTRIB]


MATH = {"type": "math_verify", "name": "answer", "reference": "{{ item.answer }}"}


@pytest.mark.parametrize(
    ("output", "answer", "expected"),
    [
        ("The answer is $\\boxed{\\frac{1}{2}}$", "0.5", 1.0),
        ("so x = 2/4", "$\\frac{1}{2}$", 1.0),
        ("The answer is $\\boxed{3}$", "4", 0.0),
        ("I do not know", "4", 0.0),
        ("$\\{1, 2\\}$", "$\\{2, 1\\}$", 1.0),
    ],
)
def test_math_verify(output, answer, expected):
    assert run_grader(MATH, output, {"answer": answer})["reward"] == expected


def test_math_verify_unparseable_reference_is_flagged():
    response = run_grader(MATH, "42", {"answer": "no maths here"})
    assert response["reward"] == 0.0 and response["metadata"]["errors"]["invalid_variable_error"]


def test_math_verify_inside_multi():
    grader = {"type": "multi", "name": "m", "graders": {"maths": MATH, "short": {
        "type": "string_check", "name": "s", "input": "{{ sample.output_text }}", "reference": "boxed",
        "operation": "like"}}, "calculate_output": "0.8 * maths + 0.2 * short"}
    assert run_grader(grader, "$\\boxed{4}$", {"answer": "4"})["reward"] == pytest.approx(1.0)


SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}


@pytest.mark.parametrize(
    ("output", "expected"), [('{"answer": 4}', 1.0), ('{"answer": "4"}', 0.0), ("{}", 0.0), ("[]", 0.0)]
)
def test_json_schema(output, expected):
    assert run_grader({"type": "json_schema", "name": "f", "schema": SCHEMA}, output)["reward"] == expected


def test_json_schema_from_the_row_and_parse_errors():
    grader = {"type": "json_schema", "name": "f", "schema_field": "schema"}
    assert run_grader(grader, '{"answer": 1}', {"schema": SCHEMA})["reward"] == 1.0
    assert run_grader(grader, "not json", {"schema": SCHEMA})["metadata"]["errors"]["sample_parse_error"]
    assert run_grader(grader, "{}", {})["metadata"]["errors"]["invalid_variable_error"]


def test_json_schema_config_errors_name_the_field():
    with pytest.raises(GraderConfigError) as error:
        validate_grader({"type": "json_schema", "name": "f", "schema": {"type": "no-such-type"}})
    assert error.value.field == "schema"
    with pytest.raises(GraderConfigError):
        validate_grader({"type": "json_schema", "name": "f"})
