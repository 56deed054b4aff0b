"""Graders as TRL reward functions, run by the real GRPOTrainer on a tiny model."""

from __future__ import annotations

import inspect

import pytest

from rft_plugins import GraderConfigError
from rft_plugins.adapters.trl import completion_to_sample, reward_funcs

CONTAINS_A = {"type": "string_check", "name": "has_a", "input": "{{ sample.output_text }}",
              "reference": "{{ item.letter }}", "operation": "like"}
MULTI = {
    "type": "multi",
    "name": "combo",
    "graders": {
        "a": CONTAINS_A,
        "b": {"type": "string_check", "name": "has_b", "input": "{{ sample.output_text }}", "reference": "b",
              "operation": "like"},
    },
    "calculate_output": "(a + b) / 2",
}


def test_functions_are_named_after_graders_and_use_dataset_columns():
    [has_a, combo] = reward_funcs([CONTAINS_A, MULTI])
    assert (has_a.__name__, combo.__name__) == ("has_a", "combo")
    logged = {}
    rewards = combo(
        prompts=["p1", "p2", "p3"],
        completions=["xa", "ab", "zz"],
        completion_ids=[[1], [2], [3]],
        letter=["a", "a", "a"],
        trainer_state=object(),
        log_metric=lambda name, value: logged.__setitem__(name, value),
        log_extra=lambda column, values: logged.__setitem__(column, values),
    )
    assert rewards == [0.5, 1.0, 0.0]
    assert logged["combo/a/mean"] == pytest.approx(2 / 3) and logged["combo/b/mean"] == pytest.approx(1 / 3)
    assert logged["combo/error_rate"] == 0.0
    assert logged["combo_errors"] == ["", "", ""]


def test_errors_become_flags_not_exceptions():
    [has_a] = reward_funcs(CONTAINS_A)
    logged = {}
    rewards = has_a(prompts=["p"], completions=["a"], log_metric=lambda n, v: logged.__setitem__(n, v),
                    log_extra=lambda c, v: logged.__setitem__(c, v))  # no `letter` column
    assert rewards == [0.0]
    assert logged["has_a/error_rate"] == 1.0 and logged["has_a_errors"] == ["invalid_variable_error"]


def test_conversational_completions_grade_the_last_assistant_message():
    tool_call = {"type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    completion = [
        {"role": "assistant", "content": "", "tool_calls": [tool_call]},
        {"role": "tool", "content": "result"},
        {"role": "assistant", "content": [{"type": "text", "text": "final "}, {"type": "text", "text": "answer"}]},
    ]
    assert completion_to_sample(completion).output_text == "final answer"
    assert completion_to_sample(completion[:1]).output_tools == [tool_call]


def test_bad_grader_fails_when_the_functions_are_made():
    with pytest.raises(GraderConfigError):
        reward_funcs({"type": "string_check", "name": "x"})


def test_sync_graders_give_sync_functions():
    assert not inspect.iscoroutinefunction(reward_funcs(CONTAINS_A)[0])


def test_grpo_trainer_logs_per_grader_rewards(tiny_model_path, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": f"say {c}"}], "letter": c} for c in "abab"])
    config = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_path),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_path),
        reward_funcs=reward_funcs([CONTAINS_A, MULTI]),
        args=config,
        train_dataset=dataset,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "rewards/has_a/mean" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert 0.0 <= entry["rewards/has_a/mean"] <= 1.0
        assert 0.0 <= entry["rewards/combo/mean"] <= 1.0
        assert entry["combo/error_rate"] == 0.0
        assert "combo/a/mean" in entry
