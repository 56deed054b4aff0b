"""The ``endpoint`` grader against a real HTTP service on loopback."""

from __future__ import annotations

import time
import uuid

import pytest
from judge_stub import Reply, judge_stub  # noqa: F401  (judge_stub is a fixture)

from rft_plugins import GraderConfigError, build_grader, run_grader, validate_grader

ITEM = {"reference": "42"}


def endpoint_config(stub, **fields) -> dict:
    return {"type": "endpoint", "name": "service", "url": stub.url, "timeout": 1.0, "backoff": 0.01, **fields}


def raised(result: dict) -> dict:
    return {flag: value for flag, value in result["metadata"]["errors"].items() if value}


def test_posts_sample_item_and_trace_id_and_reads_score(judge_stub, monkeypatch):
    monkeypatch.setenv("RFT_TEST_GRADER_TOKEN", "s3cret")
    judge_stub.push(Reply(body={"score": 0.8, "extra": "ignored"}))
    config = endpoint_config(judge_stub, headers={"Authorization": "Bearer ${RFT_TEST_GRADER_TOKEN}", "X-Team": "rl"})

    result = run_grader(config, "The answer is 42", ITEM)

    assert result["reward"] == 0.8 and raised(result) == {}
    (request,) = judge_stub.requests
    assert request.path == "/grade"
    assert request.headers["authorization"] == "Bearer s3cret" and request.headers["x-team"] == "rl"
    assert set(request.json) == {"sample", "item", "trace_id"}
    assert request.json["sample"]["output_text"] == "The answer is 42"
    assert request.json["item"] == ITEM
    assert uuid.UUID(request.json["trace_id"]).version == 4
    assert result["metadata"]["scores"]["trace_id"] == request.json["trace_id"]


def test_each_call_gets_its_own_trace_id(judge_stub):
    judge_stub.default = Reply(body={"score": 1})
    with build_grader(endpoint_config(judge_stub)) as grader:
        grader.grade_batch(["a", "b", "c"], [ITEM] * 3)
    assert len({request.json["trace_id"] for request in judge_stub.requests}) == 3


def test_retries_5xx_with_the_same_trace_id(judge_stub):
    judge_stub.push(Reply(500, "oops"), Reply(502, "bad gateway"), Reply(body={"score": 0.5}))
    result = run_grader(endpoint_config(judge_stub), "x", ITEM)
    assert result["reward"] == 0.5
    assert len(judge_stub.requests) == 3
    assert len({request.json["trace_id"] for request in judge_stub.requests}) == 1


def test_gives_up_after_three_retries(judge_stub):
    judge_stub.default = Reply(503, "down for maintenance")
    result = run_grader(endpoint_config(judge_stub), "x", ITEM)
    flags = raised(result)
    assert result["reward"] == 0.0 and flags["unresponsive_reward_error"] is True
    details = flags["unresponsive_reward_error_details"]
    assert "HTTP 503" in details and "4 attempts" in details and "trace_id" in details
    assert len(judge_stub.requests) == 4  # the first try and 3 retries


def test_hang_times_out(judge_stub):
    judge_stub.push(Reply(hang=True))
    started = time.perf_counter()
    result = run_grader(endpoint_config(judge_stub, timeout=0.5, max_retries=0), "x", ITEM)
    assert "no response within 0.5 s" in raised(result)["unresponsive_reward_error_details"]
    assert time.perf_counter() - started < 2.0


def test_unreachable_service_is_unresponsive():
    config = {"type": "endpoint", "name": "gone", "url": "http://127.0.0.1:9/grade", "max_retries": 1, "backoff": 0.01}
    assert raised(run_grader(config, "x", ITEM))["unresponsive_reward_error"] is True


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body={"result": 1}),
        Reply(body={"score": "high"}),
        Reply(body={"score": True}),
        Reply(body="1.0"),
        Reply(body="<html>not json</html>"),
        Reply(401, {"error": "bad token"}),
    ],
)
def test_anything_but_a_numeric_score_is_other_error(judge_stub, reply):
    judge_stub.push(reply)
    result = run_grader(endpoint_config(judge_stub), "x", ITEM)
    flags = raised(result)
    assert result["reward"] == 0.0 and flags["other_error"] is True
    assert "trace_id" in flags["other_error_details"]
    assert len(judge_stub.requests) == 1  # a 4xx or a bad body is not retried


def test_rate_limit_spaces_requests(judge_stub):
    judge_stub.default = Reply(body={"score": 1})

    def arrivals(**fields) -> list[float]:
        judge_stub.requests.clear()
        with build_grader(endpoint_config(judge_stub, **fields)) as grader:
            grades = grader.grade_batch(["x"] * 6, [ITEM] * 6)
        assert [grade.reward for grade in grades] == [1.0] * 6
        return sorted(request.at for request in judge_stub.requests)

    unlimited = arrivals()
    assert unlimited[-1] - unlimited[0] < 0.3
    limited = arrivals(rate_limit=600)  # 600 a minute: one every 0.1 s
    gaps = [later - earlier for earlier, later in zip(limited, limited[1:])]
    assert min(gaps) >= 0.05 and limited[-1] - limited[0] >= 0.4


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_retries": 4}, "max_retries"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"timeout": -1}, "timeout"),
        ({"url": "ftp://example.com"}, "url"),
        ({"url": None}, "url"),
        ({"headers": {"Authorization": "Bearer ${RFT_TEST_UNSET_TOKEN}"}}, "headers.Authorization"),
        ({"retries": 2}, "retries"),
    ],
)
def test_bad_endpoint_configs_name_the_field(change, field, monkeypatch):
    monkeypatch.delenv("RFT_TEST_UNSET_TOKEN", raising=False)
    config = {"type": "endpoint", "name": "service", "url": "https://grader.example.com/score", **change}
    with pytest.raises(GraderConfigError) as caught:
        validate_grader(config)
    assert caught.value.field == field
