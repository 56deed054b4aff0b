"""The grader runner: whatever a plugin grader does, the caller gets a Grade, never an exception."""

from __future__ import annotations

import asyncio
import threading
import time
import types

import pytest

from rft_plugins import Grade, GradingError, build_grader, hookimpl, run_grader


class Behaviour:
    """A grader that does what its config says: return a value, raise, sleep."""

    def __init__(self, config):
        self.config = config

    def grade(self, sample, item):
        action = self.config["action"]
        if action == "raise":
            raise KeyError("boom")
        if action == "flag":
            raise GradingError("sample_parse_error", "not what I expected")
        if action == "sleep":
            time.sleep(self.config["seconds"])
            return 1.0
        return self.config["value"]


class SlowAsync:
    io_bound = True

    def __init__(self, config):
        self.seconds = config["seconds"]

    async def agrade(self, sample, item):
        await asyncio.sleep(self.seconds)
        return 1.0


class NotThreadSafe:
    thread_safe = False
    io_bound = True

    def __init__(self, config):
        self.inside = 0
        self.overlaps = 0

    def grade(self, sample, item):
        self.inside += 1
        if self.inside > 1:
            self.overlaps += 1
        time.sleep(0.005)
        self.inside -= 1
        return 1.0


@pytest.fixture
def test_graders(fresh_plugins):
    """Register the graders above as a plugin for one test, then unregister it."""
    plugin = types.SimpleNamespace()

    @hookimpl
    def rft_register_graders(register):
        register("behaviour", Behaviour)
        register("slow_async", SlowAsync)
        register("not_thread_safe", NotThreadSafe)

    plugin.rft_register_graders = rft_register_graders
    pm = fresh_plugins.get_plugin_manager()
    pm.register(plugin, name="test_graders")
    yield
    pm.unregister(name="test_graders")


def grade(**config):
    return run_grader({"type": "behaviour", "name": "b", **config}, "out")


@pytest.mark.usefixtures("test_graders")
class TestRunner:
    def test_number_and_bool_and_grade(self):
        assert grade(action="value", value=0.25)["reward"] == 0.25
        assert grade(action="value", value=1)["reward"] == 1.0

    def test_exception_is_other_error_with_traceback_tail(self):
        response = grade(action="raise")
        assert response["reward"] == 0.0
        assert response["metadata"]["errors"]["other_error"] is True
        assert "KeyError: 'boom'" in response["metadata"]["errors"]["other_error_details"]

    def test_grading_error_sets_its_flag(self):
        errors = grade(action="flag")["metadata"]["errors"]
        assert errors["sample_parse_error"] is True and errors["other_error"] is False

    @pytest.mark.parametrize("value", ["0.5", [1], float("nan"), float("inf")])
    def test_non_numbers_are_flagged(self, value):
        response = grade(action="value", value=value)
        assert response["reward"] == 0.0
        assert response["metadata"]["errors"]["other_error"] is True

    def test_none_means_not_applicable(self):
        response = grade(action="value", value=None)
        assert response["reward"] is None
        assert not any(v for k, v in response["metadata"]["errors"].items())

    def test_execution_time_is_measured(self):
        assert grade(action="sleep", seconds=0.05)["metadata"]["execution_time"] >= 0.05

    def test_timeout_flags_unresponsive_and_the_batch_goes_on(self):
        grader = build_grader({"type": "behaviour", "name": "b", "action": "sleep", "seconds": 2})
        started = time.perf_counter()
        grades = grader.grade_batch(["a", "b"], [{}, {}], timeout=0.2)
        assert time.perf_counter() - started < 1.5
        assert [g.reward for g in grades] == [0.0, 0.0]
        assert all(g.errors["unresponsive_reward_error"] for g in grades)

    def test_async_graders_run_concurrently(self):
        grader = build_grader({"type": "slow_async", "name": "s", "seconds": 0.2})
        started = time.perf_counter()
        grades = grader.grade_batch(["x"] * 20, [{}] * 20, max_concurrency=20)
        assert time.perf_counter() - started < 1.0  # 20 x 0.2 s would take 4 s one by one
        assert [g.reward for g in grades] == [1.0] * 20

    def test_concurrency_limit_is_respected(self):
        grader = build_grader({"type": "slow_async", "name": "s", "seconds": 0.1})
        started = time.perf_counter()
        grader.grade_batch(["x"] * 6, [{}] * 6, max_concurrency=2)
        assert time.perf_counter() - started >= 0.3  # three waves of two

    def test_thread_unsafe_graders_never_overlap(self):
        grader = build_grader({"type": "not_thread_safe", "name": "n"})
        grader.grade_batch(["x"] * 40, [{}] * 40, max_concurrency=8)
        assert grader.impl.overlaps == 0

    def test_async_grader_from_sync_code_inside_a_running_loop(self):
        grader = build_grader({"type": "slow_async", "name": "s", "seconds": 0.01})

        async def caller():
            return grader.grade("x")  # sync call from within an event loop

        assert asyncio.run(caller()).reward == 1.0

    def test_mismatched_batch_lengths_are_an_error(self):
        grader = build_grader({"type": "behaviour", "name": "b", "action": "value", "value": 1})
        with pytest.raises(ValueError, match="2 samples but 1 items"):
            grader.grade_batch(["a", "b"], [{}])


def test_grade_failed_records_details():
    grade = Grade.failed("python_grader_runtime_error", "Traceback ...")
    assert grade.reward == 0.0
    assert grade.flagged == ["python_grader_runtime_error"]
    assert grade.errors["python_grader_runtime_error_details"] == "Traceback ..."


def test_sample_from_dict_keeps_given_fields():
    from rft_plugins import Sample

    sample = Sample.coerce({"output_text": "hi", "output_json": {"a": 1}, "output_tools": [{"id": "1"}]})
    assert sample.output_json == {"a": 1} and sample.output_tools == [{"id": "1"}]
    with pytest.raises(TypeError):
        Sample.coerce({"text": "no output_text"})
    assert threading.active_count() >= 1
