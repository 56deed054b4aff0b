"""``trainer_state``: the optional part of the grader protocol that tells a grader where training is.

A curriculum grader (its reward is the share of the run done) is graded by the runner directly,
inside ``multi``, in the threads an I/O-bound grader runs in, and by both engines for real: ``rft
train`` (Lightning) and TRL's ``GRPOTrainer`` through the adapter, where the logged rewards show
the state each step's grades saw.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from train_jobs import chat, metric_rows

from rft_plugins import hookimpl
from rft_plugins.graders.build import build_grader
from rft_plugins.plugins import get_plugin_manager

STATE = {"global_step": 3, "epoch": 1.5, "max_steps": 6}


class Curriculum:
    """Reward = the share of the run done (``global_step / max_steps``); every state it saw is kept."""

    seen: list = []

    def __init__(self, config):
        self.io_bound = config.get("io_bound", False)

    def grade(self, sample, item, trainer_state=None):
        Curriculum.seen.append((trainer_state, threading.get_ident(), item))
        if trainer_state is None:
            return None  # not training: not applicable
        return trainer_state["global_step"] / trainer_state["max_steps"]


class AsyncCurriculum(Curriculum):
    io_bound = True

    def __init__(self, config):
        pass

    async def agrade(self, sample, item, *, trainer_state=None):
        await asyncio.sleep(0)
        return Curriculum.grade(self, sample, item, trainer_state=trainer_state)


class Plain:
    """A grader of the original protocol, strict about its arguments."""

    def __init__(self, config):
        pass

    def grade(self, sample, item):
        return 1.0


class Catchall:
    """``**kwargs`` is not asking: the grader is called as before."""

    kwargs: list = []

    def __init__(self, config):
        pass

    def grade(self, sample, item, **kwargs):
        Catchall.kwargs.append(kwargs)
        return 1.0


class Graders:
    @hookimpl
    def rft_register_graders(self, register):
        register("curriculum", Curriculum)
        register("async_curriculum", AsyncCurriculum)
        register("plain", Plain)
        register("catchall", Catchall)


@pytest.fixture(autouse=True)
def graders():
    Curriculum.seen.clear()
    Catchall.kwargs.clear()
    get_plugin_manager().register(Graders(), name="trainer-state-graders")


def states_seen(split: str | None = None) -> list:
    """The states graders saw, in order; only for prompts of ``split`` (train, valid) when given."""
    return [state for state, _, item in Curriculum.seen
            if split is None or item.get("messages", [{}])[-1].get("content", "").startswith(split)]


def test_a_grader_that_asks_gets_the_state_and_none_outside_training():
    grader = build_grader({"type": "curriculum", "name": "c"})
    assert grader.grade("x", {}, trainer_state=STATE).reward == 0.5
    assert grader.grade("x", {}).reward is None
    assert states_seen() == [STATE, None]


def test_graders_that_do_not_ask_are_called_as_before():
    assert build_grader({"type": "plain", "name": "p"}).grade("x", {}, trainer_state=STATE).reward == 1.0
    assert build_grader({"type": "catchall", "name": "k"}).grade("x", {}, trainer_state=STATE).reward == 1.0
    assert Catchall.kwargs == [{}]


def test_the_state_reaches_graders_inside_multi_and_async_and_threaded_ones():
    multi = build_grader({
        "type": "multi", "name": "m", "calculate_output": "a + b",
        "graders": {"a": {"type": "curriculum", "name": "a"}, "b": {"type": "async_curriculum", "name": "b"}},
    })
    [grade] = multi.grade_batch(["x"], [{}], trainer_state=STATE)
    assert grade.sub_rewards == {"a": 0.5, "b": 0.5} and grade.reward == 1.0
    # an I/O-bound grader runs in a thread of its own per grade, a timeout puts any grader in one
    for config, timeout in (({"type": "curriculum", "name": "io", "io_bound": True}, None),
                            ({"type": "curriculum", "name": "timed"}, 30.0)):
        Curriculum.seen.clear()
        grades = build_grader(config).grade_batch(["x", "y"], [{}, {}], timeout=timeout, trainer_state=STATE)
        assert [grade.reward for grade in grades] == [0.5, 0.5]
        assert all(thread != threading.get_ident() for _, thread, _ in Curriculum.seen)


def test_trainer_state_accepts_trl_and_transformers_state_objects():
    from transformers import TrainerState

    from rft_plugins.graders.trainer_state import trainer_state

    state = TrainerState(global_step=4, epoch=0.75, max_steps=8)
    assert trainer_state(state) == {"global_step": 4, "epoch": 0.75, "max_steps": 8}
    assert trainer_state({"global_step": 2}) == {"global_step": 2, "epoch": 0.0, "max_steps": None}


def test_rft_train_gives_each_steps_grades_the_steps_done_before_it(tmp_path, tiny_model_path):
    """3 steps of 2 prompts x 2 samples over 4 rows (2 steps per epoch), validated every step."""
    from rft_plugins.training.run import train

    job = {
        "model": str(tiny_model_path), "training_file": "unused.jsonl",
        "method": {"type": "reinforcement", "reinforcement": {
            "grader": {"type": "curriculum", "name": "curriculum"},
            "hyperparameters": {"n_epochs": 2, "batch_size": 2, "eval_interval": 1}}},
        "trainer": {"num_generations": 2, "max_completion_length": 4, "max_steps": 3,
                    "output_dir": str(tmp_path / "run")},
    }
    rows = [{"messages": chat(f"train question {n}")} for n in range(4)]
    train(job, train_rows=rows, valid_rows=[{"messages": chat("valid question")}], progress_bar=False)
    train_states = states_seen("train")
    assert [state["global_step"] for state in train_states] == [0] * 4 + [1] * 4 + [2] * 4  # 4 samples a step
    assert [state["epoch"] for state in train_states[::4]] == [0.0, 0.5, 1.0]  # 2 steps per epoch
    assert {state["max_steps"] for state in train_states} == {3}
    valid_steps = [state["global_step"] for state in states_seen("valid")]
    assert valid_steps[-3:] == [1, 2, 3]  # after each step (and a baseline at step 0, when the job asks)
    rows = metric_rows(tmp_path / "run" / "metrics.csv")
    rewards = {int(row["step"]): float(row["train_reward_mean"]) for row in rows if row["train_reward_mean"]}
    assert rewards == pytest.approx({1: 0.0, 2: 1 / 3, 3: 2 / 3})  # what each step's grader saw


def test_trl_gives_graders_its_trainer_state(tiny_model_path, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rft_plugins.adapters.trl import reward_funcs

    config = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=4,
        max_steps=3, logging_steps=1, report_to=[], use_cpu=True, bf16=False, save_strategy="no", seed=0,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_path),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_path),
        reward_funcs=reward_funcs({"type": "curriculum", "name": "curriculum"}), args=config,
        train_dataset=Dataset.from_list([{"prompt": chat(f"train question {n}")} for n in range(4)]),
    )
    trainer.train()
    assert [state["global_step"] for state in states_seen()] == [0] * 4 + [1] * 4 + [2] * 4
    assert {state["max_steps"] for state in states_seen()} == {3}
    name = "rewards/curriculum/mean"
    rewards = [entry[name] for entry in trainer.state.log_history if name in entry]
    assert rewards == pytest.approx([0.0, 1 / 3, 2 / 3])
