"""The loop learns, survives a failing grader, fires its hooks and keeps a correct KL reference.

Everything runs a real ``lightning.Trainer`` on the tiny random model (CPU, seeded).
"""

from __future__ import annotations

import lightning
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from transformers import AutoModelForCausalLM

from rft_plugins import GradingError, hookimpl
from rft_plugins.training.module import RFTModule
from rft_plugins.training.settings import ResolvedSettings

CONTAINS_A = {"type": "string_check", "name": "has_a", "input": "{{ sample.output_text }}", "reference": "a", "operation": "like"}
WORDS = ["hello", "say something", "x", "abc", "query", "zz", "tell me", "more"]
ROWS = [{"messages": [{"role": "user", "content": word}], "id": number} for number, word in enumerate(WORDS)]


class StepMetrics(Callback):
    """Keeps every training step's logged metrics."""

    def __init__(self):
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, *args):
        self.steps.append({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})


def make_trainer(max_steps: int, *callbacks, **kwargs) -> lightning.Trainer:
    options = dict(
        max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return lightning.Trainer(callbacks=list(callbacks), **options)


def test_reward_rises_on_an_easy_task(tiny_model_path):
    """'Answer with a letter a somewhere': a random model does it in ~8% of 4-token answers."""
    lightning.seed_everything(0, verbose=False)
    settings = ResolvedSettings(
        model=str(tiny_model_path), grader=CONTAINS_A, batch_size=4, num_generations=8, eval_samples=4,
        max_completion_length=4, learning_rate=5e-3, loss_type="dapo", seed=0,
    )
    module = RFTModule(settings, ROWS, ROWS)
    before = make_trainer(1, limit_val_batches=1.0).validate(module, verbose=False)[0]["valid_reward_mean"]
    steps = StepMetrics()
    make_trainer(30, steps).fit(module)
    after = make_trainer(1).validate(module, verbose=False)[0]["valid_reward_mean"]

    rewards = [step["train_reward_mean"] for step in steps.steps]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    print(f"valid reward {before:.2f} -> {after:.2f}; train reward first 5 steps {first:.2f}, last 5 {last:.2f}")
    assert before < 0.3 and first < 0.3
    assert last > first + 0.35
    assert after > before + 0.35


class FlakyGrader:
    """Raises on rows with an odd id (a crash), grades the others: 1 if the answer has an 'a'."""

    def __init__(self, config):
        self.name = config["name"]

    def grade(self, sample, item):
        if item["id"] % 2:
            raise RuntimeError("grader crashed")
        if item["id"] == 2:
            raise GradingError("invalid_variable_error", "no such field")
        return 1.0 if "a" in sample.output_text else 0.0


class Recorder:
    """A plugin that registers the flaky grader and records lifecycle hooks."""

    def __init__(self):
        self.started: list = []
        self.validations: list[dict] = []

    @hookimpl
    def rft_register_graders(self, register):
        register("flaky", FlakyGrader)

    @hookimpl
    def rft_on_train_start(self, job, settings, module):
        self.started.append((job, settings, module))

    @hookimpl
    def rft_on_validation_end(self, step, metrics, samples, module):
        self.validations.append({"step": step, "metrics": metrics, "samples": samples})


def test_failing_grader_costs_samples_not_the_run(fresh_plugins, tiny_model_path):
    recorder = Recorder()
    fresh_plugins.get_plugin_manager().register(recorder, name="recorder")
    lightning.seed_everything(1, verbose=False)
    settings = ResolvedSettings(
        model=str(tiny_model_path), grader={"type": "flaky", "name": "flaky"}, batch_size=4,
        num_generations=2, eval_samples=2, max_completion_length=3, learning_rate=1e-3,
    )
    module = RFTModule(settings, ROWS, ROWS)
    steps = StepMetrics()
    trainer = make_trainer(4, steps, val_check_interval=2, check_val_every_n_epoch=None)
    trainer.fit(module)

    assert trainer.global_step == 4 and len(steps.steps) == 4
    rates = [step["train/other_error_rate"] for step in steps.steps]
    assert sum(rates) > 0 and all(0 <= rate < 1 for rate in rates)
    # per step: the share of that batch's rows with an odd id (2 samples each)
    assert all(rate * 8 == int(rate * 8) for rate in rates)
    # validation sees every row: ids 1, 3, 5, 7 crash (other_error), id 2 is flagged invalid_variable
    assert [v["step"] for v in recorder.validations] == [2, 4]
    last = recorder.validations[-1]["metrics"]
    assert last["valid/other_error_rate"] == pytest.approx(0.5)
    assert last["valid/invalid_variable_error_rate"] == pytest.approx(1 / 8)
    assert trainer.callback_metrics["valid/other_error_rate"].item() == pytest.approx(0.5)
    scored = [s["reward"] for s in recorder.validations[-1]["samples"]]
    assert len(scored) == 16
    crashed = [s for s in recorder.validations[-1]["samples"] if "other_error" in s["errors"]]
    assert len(crashed) == 8 and all(s["reward"] == 0.0 for s in crashed)
    assert "grader crashed" in crashed[0]["errors"]["other_error_details"]
    # the hooks saw the settings and the module; the samples table keeps every validation
    assert recorder.started == [(None, settings, module)]  # a module built from settings alone: no job
    assert len(module.validation_records) == 32
    assert {"step", "prompt", "completion", "reward", "sub_rewards", "errors"} <= set(module.validation_records[0])


@pytest.mark.parametrize("use_lora", [True, False])
def test_kl_reference_and_several_iterations(tiny_model_path, use_lora):
    """beta > 0 with 2 iterations per rollout: KL grows from 0 and the reference stays the base
    model (with LoRA: the adapter switched off, no second copy)."""
    from rft_plugins.training.job import LoraSettings

    lightning.seed_everything(2, verbose=False)
    settings = ResolvedSettings(
        model=str(tiny_model_path), grader=CONTAINS_A, batch_size=4, num_generations=4, max_completion_length=4,
        learning_rate=2e-2, beta=0.1, num_iterations=2, loss_type="grpo",
        lora=LoraSettings(r=4, lora_alpha=8) if use_lora else None,
    )
    module = RFTModule(settings, ROWS, [])
    assert (module.step.reference is None) == use_lora
    steps = StepMetrics()
    trainer = make_trainer(3, steps, limit_val_batches=0)
    trainer.fit(module)
    assert trainer.global_step == 3
    kls = [step["kl"] for step in steps.steps]
    assert kls[-1] > 0 and kls[-1] > kls[0]
    assert any(step["clip_ratio"] > 0 for step in steps.steps)  # the second pass moves off-policy

    # the reference log-probs are those of the untouched base model
    step = module.step
    sample = step.sample(module.model, ROWS[:2], 2, module.device)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    with torch.no_grad():
        expected = step.logprobs(base, sample)
        trained = step.logprobs(module.model.eval(), sample)
    torch.testing.assert_close(step.reference_logprobs(module.model, sample), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(trained, expected, atol=1e-3)


def test_batches_are_shuffled_by_seed_and_rows_are_checked(tiny_model_path):
    def order(seed: int) -> list[list[int]]:
        settings = ResolvedSettings(model=str(tiny_model_path), grader=CONTAINS_A, batch_size=3, seed=seed)
        loader = RFTModule(settings, ROWS, []).train_dataloader()
        return [[row["id"] for row in batch] for batch in loader]

    first = order(7)
    assert [len(batch) for batch in first] == [3, 3, 2]  # batch_size prompts per step, the rest last
    assert sorted(i for batch in first for i in batch) == list(range(8))
    assert order(7) == first and order(8) != first
    bad = [{"messages": [{"role": "assistant", "content": "hi"}]}]
    with pytest.raises(ValueError, match=r"training row 1: messages\[0\]\.role: the last message must be from the user"):
        RFTModule(ResolvedSettings(model=str(tiny_model_path), grader=CONTAINS_A), bad, [])


def test_grading_runs_while_the_caller_works():
    """``submit`` returns at once; the grader finishes only after the caller did its own work."""
    import threading

    from rft_plugins.graders.runner import LoadedGrader
    from rft_plugins.training.grading import BackgroundGrader

    caller_done = threading.Event()

    class WaitsForTheCaller:
        io_bound = True

        def grade(self, sample, item):
            return 1.0 if caller_done.wait(5) else 0.0  # a blocking submit would give 0 after 5 s

    background = BackgroundGrader(LoadedGrader({"type": "w", "name": "w"}, WaitsForTheCaller(), "test"), timeout=10)
    try:
        pending = background.submit(["a", "b"], [{}, {}])
        assert not pending.done()
        caller_done.set()  # stands for the model work the loop does meanwhile
        graded = pending.result(timeout=5)
        assert [grade.reward for grade in graded.grades] == [1.0, 1.0]
        assert graded.seconds < 5
    finally:
        background.close()


class CountedGrader:
    """A grader that counts how many times it was built."""

    built = 0

    def __init__(self, config: dict):
        CountedGrader.built += 1

    def grade(self, sample, item) -> float:
        return 1.0


class CountedGraderPlugin:
    @hookimpl
    def rft_register_graders(self, register):
        register("counted", CountedGrader)


def test_the_run_grades_with_the_grader_the_job_check_built(fresh_plugins, tiny_model_path):
    from rft_plugins.training.job import job_from_dict, resolve

    fresh_plugins.get_plugin_manager().register(CountedGraderPlugin(), name="counted")
    CountedGrader.built = 0
    job = job_from_dict({
        "model": str(tiny_model_path), "training_file": "rows",
        "method": {"type": "reinforcement", "reinforcement": {"grader": {"type": "counted", "name": "c"}}},
    }, check_files=False)
    assert CountedGrader.built == 1  # the check built it
    module = RFTModule(resolve(job, len(ROWS)), ROWS, ROWS, job=job)
    assert CountedGrader.built == 1 and isinstance(module.loaded_grader.impl, CountedGrader)
    RFTModule(resolve(job, len(ROWS)), ROWS, ROWS, job=job)  # handed over once: a second run builds its own
    assert CountedGrader.built == 2
