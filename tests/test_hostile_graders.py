"""Hostile python graders: the code takes over its sandbox worker and lies, blocks, floods or dies.

Whatever it does costs its own sample; every later grade through the same grader (benign samples)
is graded normally, the pool's books balance (no slot believed busy for ever), nothing waits
without a deadline, and the trainer's memory stays bounded (measured with psutil).
Real sandbox workers throughout; short wall times keep this fast.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from memory_probe import MIB, PeakRss

from rft_plugins import GraderConfigError, run_grader
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


def test_similarity_inputs_past_the_quadratic_limit_are_refused_before_computing():
    """Before: ``rouge_l`` on long inputs built a longest-common-subsequence table of every token
    pair (1 MB each: killed for memory); 40,000 characters took about 10 s and 400 MB."""
    config = {"type": "text_similarity", "name": "sim", "input": "{{ sample.output_text }}",
              "reference": "{{ item.reference }}", "evaluation_metric": "rouge_l"}
    words = " ".join(f"w{i % 997}" for i in range(8000))  # 40 kB of varied tokens
    with build_grader(config) as grader:
        started = time.monotonic()
        with PeakRss() as memory:
            grade = grader.grade(words, {"reference": words[::-1]})
        assert time.monotonic() - started < 1.0 and memory.growth < 16 * MIB, memory
        assert grade.reward == 0.0 and grade.errors["other_error"]
        assert "rouge_l compares at most 10,000 (max_input_chars)" in grade.errors["other_error_details"]
        assert grader.grade("the cat sat", {"reference": "the cat sat down"}).reward > 0.8  # the next grade goes on
    with build_grader({**config, "max_input_chars": 10}) as grader:
        assert grader.grade("a longer answer", {"reference": "short"}).errors["other_error"]
        assert grader.grade("short", {"reference": "short"}).reward == 1.0


@pytest.mark.parametrize(
    "keys, formula, problem",
    [
        (["a", "b"], "ａ", "unknown name 'ａ' (Python reads it as 'a')"),
        (["a", "b"], "ｍａｘ(a, b)", "unknown name 'ｍａｘ' (Python reads it as 'max')"),
        (["a", "ａ"], "a", "read as other keys in a formula (Unicode folding)"),
    ],
)
def test_formula_names_are_matched_as_written(keys, formula, problem):
    """Before: a full-width ``ａ`` read the key ``a`` (Python folds identifiers to NFKC), so the
    formula silently used another sub-grader's reward."""
    graders = {key: {"type": "string_check", "name": key, "input": "x", "reference": "x" if key == "a" else "y",
                     "operation": "eq"} for key in keys}
    result = run_grader({"type": "multi", "name": "m", "graders": graders, "calculate_output": formula}, "out")
    errors = result["metadata"]["errors"]
    assert result["reward"] == 0.0 and errors["formula_parse_error"] and problem in errors["formula_parse_error_details"]


def test_a_key_written_in_full_width_still_works_when_the_formula_names_it_exactly():
    graders = {"ａ": {"type": "string_check", "name": "wide", "input": "x", "reference": "x", "operation": "eq"}}
    result = run_grader({"type": "multi", "name": "m", "graders": graders, "calculate_output": "ａ * 0.5"}, "out")
    assert result["reward"] == 0.5 and result["sub_rewards"] == {"ａ": 1.0}


@pytest.mark.skipif(os.geteuid() != 0, reason="what read_paths grants beyond permissions matters when running as root")
def test_read_paths_never_give_root_only_files_to_the_grader():
    """Before: as root, ``read_paths`` let grader code read files only root may read (the sandbox
    keeps CAP_DAC_READ_SEARCH, and the weaker mode runs as uid 0)."""
    shared = Path(tempfile.mkdtemp(prefix="rft-read-paths-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        (shared / "public.txt").write_text("for everyone")
        (shared / "secret.txt").write_text("root only")
        (shared / "secret.txt").chmod(0o600)
        (shared / "private").mkdir(mode=0o700)
        (shared / "private" / "inner.txt").write_text("root only, inside")
        reader = "def grade(sample, item):\n    return float(len(open(item['path']).read()))\n"
        config = {"type": "python", "name": "reader", "source": reader,
                  "sandbox": {"wall_time_s": WALL_S, "workers": 1, "read_paths": [str(shared)]}}
        with build_grader(config) as grader:
            assert grader.grade("x", {"path": str(shared / "public.txt")}).reward == len("for everyone")
            for name in ("secret.txt", "private/inner.txt"):
                grade = grader.grade("x", {"path": str(shared / name)})
                assert grade.reward == 0.0 and "PermissionError" in grade.errors["python_grader_runtime_error_details"]
        with pytest.raises(GraderConfigError, match=r"sandbox.read_paths\[0\]: .* readable by root only"):
            build_grader({**config, "sandbox": {"read_paths": [str(shared / "secret.txt")]}})
    finally:
        shutil.rmtree(shared)
