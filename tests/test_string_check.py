"""string_check: OpenAI's four operations, exactly."""

from __future__ import annotations

import pytest

from rft_plugins import GraderConfigError, run_grader, validate_grader


def check(operation: str, output: str, reference: str) -> float:
    grader = {"type": "string_check", "name": "s", "input": "{{ sample.output_text }}",
              "reference": "{{ item.ref }}", "operation": operation}
    return run_grader(grader, output, {"ref": reference})["reward"]


@pytest.mark.parametrize(
    ("operation", "output", "reference", "expected"),
    [
        ("eq", "Paris", "Paris", 1.0),
        ("eq", "paris", "Paris", 0.0),  # case-sensitive
        ("eq", "Paris ", "Paris", 0.0),  # no trimming
        ("ne", "Lyon", "Paris", 1.0),
        ("ne", "Paris", "Paris", 0.0),
        ("like", "It is Paris.", "Paris", 1.0),
        ("like", "It is paris.", "Paris", 0.0),  # like is case-sensitive
        ("ilike", "It is PARIS.", "paris", 1.0),
        ("ilike", "It is Lyon.", "paris", 0.0),
        ("like", "anything", "", 1.0),  # the empty string is contained in every string
    ],
)
def test_operations(operation, output, reference, expected):
    assert check(operation, output, reference) == expected


def test_bad_operation_names_the_field():
    with pytest.raises(GraderConfigError) as error:
        validate_grader({"type": "string_check", "name": "s", "input": "a", "reference": "b", "operation": "contains"})
    assert error.value.field == "operation"


@pytest.mark.parametrize("missing", ["input", "reference", "operation"])  # name is optional, as on OpenAI
def test_missing_fields_are_named(missing):
    grader = {"type": "string_check", "name": "s", "input": "a", "reference": "b", "operation": "eq"}
    del grader[missing]
    with pytest.raises(GraderConfigError) as error:
        validate_grader(grader)
    assert error.value.field == missing
    assert "missing" in error.value.message


def test_unknown_field_is_rejected():
    with pytest.raises(GraderConfigError) as error:
        validate_grader({"type": "string_check", "name": "s", "input": "a", "reference": "b", "operation": "eq",
                         "refrence": "typo"})
    assert error.value.field == "refrence"


def test_unknown_type_lists_known_types():
    with pytest.raises(GraderConfigError) as error:
        validate_grader({"type": "strng_check", "name": "s"})
    assert error.value.field == "type"
    assert "string_check" in str(error.value) and "multi" in str(error.value)


def test_validate_echoes_the_config():
    grader = {"type": "string_check", "name": "s", "input": "a", "reference": "b", "operation": "eq"}
    assert validate_grader(grader) is grader
