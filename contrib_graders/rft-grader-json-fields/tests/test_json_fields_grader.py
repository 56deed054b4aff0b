"""The json_fields grader through rft-plugins (the built-ins and this plugin, via the pytest plugin)."""

import json

import pytest

import rft_grader_json_fields
from rft_plugins import GraderConfigError, validate_grader
from rft_plugins.testing import grade_samples

INVOICE = {
    "vendor": "Acme Corp",
    "total": 1250.5,
    "paid": True,
    "address": {"city": "Paris", "zip": "75001"},
    "tags": ["urgent", "q3"],
}
GRADER = {"type": "json_fields", "name": "invoice", "reference": "{{ item.expected }}"}


@pytest.fixture(autouse=True)
def plugin(rft_plugin_manager):
    return rft_plugin_manager(rft_grader_json_fields)


def grade(output, expected=INVOICE, **config):
    text = output if isinstance(output, str) else json.dumps(output)
    [response] = grade_samples({**GRADER, **config}, [text], {"expected": expected})
    return response


def test_every_leaf_of_the_reference_counts_once_by_default():
    assert grade(INVOICE)["reward"] == 1.0
    response = grade({**INVOICE, "address": {"city": "Lyon", "zip": "75001"}, "total": 1250})
    assert response["reward"] == pytest.approx(4 / 6)
    assert response["metadata"]["scores"]["fields"] == {
        "vendor": 1.0, "total": 0.0, "paid": 1.0, "address.city": 0.0, "address.zip": 1.0, "tags": 1.0}


@pytest.mark.parametrize("output", ["not json", '{"vendor": "Acme"', "", '["Acme", 1250.5]', "42"])
def test_invalid_or_non_object_json_is_a_sample_parse_error(output):
    response = grade(output)
    assert response["reward"] == 0.0 and response["metadata"]["errors"]["sample_parse_error"]


def test_missing_fields_score_zero_and_are_named():
    response = grade({"vendor": "Acme Corp", "address": {"city": "Paris"}})
    assert response["reward"] == pytest.approx(2 / 6)
    assert response["metadata"]["scores"]["missing"] == ["total", "paid", "address.zip", "tags"]


def test_extra_fields_are_ignored_or_penalised():
    output = {**INVOICE, "currency": "EUR", "address": {**INVOICE["address"], "street": "1 rue X"}}
    assert grade(output)["reward"] == 1.0
    response = grade(output, extra_fields="penalize")
    assert response["reward"] == pytest.approx(6 / 8)
    assert response["metadata"]["scores"]["extra"] == ["address.street", "currency"]  # output order


def test_nested_paths_indexes_and_quoted_keys():
    expected = {"order": {"items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}, "unit price": "3.50"}
    output = {"order": {"items": [{"sku": "A-1", "qty": 3}, {"sku": "B-7", "qty": 1}]}, "unit price": 3.5}
    fields = {"order.items[0].sku": "exact", "order.items[0].qty": "exact", "order.items[-1].sku": "exact",
              '"unit price"': "numeric"}
    response = grade(output, expected, fields=fields)
    assert response["metadata"]["scores"]["fields"] == {
        "order.items[0].sku": 1.0, "order.items[0].qty": 0.0, "order.items[-1].sku": 1.0, '"unit price"': 1.0}
    assert grade({"a b": {"c": 1}}, {"a b": {"c": 1}})["metadata"]["scores"]["fields"] == {'"a b".c': 1.0}


def test_listed_fields_only_and_their_weights():
    fields = {"vendor": {"weight": 3}, "total": "numeric"}
    response = grade({"vendor": "Acme Corp", "total": 99, "paid": False}, fields=fields)
    assert response["reward"] == pytest.approx(3 / 4)
    assert grade({"vendor": "Acme Corp", "total": 1250.5, "paid": False, "x": 1}, fields=fields,
                 extra_fields="penalize")["reward"] == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    ("rule", "expected", "actual", "score"),
    [
        ("exact", 1, 1.0, 1.0),
        ("exact", True, 1, 0.0),
        ("exact", {"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, 1.0),
        ("exact", "Paris", "paris", 0.0),
        ({"compare": "exact", "ignore_case": True}, "Paris", "paris", 1.0),
        ("numeric", 1250.5, "1,250.50", 1.0),
        ("numeric", 100, 101, 0.0),
        ({"compare": "numeric", "abs_tol": 1}, 100, 101, 1.0),
        ({"compare": "numeric", "rel_tol": 0.01}, 100, 100.9, 1.0),
        ({"compare": "numeric", "rel_tol": 0.01}, 100, 102, 0.0),
        ("numeric", 1, True, 0.0),
        ("numeric", 1, "one", 0.0),
        ("fuzzy", "Acme Corporation", "Acme Corporation", 1.0),
        ("fuzzy", "Acme Corp", "Acme Corp.", pytest.approx(0.9474, abs=1e-4)),
        ({"compare": "fuzzy", "threshold": 0.95}, "Acme Corp", "Acme Corp.", 0.0),
        ({"compare": "fuzzy", "ignore_case": True}, "ACME", "acme", 1.0),
        ("set", ["a", "b", "c"], ["c", "a", "b", "a"], 1.0),
        ("set", ["a", "b", "c"], ["a", "x"], pytest.approx(0.4)),
        ({"compare": "set", "threshold": 0.5}, ["a", "b", "c"], ["a", "x"], 0.0),
        ("set", [], [], 1.0),
        ({"compare": "set", "ignore_case": True}, ["A"], "a", 1.0),
    ],
)
def test_comparators(rule, expected, actual, score):
    assert grade({"f": actual}, {"f": expected}, fields={"f": rule})["reward"] == score


def test_null_reference_matches_absent_or_null():
    assert grade({"a": 1}, {"a": 1, "note": None})["reward"] == 1.0
    assert grade({"a": 1, "note": "x"}, {"a": 1, "note": None})["reward"] == 0.5


@pytest.mark.parametrize("expected", ["not json", [1, 2], {}])
def test_a_reference_without_fields_flags_the_row(expected):
    response = grade({"a": 1}, expected)
    assert response["reward"] == 0.0 and response["metadata"]["errors"]["invalid_variable_error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"fields": {"a[": "exact"}}, "fields.a["), ({"fields": {}}, "fields"), ({"extra_fields": "drop"}, "extra_fields"),
     ({"default": {"compare": "regex"}}, "default.compare"), ({"default": {"weight": 0}}, "default.weight")],
)
def test_config_errors_name_the_field(change, field):
    with pytest.raises(GraderConfigError) as error:
        validate_grader({**GRADER, **change})
    assert error.value.field == field


def test_an_unknown_comparator_in_fields_is_a_config_error():
    with pytest.raises(GraderConfigError) as error:
        validate_grader({**GRADER, "fields": {"total": "approximately"}})
    assert error.value.field.startswith("fields.total")
