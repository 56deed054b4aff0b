"""OpenAI's published graders run unchanged and give the rewards OpenAI documents.

Every grader here is quoted from OpenAI's material (``openai_examples`` names the page of each);
expected values come from what that page says, or from the library its code calls (rapidfuzz).
Judges are a real HTTP server on 127.0.0.1 (``judge_stub``), reached the way OpenAI's JSON
leaves it: through ``$OPENAI_BASE_URL``, with no extension field in the grader.
"""

from __future__ import annotations

import copy
import json

import pytest
from judge_stub import completion, judge_stub, verdict  # noqa: F401  (judge_stub is a fixture)
from openai_examples import (
    FUZZY_ITEM, FUZZY_PYTHON, FUZZY_SAMPLE, MINIMAL_PYTHON, MY_SCORE_MODEL, MY_SCORE_MODEL_ITEM, MY_SCORE_MODEL_SAMPLE,
    NAME_AND_EMAIL, NAME_AND_EMAIL_ITEM, RFT_GUIDE_GRADER, TOOL_CALL_GRADER,
)
from rapidfuzz import fuzz, utils

from rft_plugins import build_grader, run_grader, validate_grader
from rft_plugins.graders.metrics import ScoredSample, reward_metrics
from rft_plugins.graders.types import ERROR_FLAGS


def json_sample(value: dict) -> dict:
    return {"output_text": json.dumps(value)}


@pytest.fixture
def openai_server(judge_stub, monkeypatch):  # noqa: F811
    """OpenAI's default judge location pointed at the loopback stub, no key."""
    monkeypatch.setenv("OPENAI_BASE_URL", judge_stub.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return judge_stub


# --- Graders guide: python ----------------------------------------------------------------------


def test_the_minimal_python_grader_runs_without_a_name():
    assert validate_grader(MINIMAL_PYTHON) == MINIMAL_PYTHON
    response = run_grader(MINIMAL_PYTHON, "anything")
    assert response["reward"] == 1.0  # its grade() returns 1.0
    assert (response["metadata"]["name"], response["metadata"]["type"]) == ("python", "python")


def test_the_rapidfuzz_example_gives_what_its_code_computes():
    expected = fuzz.WRatio(FUZZY_SAMPLE, FUZZY_ITEM["reference_answer"], processor=utils.default_process) / 100
    response = run_grader(FUZZY_PYTHON, FUZZY_SAMPLE, FUZZY_ITEM)
    assert response["reward"] == pytest.approx(expected)
    assert 0.7 < response["reward"] < 0.8
    assert not any(value for value in response["metadata"]["errors"].values())


def test_python_graders_receive_the_sample_the_guide_describes():
    """The guide's sample: choices, output_text, output_json, output_tools and output_audio."""
    source = (
        "def grade(sample, item):\n"
        "    keys = sorted(sample)\n"
        "    parsed = sample['output_json'] == {'answer': 42}\n"
        "    choice = sample['choices'][0]['message']['content'] == sample['output_text']\n"
        "    return float(keys == ['choices', 'output_audio', 'output_json', 'output_text', 'output_tools']"
        " and parsed and choice and sample['output_audio'] is None)\n"
    )
    assert run_grader({"type": "python", "source": source}, '{"answer": 42}')["reward"] == 1.0


# --- Graders guide: combined graders ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "low", "high"),
    [
        ({"name": "John Doe", "email": "john.doe@gmail.com"}, 1.0, 1.0),
        ({"name": "Jon Doe", "email": "john.doe@gmail.com"}, 0.5, 1.0),  # "we tolerate some misspellings"
        ({"name": "John Doe", "email": "jon.doe@gmail.com"}, 0.0, 0.5),  # the email wrong: 0 to 0.5
        ({"name": "Jane Roe", "email": "nobody@example.com"}, 0.0, 0.5),
    ],
)
def test_name_and_email_scores_in_the_documented_bands(answer, low, high):
    response = run_grader(NAME_AND_EMAIL, json_sample(answer), NAME_AND_EMAIL_ITEM)
    assert low <= response["reward"] <= high
    name = fuzz.ratio(answer["name"], NAME_AND_EMAIL_ITEM["name"]) / 100
    email = float(answer["email"] == NAME_AND_EMAIL_ITEM["email"])
    assert response["reward"] == pytest.approx((name + email) / 2)
    assert response["sub_rewards"] == {"name": pytest.approx(name), "email": email}
    # the name grader's pass_threshold (0.9) gives a verdict; the multi itself has none
    assert response["metadata"]["scores"]["name"]["passed"] is (name >= 0.9)
    assert response["passed"] is None


