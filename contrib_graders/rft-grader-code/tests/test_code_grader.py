"""The code grader through rft-plugins and its sandbox (the built-ins and this plugin only)."""

import json
import time

import pytest

import rft_grader_code
from rft_plugins import GraderConfigError, validate_grader
from rft_plugins.testing import grade_samples

ADD_TESTS = {"test_list": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 5"]}
ASSERTS = {"type": "code", "name": "tests", "tests": "{{ item.test_list }}", "time_limit_s": 2}
ADD = "def add(a, b):\n    return a + b\n"


@pytest.fixture(autouse=True)
def plugin(rft_plugin_manager):
    return rft_plugin_manager(rft_grader_code)


def grade(output, item=ADD_TESTS, **config):
    [response] = grade_samples({**ASSERTS, **config}, [output], item)
    return response


def scores(response):
    return response["metadata"]["scores"]


def flags(response):
    return {flag for flag, value in response["metadata"]["errors"].items() if value is True}


def test_partial_passes_give_the_fraction_passed():
    response = grade(f"Here you go:\n```python\n{ADD}```\nIt adds.")
    assert response["reward"] == pytest.approx(2 / 3)
    assert scores(response)["results"] == ["passed", "passed", "failed"]
    assert scores(response)["first_failure"] == "test 2: failed: assert add(2, 2) == 5"
    assert grade(ADD, scoring="all")["reward"] == 0.0


def test_a_syntax_error_is_a_sample_parse_error():
    response = grade("```python\ndef add(a, b)\n    return a + b\n```")
    assert response["reward"] == 0.0 and flags(response) == {"sample_parse_error"}
    assert "line 1" in response["metadata"]["errors"]["sample_parse_error_details"]


def test_an_infinite_loop_costs_only_its_own_tests_time():
    item = {"test_list": ["assert f(1) == 1", "assert f(2) == 2"]}
    program = "def f(x):\n    while x == 2:\n        pass\n    return x\n"
    started = time.monotonic()
    response = grade(program, item, time_limit_s=1)
    assert time.monotonic() - started < 10
    assert response["reward"] == 0.5 and scores(response)["results"] == ["passed", "timeout"]
    assert not flags(response)


def test_printing_programs_and_tests_are_graded_normally():
    program = "def add(a, b):\n    print('debug', a, b)\n    return a + b\n"
    item = {"test_list": ["print('checking'); assert add(1, 2) == 3", "import sys; print('to stderr', file=sys.stderr); assert add(0, 0) == 0"]}
    assert grade(program, item)["reward"] == 1.0


@pytest.mark.parametrize("hack", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "raise SystemExit\n"])
def test_exiting_before_the_tests_is_not_a_pass(hack):
    response = grade(ADD + hack)
    assert response["reward"] == 0.0
    assert set(scores(response)["results"]) == {"runtime_error"}


def test_memory_and_output_limits_per_test():
    item = {"test_list": ["assert big() > 0", "assert 1 + 1 == 2"]}
    response = grade("def big():\n    return len(bytearray(600 * 1024 * 1024))\n", item, memory_mb=256)
    assert scores(response)["results"] == ["memory_limit", "passed"]
    flood = grade("def add(a, b):\n    while True:\n        print('x' * 10000)\n", max_output_kb=64)
    assert set(scores(flood)["results"]) == {"output_limit"}


def test_each_test_runs_in_a_fresh_interpreter():
    program = "import builtins\nbuiltins.sorted = lambda values: [0]\nSEEN = []\ndef f(x):\n    SEEN.append(x)\n    return len(SEEN)\n"
    item = {"test_list": ["assert f(1) == 1", "assert f(2) == 1", "assert sorted([2, 1]) == [0]"]}
    assert grade(program, item)["reward"] == 1.0


STDIO = {"type": "code", "name": "stdio", "tests": "{{ item.input_output }}", "time_limit_s": 2}
SUM_PROGRAM = "import sys\nnumbers = list(map(int, sys.stdin.read().split()))\nprint(sum(numbers))\n"


def grade_stdio(output, tests, **config):
    [response] = grade_samples({**STDIO, **config}, [output], {"input_output": tests})
    return response


