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
    assert logged["rewards/combo/a/mean"] == pytest.approx(2 / 3)
    assert logged["rewards/combo/b/mean"] == pytest.approx(1 / 3)
    assert logged["rewards/combo/error_rate"] == 0.0
    assert "combo_errors" not in logged  # no column of empty strings when nothing was flagged


def test_errors_become_flags_not_exceptions():
    [has_a] = reward_funcs(CONTAINS_A)
    logged = {}
    rewards = has_a(prompts=["p"], completions=["a"], log_metric=lambda n, v: logged.__setitem__(n, v),
                    log_extra=lambda c, v: logged.__setitem__(c, v))  # no `letter` column
    assert rewards == [0.0]
    assert logged["rewards/has_a/error_rate"] == 1.0 and logged["has_a_errors"] == ["invalid_variable_error"]


def test_conversational_completions_grade_the_last_assistant_message():
    tool_call = {"type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    completion = [
        {"role": "assistant", "content": "", "tool_calls": [tool_call]},
        {"role": "tool", "content": "result"},
        {"role": "assistant", "content": [{"type": "text", "text": "final "}, {"type": "text", "text": "answer"}]},
    ]
    sample = completion_to_sample(completion)
    assert sample.output_text == "final answer"
    # the whole conversation's calls, in OpenAI's shape (an id, arguments as a JSON string)
    assert sample.output_tools == [{"id": "call_0", **tool_call}]
    second = {"type": "function", "function": {"name": "fetch", "arguments": {"url": "x"}}}
    both = completion_to_sample([completion[0], {"role": "assistant", "content": "", "tool_calls": [second]}])
    assert [call["function"]["name"] for call in both.output_tools] == ["lookup", "fetch"]
    assert both.output_tools[1]["function"]["arguments"] == '{"url": "x"}' and both.output_tools[1]["id"] == "call_1"


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
        assert entry["rewards/combo/error_rate"] == 0.0
        assert "rewards/combo/a/mean" in entry


def register_grader(kind: str, grade) -> None:
    """Register a plugin grader type whose ``grade(sample, item)`` is ``grade``."""
    from rft_plugins import hookimpl
    from rft_plugins.plugins import get_plugin_manager

    class Grader:
        def __init__(self, config):
            self.name = config["name"]

        def grade(self, sample, item):
            return grade(sample, item)

    class Plugin:
        @hookimpl
        def rft_register_graders(self, register):
            register(kind, Grader)

    get_plugin_manager().register(Plugin(), name=f"{kind}-plugin")


def test_only_per_sample_columns_reach_graders_and_items_match_rft_train():
    """TRL passes dataset columns and other keyword arguments alike: only sequences as long as the
    completions are columns; a callable or a string is not indexed. ``prompt`` and ``messages``
    are both there, as under ``rft train``."""
    seen = []
    register_grader("recorder", lambda sample, item: seen.append(item) or 1.0)
    [reward] = reward_funcs({"type": "recorder", "name": "rec"})
    rewards = reward(prompts=["say a", [{"role": "user", "content": "say b"}]], completions=["a", "b"],
                     letter=["a", "b"], callback=print, tag="xy", per_batch=[1, 2, 3], trainer_state=object())
    assert rewards == [1.0, 1.0]
    assert seen[0] == {"letter": "a", "prompt": "say a", "messages": [{"role": "user", "content": "say a"}]}
    assert seen[1]["messages"] == [{"role": "user", "content": "say b"}] == seen[1]["prompt"]


def test_cheap_graders_grade_in_the_callers_thread():
    """No thread per grade for a grader that is neither async nor I/O-bound."""
    import threading

    threads = set()
    register_grader("where", lambda sample, item: threads.add(threading.get_ident()) or 0.0)
    [reward] = reward_funcs({"type": "where", "name": "w"})
    reward(prompts=["p"] * 16, completions=["c"] * 16)
    assert threads == {threading.get_ident()}


def test_trl_cli_route_from_a_grader_file(tmp_path, monkeypatch):
    """What ``trl grpo --reward_funcs rft_plugins.adapters.trl.env_grader`` does: import the module,
    get the attribute (TRL's scripts/grpo.py), here with the grader file in RFT_GRADER."""
    import importlib
    import json

    (tmp_path / "a.json").write_text(json.dumps(CONTAINS_A))
    (tmp_path / "b.json").write_text(json.dumps(MULTI))
    module = importlib.import_module("rft_plugins.adapters.trl")
    monkeypatch.setenv("RFT_GRADER", f"{tmp_path / 'a.json'},{tmp_path / 'b.json'}")
    first, second = getattr(module, "env_grader"), getattr(module, "env_grader_1")
    assert (first.__name__, second.__name__) == ("has_a", "combo")
    assert first(prompts=["p"], completions=["xa"], letter=["a"]) == [1.0]
    monkeypatch.delenv("RFT_GRADER")
    with pytest.raises(AttributeError, match="RFT_GRADER"):
        getattr(module, "env_grader")


def test_rloo_trainer_trains_on_our_rewards(tiny_model_path, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": f"say {c}"}], "letter": c} for c in "abab"])
    config = RLOOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
        max_steps=2, learning_rate=1e-3, logging_steps=1, report_to=[], use_cpu=True, bf16=False,
        save_strategy="no", seed=0,
    )
    trainer = RLOOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_path),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_path),
        reward_funcs=reward_funcs([CONTAINS_A, MULTI]), args=config, train_dataset=dataset,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "rewards/has_a/mean" in entry]
    assert len(logs) == 2
    assert all(0.0 <= entry["rewards/combo/mean"] <= 1.0 and entry["rewards/combo/error_rate"] == 0.0 for entry in logs)
