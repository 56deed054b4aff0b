"""Templates: OpenAI's namespaces, nested and indexed access, errors, and the sandbox."""

from __future__ import annotations

import pytest

from rft_plugins import GraderConfigError, GradingError, Sample, run_grader
from rft_plugins.graders.templates import Template

TOOLS = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]


def render(source: str, sample: Sample | str = "out", item: dict | None = None) -> str:
    return Template(source, "input").render(Sample.coerce(sample).to_dict(), item or {})


def test_nested_item_access_with_and_without_spaces():
    item = {"ground_truth": {"date": "2024-01-02", "people": ["Ada", "Alan"]}}
    assert render("{{item.ground_truth.date}}", item=item) == "2024-01-02"
    assert render("{{ item.ground_truth.people[1] }}", item=item) == "Alan"


def test_sample_output_json_and_tools():
    sample = Sample.from_text('{"compliant": true, "score": 3}', tool_calls=TOOLS)
    assert render("{{ sample.output_json.score }}", sample) == "3"
    assert render("{{ sample.output_json.compliant }}", sample) == "true"
    assert render("{{ sample.output_tools[0].function.name }}", sample) == "get_weather"
    assert render("{{ sample.choices[0].message.content }}", sample) == '{"compliant": true, "score": 3}'


def test_non_strings_render_as_json():
    item = {"list": [1, "a"], "obj": {"k": None}, "none": None, "num": 2.5}
    assert render("{{ item.list }}|{{ item.obj }}|{{ item.none }}|{{ item.num }}", item=item) == (
        '[1, "a"]|{"k": null}|null|2.5'
    )


def test_output_json_is_none_for_plain_text():
    assert Sample.from_text("not json").output_json is None
    assert render("{{ sample.output_json }}", "not json") == "null"


@pytest.mark.parametrize(
    "source", ["{{ item.missing }}", "{{ item.a.b.c }}", "{{ sample.output_tools[0].function.name }}"]
)
def test_unresolvable_variable_is_flagged(source):
    with pytest.raises(GradingError) as error:
        render(source, item={"a": {}})
    assert error.value.flag == "invalid_variable_error"


def test_unresolvable_variable_costs_reward_through_run_grader():
    grader = {"type": "string_check", "name": "s", "input": "{{ item.nope }}", "reference": "x", "operation": "eq"}
    response = run_grader(grader, "x", {})
    assert response["reward"] == 0.0
    assert response["metadata"]["errors"]["invalid_variable_error"] is True
    assert "nope" in response["metadata"]["errors"]["invalid_variable_error_details"]


def test_only_item_and_sample_namespaces_exist():
    with pytest.raises(GraderConfigError) as error:
        Template("{{ secrets.key }}", "reference")
    assert error.value.field == "reference" and "secrets" in error.value.message


def test_syntax_error_is_a_config_error():
    with pytest.raises(GraderConfigError) as error:
        Template("{{ item.x ", "input")
    assert error.value.field == "input"


def test_sandbox_blocks_python_internals():
    with pytest.raises(GradingError) as error:
        render("{{ item.x.__class__.__mro__[1] }}", item={"x": "s"})
    assert error.value.flag == "invalid_variable_error"


def test_quoted_keys_and_negative_indexes():
    assert render("{{ item['a key'][-1] }}", item={"a key": ["first", "last"]}) == "last"


@pytest.mark.parametrize(
    "source",
    [
        "{{ 10 ** 99999999 }}",  # hours of CPU in the trainer
        '{{ "x" * 3000000000 }}',  # 3 GB
        "{{ item.x.ljust(3000000000) }}",
        "{{ item.x.__class__.__mro__[1].__subclasses__() }}",
        "{{ item.x | lower }}",
        "{% for c in item.x %}{{ c }}{% endfor %}",
        "{{ item[item.key] }}",
        "{{ item.list[1.5] }}",
        "{{ 'literal' }}",
    ],
)
def test_anything_but_references_is_a_config_error(source):
    with pytest.raises(GraderConfigError) as error:
        Template(source, "input")
    assert error.value.field == "input" and "references such as" in error.value.message
