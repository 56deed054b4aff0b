"""Hostile python graders: the code takes over its sandbox worker and lies, blocks, floods or dies.

Whatever it does costs its own sample; every later grade through the same grader (benign samples)
is graded normally, the pool's books balance (no slot believed busy for ever), nothing waits
without a deadline, and the trainer's memory stays bounded (measured with psutil).
Real sandbox workers throughout; short wall times keep this fast.
"""

from __future__ import annotations

import re
import sys
import textwrap
import time

import pytest
from memory_probe import MIB, PeakRss

from rft_plugins.graders.build import build_grader
from rft_plugins.sandbox import SandboxLimits, SandboxPool, landlock
from rft_plugins.training.grading import BackgroundGrader

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or landlock.abi_version() < 1, reason="the sandbox needs Linux with Landlock"
)

WALL_S = 1.5

#: One grader, benign unless ``item["mode"]`` asks for a trick: what a crafted grader can do to
#: the worker that runs it (it can write to the worker's reply pipe and read the request id from
#: the worker's frame, since it runs in the same process).
HOSTILE = textwrap.dedent('''
    import json, os, sys, time

    def _send(obj, raw=None, announced=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        frame = (announced or len(body)).to_bytes(4, "big") + body
        for fd in range(3, 32):  # the reply pipe is one of these; the others refuse or do not matter
            try:
                os.write(fd, frame)
            except OSError:
                pass

    def _request_id():
        frame = sys._getframe(1)
        while frame is not None and "request" not in frame.f_locals:
            frame = frame.f_back
        return frame.f_locals["request"]["id"]

    def grade(sample, item):
        mode = item.get("mode")
        if mode == "lie_and_exit":       # issue 11, cause 2: a bogus reply, then gone
            _send("not a reply")
            os._exit(0)
        if mode == "answer_out_of_turn":  # a well-formed reply to another request
            _send({"id": -1, "ok": True, "value": 1.0})
            return 0.5
        if mode == "nested_reply":       # a reply nested past what json can parse
            _send(None, raw=b"[" * 200000 + b"]" * 200000)
            time.sleep(60)
        if mode == "flood":              # announces 200 MB and starts sending them
            _send(None, raw=b"x" * (1 << 20), announced=200 << 20)
            time.sleep(60)
        if mode == "fake_then_block":    # issue 11, cause 3: a believable reply, then never reads again
            _send({"id": _request_id(), "ok": True, "value": 1.0})
            time.sleep(3600)
        if mode == "huge_error":         # issue 11, cause 4: a 30 MB exception message
            raise ValueError("x" * 30_000_000)
        if mode == "numpy_bool":
            import numpy
            return numpy.bool_(True)
        return float(sample["output_text"] == item.get("answer"))
''')


def hostile_grader(workers: int = 2, **sandbox):
    return build_grader({
        "type": "python", "name": "hostile", "source": HOSTILE,
        "sandbox": {"wall_time_s": WALL_S, "memory_mb": 512, "workers": workers, **sandbox},
    })


def assert_benign_grades_pass(grader, count: int = 4) -> None:
    """Later grades through the same grader, on healthy workers, as fast as ever."""
    started = time.monotonic()
    grades = grader.grade_batch(["yes"] * count, [{"answer": "yes"}] * count, timeout=10)
    assert [grade.reward for grade in grades] == [1.0] * count, [grade.errors for grade in grades]
    assert time.monotonic() - started < WALL_S  # nobody waited out a wall time
    counts = grader.impl.pool.counts
    assert counts["busy"] == 0 and counts["idle"] == counts["started"] <= 2, counts


