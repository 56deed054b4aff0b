"""`rft graders run|validate|list` as a user calls them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rft_plugins.cli import cli

GRADER = {"type": "string_check", "name": "capital", "input": "{{ sample.output_text }}",
          "reference": "{{ item.answer }}", "operation": "ilike"}


@pytest.fixture
def invoke():
    runner = CliRunner()

    def call(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return call


def test_run_one_sample_prints_the_run_response(invoke):
    result = invoke("graders", "run", json.dumps(GRADER), "--sample", "PARIS", "--item", '{"answer": "paris"}')
    assert result.exit_code == 0
    response = json.loads(result.output)
    assert response["reward"] == 1.0
    assert set(response) == {"reward", "metadata", "sub_rewards", "model_grader_token_usage_per_model", "passed"}


def test_run_a_file_of_samples_as_json_lines(invoke, tmp_path):
    grader_file = tmp_path / "grader.json"
    grader_file.write_text(json.dumps(GRADER))
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        '{"sample": "Paris", "item": {"answer": "paris"}}\n\n'
        '{"sample": "Lyon", "answer": "paris"}\n'  # item defaults to the row's other keys
        '{"sample": "x", "item": {}}\n'
    )
    result = invoke("graders", "run", str(grader_file), "--input", str(samples), "--json")
    assert result.exit_code == 0
    responses = [json.loads(line) for line in result.output.splitlines()]
    assert [r["reward"] for r in responses] == [1.0, 0.0, 0.0]
    assert responses[2]["metadata"]["errors"]["invalid_variable_error"] is True


def test_run_summary_shows_mean_and_error_rates(invoke, tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"sample": "Paris", "item": {"answer": "paris"}}\n{"sample": "x", "item": {}}\n')
    result = invoke("graders", "run", json.dumps(GRADER), "--input", str(samples))
    assert result.exit_code == 0
    assert "reward_mean" in result.output and "0.5000" in result.output
    assert "invalid_variable_error_rate" in result.output


def test_bad_jsonl_line_names_file_and_line(invoke, tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"sample": "a", "item": {}}\n{"sample": oops}\n')
    result = CliRunner().invoke(cli, ["graders", "run", json.dumps(GRADER), "--input", str(samples)])
    assert result.exit_code == 2
    assert f"{samples}:2:" in result.output and "invalid JSON" in result.output


def test_bad_grader_file_names_line_and_column(tmp_path):
    grader_file = tmp_path / "grader.json"
    grader_file.write_text('{\n  "type": "string_check",\n  "name": \n}')
    result = CliRunner().invoke(cli, ["graders", "validate", str(grader_file)])
    assert result.exit_code == 2
    assert f"{grader_file}:4:1" in result.output


def test_validate(invoke):
    assert invoke("graders", "validate", json.dumps(GRADER)).output.strip() == "valid"
    result = CliRunner().invoke(cli, ["graders", "validate", json.dumps({**GRADER, "operation": "nope"})])
    assert result.exit_code == 1
    assert "invalid grader: operation:" in result.output


def test_validate_yaml_file(invoke, tmp_path):
    grader_file = tmp_path / "grader.yaml"
    grader_file.write_text("type: string_check\nname: y\ninput: '{{ sample.output_text }}'\nreference: a\noperation: eq\n")
    assert invoke("graders", "validate", str(grader_file)).output.strip() == "valid"


def test_list_json(invoke):
    types = {entry["type"]: entry["plugin"] for entry in json.loads(invoke("graders", "list", "--json").output)}
    assert types["string_check"] == "rft_plugins.default_plugins.string_check"
    assert "multi" in types


def test_sample_and_input_are_exclusive(tmp_path):
    result = CliRunner().invoke(cli, ["graders", "run", json.dumps(GRADER)])
    assert result.exit_code == 2 and "exactly one of --sample and --input" in result.output