def test_pass_rates_are_logged_per_sub_grader_with_a_threshold():
    grader = build_grader(NAME_AND_EMAIL)
    answers = [{"name": "John Doe", "email": "x"}, {"name": "Jim Beam", "email": "x"}, {"name": "Jon Doe", "email": "x"}]
    grades = grader.grade_batch([json_sample(answer) for answer in answers], [NAME_AND_EMAIL_ITEM] * 3)
    metrics = reward_metrics([ScoredSample.from_grade(grade) for grade in grades], "train", "multi")
    assert metrics["train/name_pass_rate"] == pytest.approx(2 / 3)  # 1.0 and 0.93 pass 0.9, 0.5 does not
    assert "train/email_pass_rate" not in metrics and "train/multi_pass_rate" not in metrics
    assert metrics["train/name_reward_mean"] == pytest.approx(sum(g.sub_rewards["name"] for g in grades) / 3)
    assert metrics["train/graded_samples"] == 3


def test_the_tool_call_grader_reads_output_tools():
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_acceptors", "arguments": '{"smiles": "CCO"}'}}
    item = {"smiles": "CCO"}
    right = run_grader(TOOL_CALL_GRADER, {"output_text": "", "output_tools": [call]}, item)
    assert right["reward"] == 1.0
    wrong_name = copy.deepcopy(call)
    wrong_name["function"]["name"] = "get_donors"
    assert run_grader(TOOL_CALL_GRADER, {"output_text": "", "output_tools": [wrong_name]}, item)["reward"] == 0.5
    no_call = run_grader(TOOL_CALL_GRADER, {"output_text": "I would call get_acceptors"}, item)
    assert no_call["reward"] == 0.0 and no_call["metadata"]["errors"]["invalid_variable_error"] is True


# --- Graders guide: string check and text similarity, as their schemas define them ---------------


@pytest.mark.parametrize(
    ("operation", "value", "reference", "reward"),
    [
        ("eq", "Paris", "Paris", 1.0), ("eq", "paris", "Paris", 0.0),  # case-sensitive
        ("ne", "paris", "Paris", 1.0), ("ne", "Paris", "Paris", 0.0),
        ("like", "It is Paris.", "Paris", 1.0), ("like", "It is paris.", "Paris", 0.0),
        ("ilike", "It is PARIS.", "Paris", 1.0), ("ilike", "It is Lyon.", "Paris", 0.0),
    ],
)
def test_string_check_operations_as_documented(operation, value, reference, reward):
    grader = {"type": "string_check", "name": "city", "operation": operation, "input": "{{ sample.output_text }}",
              "reference": reference}
    assert run_grader(grader, value)["reward"] == reward


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3",
                                    "rouge_4", "rouge_5", "rouge_l"])
def test_every_text_similarity_metric_validates_and_reports_its_verdict(metric):
    grader = {"type": "text_similarity", "name": "close", "input": "{{ sample.output_text }}",
              "reference": "the cat sat on the mat", "pass_threshold": 0.5, "evaluation_metric": metric}
    same = run_grader(grader, "the cat sat on the mat")
    assert same["reward"] == 1.0 and same["passed"] is True
    other = run_grader(grader, "quantum chromodynamics")
    assert other["reward"] < 0.5 and other["passed"] is False


# --- pass_threshold, wherever OpenAI's schema has it --------------------------------------------


