"""The RFT guide's complete job trains here as published, and a run speaks OpenAI's events.

The job (``openai_examples.RFT_GUIDE_JOB``, from the RFT guide's "Create a job with the API") keeps
its grader, ``response_format`` and hyperparameters; only the model and the files are local ones,
and its ``gpt-4o`` judge is a real HTTP server on 127.0.0.1 reached through ``$OPENAI_BASE_URL``,
as OpenAI's JSON leaves it. The events' shape is the RFT guide's "Training metrics" appendix.
"""

from __future__ import annotations

import copy
import json

import pytest
from judge_stub import JudgeStub, completion
from openai_examples import RFT_GUIDE_JOB, RFT_GUIDE_ROWS
from test_job import job_dict
from train_jobs import chat, metric_rows, run_rft, write_job

from rft_plugins.graders.types import BOOLEAN_FLAGS
from rft_plugins.training.job import Job, resolve_hyperparameters
from rft_plugins.training.run import train

MAX_TOKENS = 300  # the tiny model closes most JSON strings within it; the rest are cut (truncated)
STEPS = 3


def follows_the_schema(text: str) -> bool:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and set(value) == {"compliant", "explanation"} and all(
        isinstance(field, str) for field in value.values())


@pytest.fixture(scope="module")
def guide_run(tiny_model_path, tmp_path_factory):
    """The guide's job, a few steps on the tiny model, judged by the loopback server."""
    stub = JudgeStub().start()
    stub.default = completion("0.75")  # what its prompt asks for: "a single floating point number"
    folder = tmp_path_factory.mktemp("rft-guide")
    job = copy.deepcopy(RFT_GUIDE_JOB)
    job["model"] = str(tiny_model_path)
    job["trainer"] = {"output_dir": str(folder / "run"), "max_steps": STEPS, "num_generations": 4,
                      "max_completion_length": MAX_TOKENS, "accelerator": "cpu"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", stub.base_url)
        patch.delenv("OPENAI_API_KEY", raising=False)
        result = train(job, train_rows=RFT_GUIDE_ROWS, valid_rows=RFT_GUIDE_ROWS, progress_bar=False)
    stub.stop()
    return result, stub.requests


def test_the_guides_job_trains_on_structured_answers_graded_by_its_judge(guide_run):
    result, judge_requests = guide_run
    assert result.final_step == STEPS
    rows = metric_rows(result.output_dir / "metrics.csv")
    trained = [row for row in rows if row.get("train_reward_mean")]
    assert len(trained) == STEPS
    for row in trained:
        # a finished sample is JSON of the schema, so only a cut one can lack sample.output_json
        assert float(row["train/invalid_variable_error_rate"]) <= float(row["completion_truncated_rate"])
        assert set(row) >= {"train/compliant_reward_mean", "train/explanation_reward_mean", "train/multi_reward_mean"}
    assert min(float(row["completion_truncated_rate"]) for row in trained) < 1.0  # some samples did finish
    records = [json.loads(line) for line in (result.output_dir / "samples.jsonl").read_text().splitlines()]
    parsed = [record for record in records if follows_the_schema(record["completion"])]
    assert parsed and all(record["sub_rewards"]["explanation"] == 0.75 for record in parsed)
    unparsed = [record for record in records if record not in parsed]
    assert all(set(record["errors"]) == {"invalid_variable_error", "invalid_variable_error_details"}
               for record in unparsed)  # cut at the token limit: nothing else went wrong
    assert judge_requests  # one call per sample that parsed, in training and validation
    for request in judge_requests:
        body = request.json
        assert body["model"] == "gpt-4o-2024-08-06"
        assert body["response_format"]["type"] == "json_schema"  # structured output, as OpenAI asks
        (message,) = body["messages"]  # the guide's prompt alone, rendered
        assert message["content"].startswith("# Overview") and "Model Answer: " in message["content"]


def test_the_run_writes_one_openai_metrics_event_per_step(guide_run):
    result, _ = guide_run
    events = [json.loads(line) for line in (result.output_dir / "events.jsonl").read_text().splitlines()]
    steps = [event["data"]["step"] for event in events]
    assert steps == list(range(STEPS + 1))  # step 0: the baseline validated before training
    assert events[0]["data"]["full_valid_mean_reward"] == events[0]["data"]["scores"]["valid_reward_mean"]
    rows = {int(row["step"]): row for row in metric_rows(result.output_dir / "metrics.csv") if row.get("train_reward_mean")}
    for event in events:
        assert (event["object"], event["type"], event["level"]) == ("fine_tuning.job.event", "metrics", "info")
        data = event["data"]
        assert data["total_steps"] == STEPS and event["message"].startswith(f"Step {data['step']}/{STEPS}")
        assert [(g["name"], g["type"]) for g in data["scores"]["graders"]] == [
            ("explanation", "score_model"), ("compliant", "string_check")]
        assert set(data["timing"]["step"]) == {"sampling", "training", "eval", "full_iteration"}
        if data["step"] not in rows:
            continue
        row = rows[data["step"]]
        assert data["scores"]["train_reward_mean"] == pytest.approx(float(row["train_reward_mean"]))
        assert data["scores"]["graders"][1]["train_reward_mean"] == pytest.approx(float(row["train/compliant_reward_mean"]))
        (errors,) = data["errors"]["graders"]
        assert (errors["name"], errors["type"]) == ("multi", "multi")
        for flag in BOOLEAN_FLAGS:
            rate = float(row[f"train/{flag}_rate"])
            assert errors[f"train_{flag}_mean"] == pytest.approx(rate)
            assert errors[f"train_{flag}_count"] == round(rate * float(row["train/graded_samples"]))
        assert data["timing"]["step"]["sampling"] > 0 and data["timing"]["step"]["training"] > 0
        assert data["timing"]["step"]["full_iteration"] >= data["timing"]["step"]["eval"] > 0  # validated each step
        assert data["full_valid_mean_reward"] == data["scores"]["valid_reward_mean"]


@pytest.mark.parametrize(("effort", "scale"), [("default", 1.0), ("medium", 1.0), ("none", 0.25), ("minimal", 0.25),
                                                ("low", 0.5), ("high", 2.0), ("xhigh", 4.0)])
def test_reasoning_effort_takes_openais_values(tiny_model_path, effort, scale):
    """``default``: fine_tuning/reinforcement_hyperparameters.py; the rest: shared/reasoning_effort.py."""
    job = Job.model_validate({**job_dict(tiny_model_path, reasoning_effort=effort),
                              "trainer": {"max_completion_length": 64}})
    plan = resolve_hyperparameters(job, 4)
    assert plan.max_completion_length == round(64 * scale)


def test_rft_train_says_loudly_that_a_graders_package_is_missing(tmp_path, tiny_model_path):
    """A python grader importing a package of OpenAI's image that the grader's Python lacks: the
    run still trains (every sample scores 0), but stderr names the package and the extra once, and
    the logs carry the flag and the pass rate the grader's threshold gives."""
    grader = {"type": "multi", "calculate_output": "chemistry + length", "graders": {
        "chemistry": {"type": "python", "pass_threshold": 0.5,
                      "source": "from rdkit import Chem\ndef grade(sample, item):\n    return 1.0\n"},
        "length": {"type": "text_similarity", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
                   "evaluation_metric": "fuzzy_match", "pass_threshold": 0.0},
    }}
    rows = [{"messages": chat(f"molecule {n}?"), "answer": "CCO"} for n in range(2)]
    job = write_job(tmp_path, tiny_model_path, grader, rows, rows, {"batch_size": 2, "eval_interval": 1},
                    max_steps=1, num_generations=2, max_completion_length=8, accelerator="cpu")
    done = run_rft(job, "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if "cannot import rdkit" in line]
    assert len(said) == 1
    assert "'chemistry'" in said[0] and "rft-plugins[grader-image]" in said[0] and "scores 0" in said[0]
    (row,) = [row for row in metric_rows(tmp_path / "run" / "metrics.csv") if row.get("train_reward_mean")]
    assert float(row["train/python_grader_runtime_error_rate"]) == 1.0
    assert float(row["train/chemistry_pass_rate"]) == 0.0 and float(row["train/length_pass_rate"]) == 1.0
    valid = [row for row in metric_rows(tmp_path / "run" / "metrics.csv") if row.get("valid/chemistry_pass_rate")]
    assert valid and float(valid[-1]["valid/chemistry_pass_rate"]) == 0.0
