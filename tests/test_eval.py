"""``rft eval``: a model's reward on a data file, printed as tables or JSON, the numbers matching
the samples it writes; a job supplies model, data and grader; a LoRA adapter folder loads with its
base; bad input is one line and exit status 2."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from rft_plugins.data.demo import write_demo

RFT = str(Path(sys.executable).with_name("rft"))


def rft_eval(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([RFT, "eval", *map(str, args)], capture_output=True, text=True, timeout=240, cwd=cwd)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo job (tiny model after its warm-up, digit task): ``job.yaml`` and its files."""
    return write_demo(tmp_path_factory.mktemp("eval") / "demo")


def test_the_printed_summary_matches_the_written_samples(demo, tmp_path):
    out = tmp_path / "out"
    done = rft_eval(demo, "-n", "3", "--limit", "4", "--output-dir", out, "--json", "--no-progress", "--pass-threshold",
                    "0.5")
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout)
    written = json.loads((out / "eval.json").read_text())
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert printed["samples"] == len(records) == 12 and printed["rows"] == 4
    assert {key: printed[key] for key in written["summary"] if key != "seconds"} == {
        key: value for key, value in written["summary"].items() if key != "seconds"}
    rewards = [record["reward"] for record in records]
    assert printed["reward_mean"] == pytest.approx(statistics.fmean(rewards))
    assert printed["pass_threshold"] == 0.5
    assert printed["pass_rate"] == pytest.approx(sum(reward >= 0.5 for reward in rewards) / len(rewards))
    assert sum(printed["histogram"].values()) == printed["graded"] == 12
    assert set(printed["graders"]) == {"exact"}  # the job's grader
    assert [r["reward"] for r in printed["best"]] == sorted(rewards, reverse=True)[:3]
    assert [r["reward"] for r in printed["worst"]] == sorted(rewards)[:3]
    assert written["settings"]["model"].endswith("sft-model") and written["settings"]["samples"] == 3
    assert all(len(record["completion"]) <= 4 * 13 for record in records)  # the job's max_completion_length (4 tokens)


def test_the_tables(demo):
    done = rft_eval(demo, "-n", "2", "--limit", "2", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    for heading in ("rft eval:", "reward histogram", "per grader", "best samples", "worst samples", "pass rate"):
        assert heading in done.stdout


def test_without_a_job_and_with_a_lora_adapter(demo, tmp_path):
    """A LoRA adapter folder (what rft train saves with lora) loads with its base model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = demo.parent / "tiny-model"
    adapter = tmp_path / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules="all-linear")
                   ).save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter)
    grader = {"type": "string_check", "name": "nonempty", "input": "{{ sample.output_text }}", "reference": "",
              "operation": "ne"}
    done = rft_eval("--model", adapter, "--data", demo.parent / "valid.jsonl", "--grader", json.dumps(grader),
                    "-n", "2", "--limit", "2", "--max-new-tokens", "4", "--json", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["samples"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "x.jsonl"], "without a JOB, give --model, --grader"),
        (["--model", "/no/such/model", "--data", "{valid}", "--grader", '{"type": "string_check", "name": "a", '
          '"input": "x", "reference": "x", "operation": "eq"}'], "model '/no/such/model' cannot be loaded"),
        (["--model", "{model}", "--data", "{valid}", "--grader", '{"type": "string_check", "name": "a"}'],
         "Invalid value for grader: input: required field is missing"),
    ],
    ids=["no-job", "no-model", "bad-grader"],
)
def test_bad_input_is_one_line(demo, args, message):
    values = {"{valid}": str(demo.parent / "valid.jsonl"), "{model}": str(demo.parent / "tiny-model")}
    done = rft_eval(*[values.get(arg, arg) for arg in args], "--no-progress")
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and "Traceback" not in done.stderr