@pytest.mark.parametrize(
    "mode, fault, details",
    [
        ("lie_and_exit", "protocol", "the reply is a str, not an object"),
        # its own reply follows the fake one: which the pool sees first is a matter of timing
        ("answer_out_of_turn", "protocol", "does not answer this request|more bytes than one frame"),
        ("nested_reply", "protocol", "not JSON"),
        ("flood", "output_too_large", r"the limit is 1048576 bytes \(sandbox.max_output_kb\)"),
    ],
)
def test_a_grader_that_takes_over_its_worker_costs_only_its_own_samples(mode, fault, details):
    with hostile_grader() as grader:
        # more hostile grades than workers: on today's main, two of these left both slots
        # "busy" for ever and every later grade waited out its timeout
        for _ in range(3):
            grade = grader.grade("yes", {"mode": mode})
            assert grade.reward == 0.0 and grade.errors["python_grader_runtime_error"], grade.errors
            assert grade.metadata["sandbox_fault"] == fault
            assert re.search(details, grade.errors["python_grader_runtime_error_details"])
        assert_benign_grades_pass(grader)


def test_a_worker_that_stops_reading_cannot_hang_the_grading_loop():
    """The code answers for its worker, then blocks it: the pool believes the answer and sends the
    next request, 100 kB (more than a pipe holds), to a worker that never reads. Before: the
    grading event loop blocked in that write for ever (``rft train`` never passed step 1)."""
    with hostile_grader(workers=1) as grader:
        background = BackgroundGrader(grader, concurrency=8, timeout=10)
        try:
            first = background.submit(["yes"], [{"mode": "fake_then_block"}]).result(timeout=30)
            assert first.grades[0].reward == 1.0  # the lie itself cannot be told from the truth
            big_item = {"answer": "yes", "notes": "n" * 100_000}
            started = time.monotonic()
            later = background.submit(["yes"] * 4, [big_item] * 4).result(timeout=30)
            elapsed = time.monotonic() - started
        finally:
            background.close()
        rewards = [grade.reward for grade in later.grades]
        timed_out = [grade for grade in later.grades if grade.metadata.get("sandbox_fault") == "timeout"]
        assert len(timed_out) == 1 and rewards.count(1.0) == 3, [grade.errors for grade in later.grades]
        assert elapsed < WALL_S + 3
        assert_benign_grades_pass(grader)


def test_a_30_mb_exception_message_is_cut_before_it_reaches_the_trainer():
    with hostile_grader(workers=1) as grader:
        grader.grade("yes", {"answer": "yes"})  # warm: imports and the worker are in place
        with PeakRss() as memory:
            grades = [grader.grade("yes", {"mode": "huge_error"}) for _ in range(3)]
        for grade in grades:
            details = grade.errors["python_grader_runtime_error_details"]
            assert grade.reward == 0.0 and len(details) <= 8000
            assert details.startswith("Traceback") and "characters cut" in details and "ValueError" in details
        assert memory.growth < 16 * MIB, memory  # before: the whole 30 MB, several times over
        assert_benign_grades_pass(grader)


def test_details_limit_is_configurable_per_grader():
    with hostile_grader(workers=1, max_details_chars=500) as grader:
        details = grader.grade("yes", {"mode": "huge_error"}).errors["python_grader_runtime_error_details"]
        assert 200 < len(details) <= 500 and "limited to 500" in details


def test_a_reply_over_the_output_limit_is_refused_politely():
    """Honest code that returns too much gets a reason, and its worker stays warm."""
    with SandboxPool(SandboxLimits(wall_time_s=WALL_S, max_output_kb=64, workers=1)) as pool:
        result = pool.run("def main(n):\n    return 'x' * n\n", [100_000])
        assert not result.ok and result.kind == "output_too_large"
        assert "the limit is 65536 bytes (sandbox.max_output_kb)" in result.details
        assert pool.run("def main(n):\n    return 'x' * n\n", [10]).value == "x" * 10
        assert pool.counts == {"started": 1, "idle": 1, "busy": 0}


def test_a_numpy_bool_is_a_number():
    with hostile_grader(workers=1) as grader:
        grade = grader.grade("yes", {"mode": "numpy_bool"})
    assert grade.reward == 1.0 and not grade.errors