def test_a_python_graders_pass_threshold_gives_a_verdict_and_a_failure_never_passes():
    grader = {"type": "python", "name": "half", "pass_threshold": 0.5,
              "source": "def grade(sample, item):\n    return float(sample['output_text'])\n"}
    assert run_grader(grader, "0.5")["passed"] is True
    assert run_grader(grader, "0.25")["passed"] is False
    broken = run_grader(grader, "not a number")
    assert broken["metadata"]["errors"]["python_grader_runtime_error"] is True and broken["passed"] is False
    assert run_grader({**grader, "pass_threshold": None}, "0.5")["passed"] is None


# --- SDK: the run response --------------------------------------------------------------------


def test_the_run_response_has_the_sdks_fields():
    """``fine_tuning/alpha/grader_run_response.py``: reward, metadata (errors with every flag,
    execution_time, name, sampled_model_name, scores, token_usage, type), sub_rewards and
    model_grader_token_usage_per_model."""
    response = run_grader(MINIMAL_PYTHON, "x")
    assert {"reward", "metadata", "sub_rewards", "model_grader_token_usage_per_model"} <= set(response)
    assert set(response["metadata"]) == {"errors", "execution_time", "name", "sampled_model_name", "scores",
                                         "token_usage", "type"}
    sdk_flags = {"formula_parse_error", "invalid_variable_error", "model_grader_parse_error",
                 "model_grader_refusal_error", "model_grader_server_error", "model_grader_server_error_details",
                 "other_error", "python_grader_runtime_error", "python_grader_runtime_error_details",
                 "python_grader_server_error", "python_grader_server_error_type", "sample_parse_error",
                 "truncated_observation_error", "unresponsive_reward_error"}
    assert sdk_flags == set(response["metadata"]["errors"]) == set(ERROR_FLAGS)


# --- Graders guide: score model; RFT guide: its multi grader -----------------------------------


def test_the_score_model_example_sends_its_prompt_as_written(openai_server):
    openai_server.push(verdict(0.9))
    response = run_grader(MY_SCORE_MODEL, MY_SCORE_MODEL_SAMPLE, MY_SCORE_MODEL_ITEM)
    assert response["reward"] == 0.9 and response["passed"] is True  # pass_threshold 0.5
    body = openai_server.requests[0].json
    assert body["messages"] == [
        MY_SCORE_MODEL["input"][0],
        {"role": "user", "content": "Reference: 1.0. Model answer: 0.9"},
    ]
    assert body["model"] == "o4-mini-2025-04-16"
    assert (body["max_completion_tokens"], body["top_p"], body["reasoning_effort"]) == (32768, 1, "medium")
    # "the score_model grader will ... request a response in a specific response format"
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["required"]) == {"result", "steps"}
    assert set(schema["properties"]["steps"]["items"]["properties"]) == {"description", "conclusion"}


def test_the_rft_guides_grader_validates_and_grades_with_a_bare_number(openai_server):
    """Its explanation prompt asks for "a single floating point number"; a server that ignores
    response_format answers just that, and it is the score."""
    assert validate_grader(RFT_GUIDE_GRADER) == RFT_GUIDE_GRADER
    openai_server.push(completion("0.75"))
    item = {"compliant": "yes", "explanation": "A dedicated security team handles incidents."}
    response = run_grader(RFT_GUIDE_GRADER, json_sample({"compliant": "yes", "explanation": "We have one."}), item)
    assert response["reward"] == pytest.approx(0.5 * 1 + 0.5 * 0.75)
    assert response["sub_rewards"] == {"explanation": 0.75, "compliant": 1.0}
    assert response["metadata"]["name"] == "multi"  # no name at the top: named after its type
    (request,) = openai_server.requests
    assert request.json["model"] == "gpt-4o-2024-08-06"
    (message,) = request.json["messages"]  # the prompt as written, rendered; nothing added
    assert message["content"].endswith("Reference Answer: A dedicated security team handles incidents.\n"
                                       "Model Answer: We have one.\n")
    assert response["model_grader_token_usage_per_model"] == {
        "gpt-4o-2024-08-06": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}}
