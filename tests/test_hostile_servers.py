"""Hostile judge and endpoint servers on loopback: bodies that never end, bodies that drip.

A server may stream its answer for ever or send a byte a second; neither may hold a grade past
its ``timeout`` (seconds per attempt, the whole answer included) nor grow the trainer's memory
past ``max_response_kb``. The next grade, from a server that behaves, goes through.
"""

from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
from judge_stub import Reply, judge_stub, verdict  # noqa: F401  (judge_stub is a fixture)
from memory_probe import MIB, PeakRss

from rft_plugins import build_grader

INPUT = [{"role": "user", "content": "Reference: {{ item.reference }}\nAnswer: {{ sample.output_text }}"}]


def judge_config(stub, **options) -> dict:
    judge = {"base_url": stub.base_url, "timeout": 1.0, "max_retries": 0, "backoff": 0.01, **options}
    return {"type": "score_model", "name": "judge", "model": "gpt-4o-mini", "input": INPUT, "judge": judge}


def endpoint_config(stub, **options) -> dict:
    return {"type": "endpoint", "name": "service", "url": stub.url, "timeout": 1.0, "max_retries": 0,
            "backoff": 0.01, **options}


#: (config builder, the flag a failed call raises, the reply a well-behaved server gives)
KINDS = {
    "judge": (judge_config, "model_grader_server_error", verdict(0.75)),
    "endpoint": (endpoint_config, "unresponsive_reward_error", Reply(body={"score": 0.75})),
}


def endless(total: int = 256 * MIB) -> Iterator[bytes]:
    """A body of whitespace sent as fast as the client reads it (256 MiB, then it stops)."""
    piece = b" " * (64 * 1024)
    for _ in range(total // len(piece)):
        yield piece


def drip(seconds: float = 8.0, every: float = 0.2) -> Iterator[bytes]:
    """One byte of whitespace every ``every`` s for ``seconds``, then a valid score."""
    for _ in range(int(seconds / every)):
        time.sleep(every)
        yield b" "
    yield json.dumps({"score": 1.0}).encode()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_body_that_never_ends_is_cut_at_the_byte_cap(judge_stub, kind):
    config, _, good = KINDS[kind]
    judge_stub.push(Reply(stream=endless), good)
    with build_grader(config(judge_stub, max_response_kb=64)) as grader:
        started = time.monotonic()
        with PeakRss() as memory:
            grade = grader.grade("Paris", {"reference": "Paris"})
        elapsed = time.monotonic() - started
        flag = "model_grader_server_error" if kind == "judge" else "other_error"
        assert grade.reward == 0.0 and grade.errors[flag], grade.errors
        assert "over the 65536-byte limit (max_response_kb)" in grade.errors[f"{flag}_details"]
        assert memory.growth < 16 * MIB, memory  # before: every byte the server sent, kept
        assert elapsed < 1.0
        assert grader.grade("Paris", {"reference": "Paris"}).reward == 0.75  # the next grade goes on


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_body_that_drips_cannot_outlast_the_timeout(judge_stub, kind):
    """A byte every 0.2 s never trips a read timeout of 1 s; the attempt's deadline does."""
    config, flag, good = KINDS[kind]
    judge_stub.push(Reply(stream=drip), Reply(stream=drip), good)
    with build_grader(config(judge_stub, max_retries=1)) as grader:
        started = time.monotonic()
        grade = grader.grade("Paris", {"reference": "Paris"})
        elapsed = time.monotonic() - started
        assert grade.reward == 0.0 and grade.errors[flag], grade.errors
        assert "no response within 1 s" in grade.errors[f"{flag}_details"]
        assert "2 attempts" in grade.errors[f"{flag}_details"]
        assert elapsed < 2 * 1.0 + 1.0  # two attempts of 1 s each and a short backoff
        assert grader.grade("Paris", {"reference": "Paris"}).reward == 0.75


def test_an_error_body_of_any_size_costs_an_excerpt(judge_stub):
    """A 500 whose body is 200 MB: the call ends at the cap, the details stay short."""
    judge_stub.push(Reply(status=500, stream=lambda: endless(200 * MIB)))
    with build_grader(endpoint_config(judge_stub)) as grader, PeakRss() as memory:
        grade = grader.grade("Paris", {"reference": "Paris"})
    details = grade.errors["other_error_details"]
    assert "over the 1048576-byte limit" in details and len(details) < 500
    assert memory.growth < 16 * MIB, memory