def test_stdin_stdout_cases_in_the_apps_format():
    tests = json.dumps({"inputs": ["1 2\n", "5 5 5\n", "0\n"], "outputs": ["3\n", "15\n", "1\n"]})  # a JSON string, as APPS
    response = grade_stdio(f"```py\n{SUM_PROGRAM}```", tests)
    assert response["reward"] == pytest.approx(2 / 3)
    assert scores(response)["results"] == ["passed", "passed", "wrong_answer"]
    assert "expected '1\\n', got '0\\n'" in scores(response)["first_failure"]


def test_stdin_stdout_cases_in_the_test_cases_format_with_a_main_guard():
    program = "def main():\n    name = input()\n    print(f'Hello, {name}!   ')\n\nif __name__ == '__main__':\n    main()\n"
    tests = {"language": "python", "test_cases": [
        {"type": "stdin_stdout", "input": "Ada\n", "output": "Hello, Ada!\n\n"},
        {"type": "stdin_stdout", "input": "Bob\n", "output": "Hello, Bob!"}]}
    assert grade_stdio(program, tests)["reward"] == 1.0
    assert grade_stdio(program, tests, output_match="exact")["reward"] == 0.0


def test_tokens_with_a_float_tolerance_and_runtime_errors():
    program = "x = float(input())\nprint(1 / x)\n"
    tests = {"input": ["3\n", "0\n"], "output": ["0.333333", "inf"]}
    assert scores(grade_stdio(program, tests, output_match="tokens"))["results"] == ["wrong_answer", "runtime_error"]
    response = grade_stdio(program, tests, output_match="tokens", float_tolerance=1e-5)
    assert scores(response)["results"] == ["passed", "runtime_error"]
    assert "ZeroDivisionError" in scores(response)["first_failure"]


def test_function_calls_apps_leetcode_and_livecodebench():
    apps = json.dumps({"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], 8]})
    assert grade_stdio(ADD, apps)["reward"] == 0.5
    leetcode = "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, n in enumerate(nums):\n            if target - n in seen:\n                return (seen[target - n], i)\n            seen[n] = i\n"
    livecodebench = [{"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]", "testtype": "functional"}]
    assert grade_stdio(leetcode, livecodebench, fn_name="twoSum")["reward"] == 1.0
    assert scores(grade_stdio(ADD, livecodebench, fn_name="twoSum"))["results"] == ["runtime_error"]


def test_humaneval_check_function_and_mbpp_setup():
    humaneval = {"type": "code", "name": "he", "tests": "{{ item.test }}\ncheck({{ item.entry_point }})"}
    item = {"test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-2, 2) == 0\n", "entry_point": "add"}
    assert grade_samples(humaneval, [ADD, "def add(a, b):\n    return a - b\n"], item)[0]["reward"] == 1.0
    mbpp = {**ASSERTS, "setup": "{{ item.test_imports }}"}
    item = {"test_list": ["assert root(16) == 4"], "test_imports": ["import math"]}
    assert grade_samples(mbpp, ["def root(x):\n    return math.isqrt(x)\n"], item)[0]["reward"] == 1.0


@pytest.mark.parametrize("output", ["", "   ", "```cpp\nint main() {}\n```"])
def test_no_python_program_is_a_sample_parse_error(output):
    assert flags(grade(output)) == {"sample_parse_error"}


def test_the_last_python_block_is_the_program():
    output = f"First try:\n```python\ndef add(a, b):\n    return 0\n```\nBetter:\n~~~python\n{ADD}~~~\n```text\nnotes\n```"
    assert grade(output)["reward"] == pytest.approx(2 / 3)
    assert flags(grade(f"no fence here\n{ADD}", extract="fenced")) == {"sample_parse_error"}


@pytest.mark.parametrize(
    "tests", [[], 5, {"inputs": ["1"], "outputs": []}, [{"input": "1"}], [{"input": 1, "output": "1"}],
              [{"type": "function_call", "input": [1], "output": 1}]],
)
def test_an_item_without_usable_tests_flags_the_row(tests):
    response = grade(ADD, {"test_list": tests})
    assert response["reward"] == 0.0 and flags(response) == {"invalid_variable_error"}


@pytest.mark.parametrize(("change", "field"), [({"time_limit_s": 0}, "time_limit_s"), ({"memory_mb": 1}, "memory_mb"),
                                               ({"scoring": "best"}, "scoring"), ({"tests": "{{ item.x | upper }}"}, "tests"),
                                               ({"timeout": 3}, "timeout")])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(GraderConfigError) as error:
        validate_grader({**ASSERTS, **change})
    assert error.value.field == field
