"""multi: formulas over named sub-graders, with every operator and function, exactly."""

from __future__ import annotations

import math
import time

import pytest

from rft_plugins import GraderConfigError, build_grader, run_grader, validate_grader
from rft_plugins.graders.formula import Formula


def fixed(value: str) -> dict:
    """A sub-grader whose reward is 1 when the sample equals ``value``."""
    return {"type": "string_check", "name": value, "input": "{{ sample.output_text }}", "reference": value,
            "operation": "eq"}


def multi(formula: str, **graders) -> dict:
    return {"type": "multi", "name": "m", "graders": graders or {"a": fixed("x"), "b": fixed("y")},
            "calculate_output": formula}


VALUES = {"a": 1.0, "b": 0.0, "c": 0.25}


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("a + b", 1.0),
        ("a - c", 0.75),
        ("3 * c", 0.75),
        ("c / 2", 0.125),
        ("2 ^ 3", 8.0),
        ("2 ^ 3 ^ 2", 512.0),  # right-associative, like mathematical power
        ("-2 ^ 2", -4.0),  # power binds tighter than unary minus
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("2 * c ^ 2", 0.125),
        ("min(a, b, c)", 0.0),
        ("max(a, b, c)", 1.0),
        ("abs(b - a)", 1.0),
        ("floor(2.7)", 2.0),
        ("ceil(2.1)", 3.0),
        ("exp(0)", 1.0),
        ("sqrt(c)", 0.5),
        ("log(a)", 0.0),
        ("log(exp(2))", 2.0),
        ("0.5 * a + 0.5 * c", 0.625),
        ("1e-1 * a", 0.1),
    ],
)
def test_formula_values(formula, expected):
    assert Formula(formula, VALUES).evaluate(VALUES) == pytest.approx(expected)


@pytest.mark.parametrize(
    "formula",
    [
        "a ** 2",  # use ^
        "a if b else c",
        "a < b",
        "a and b",
        "pow(a, 2)",
        "__import__('os')",
        "a.real",
        "'text'",
        "[a, b]",
        "a; b",
        "d + 1",  # unknown name
        "True",
        "min()",
        "max(a, key=b)",
        "a +",
        "",
        "1" + "0" * 400,  # past the largest float
    ],
)
def test_anything_else_is_a_formula_parse_error(formula):
    with pytest.raises(GraderConfigError) as error:
        Formula(formula, VALUES)
    assert error.value.flag == "formula_parse_error"
    assert error.value.field == "calculate_output"


def test_run_reports_formula_parse_error_as_a_flag():
    response = run_grader(multi("a +* b"), "x")
    assert response["reward"] == 0.0
    assert response["metadata"]["errors"]["formula_parse_error"] is True


def test_validate_rejects_a_bad_formula():
    with pytest.raises(GraderConfigError) as error:
        validate_grader(multi("a ** b"))
    assert error.value.field == "calculate_output"


def test_sub_rewards_are_keyed_by_multi_key():
    response = run_grader(multi("0.25 * a + 0.75 * b"), "y")
    assert response["sub_rewards"] == {"a": 0.0, "b": 1.0}
    assert response["reward"] == 0.75
    assert response["metadata"]["type"] == "multi"


def test_nested_multi_is_rejected_naming_the_key():
    with pytest.raises(GraderConfigError) as error:
        validate_grader(multi("a", a=multi("a")))
    assert error.value.field == "graders.a.type"


def test_sub_grader_config_errors_are_nested():
    bad = fixed("x") | {"operation": "nope"}
    with pytest.raises(GraderConfigError) as error:
        validate_grader(multi("a + b", a=fixed("x"), b=bad))
    assert error.value.field == "graders.b.operation"


def test_sub_grader_error_flags_pass_up_and_count_as_zero():
    broken = {"type": "string_check", "name": "broken", "input": "{{ item.missing }}", "reference": "x",
              "operation": "eq"}
    response = run_grader(multi("a + 10 * b", a=fixed("x"), b=broken), "x", {})
    assert response["sub_rewards"] == {"a": 1.0, "b": 0.0}
    assert response["reward"] == 1.0
    assert response["metadata"]["errors"]["invalid_variable_error"] is True


def test_math_error_at_run_time_is_flagged():
    response = run_grader(multi("a / b"), "x")  # b is 0
    assert response["reward"] == 0.0
    assert response["metadata"]["errors"]["other_error"] is True
    assert "division" in response["metadata"]["errors"]["other_error_details"]


@pytest.mark.parametrize("formula", ["9 ^ 9 ^ 9", "floor(1e9 * a) ^ ceil(1e9)", "exp(1000)"])
def test_huge_powers_overflow_at_once_instead_of_computing_for_hours(formula):
    """Numbers are floats: exact integer powers would hold the trainer's CPU and memory."""
    started = time.perf_counter()
    response = run_grader(multi(formula), "x")
    assert response["reward"] == 0.0
    details = response["metadata"]["errors"]["other_error_details"]
    assert details.startswith("calculate_output:") and "range" in details  # float overflow
    assert time.perf_counter() - started < 2.0


def test_keys_may_not_shadow_functions():
    with pytest.raises(GraderConfigError):
        validate_grader(multi("max", max=fixed("x")))


def test_empty_graders_object_is_rejected():
    with pytest.raises(GraderConfigError) as error:
        validate_grader({"type": "multi", "name": "m", "graders": {}, "calculate_output": "1"})
    assert error.value.field == "graders"


def test_batch_grading_matches_single_grades():
    grader = build_grader(multi("a + 2 * b"))
    outputs = ["x", "y", "z"] * 10
    grades = grader.grade_batch(outputs, [{}] * len(outputs))
    assert [g.reward for g in grades] == [1.0, 2.0, 0.0] * 10
    assert all(math.isfinite(g.execution_time) for g in grades)
