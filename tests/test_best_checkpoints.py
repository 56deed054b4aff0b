"""``BestCheckpoints``: the best models kept, early stopping, and both carried over a resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from train_jobs import chat, write_job

from rft_plugins import hookimpl
from rft_plugins.training.best_checkpoints import BestCheckpoints
from rft_plugins.training.checkpoints import CHECKPOINT_INFO, best_checkpoints
from rft_plugins.training.interrupts import RunInterrupted
from rft_plugins.training.run import train

#: every sample gets 1: no validation after the first brings a gain
ALWAYS_ONE = {"type": "string_check", "name": "always", "input": "x", "reference": "x", "operation": "eq"}


def saver(folder: Path) -> None:
    (Path(folder) / "model.txt").write_text("a model")


def test_the_history_and_the_early_stop_go_through_state_dict(tmp_path):
    best = BestCheckpoints(tmp_path / "best", save_top_k=2, early_stopping_patience=2)
    assert best.record(1, {"valid_reward_mean": 0.5}, saver, writer=True) is False
    assert best.record(2, {"valid_reward_mean": 0.25, "valid/other": "n/a"}, saver, writer=True) is False
    state = json.loads(json.dumps(best.state_dict()))  # plain data: the TRL backend keeps it as JSON

    resumed = BestCheckpoints(tmp_path / "best", save_top_k=2, early_stopping_patience=2)
    resumed.load_state_dict(state)
    assert resumed.history == best.history and not resumed.stopped_early
    assert resumed.record(3, {"valid_reward_mean": 0.4}, saver, writer=True) is True  # 2 without gain since step 1
    assert resumed.stopped_early and resumed.state_dict()["stopped_early"] is True
    # the best 2 by reward, read back from their folders; the losers were never written or were removed
    assert [(info["step"], info["valid_reward_mean"]) for info in best_checkpoints(tmp_path / "best")] == [
        (1, 0.5), (3, 0.4)
    ]
    assert json.loads((tmp_path / "best" / "step-000003" / CHECKPOINT_INFO).read_text())["metrics"] == {
        "valid_reward_mean": 0.4
    }


def test_a_validation_without_a_score_and_a_process_that_does_not_write(tmp_path):
    best = BestCheckpoints(tmp_path / "best", save_top_k=3, early_stopping_patience=None)
    assert best.record(1, {"valid_reward_mean": float("nan")}, saver, writer=True) is False
    assert best.record(2, {"valid_reward_mean": 0.5}, saver, writer=False) is False
    assert best.history == [{"step": 2, "valid_reward_mean": 0.5}] and not (tmp_path / "best").exists()


class StopSignalAfterValidation:
    """Sends this process SIGTERM after the validation of ``step``: the run checkpoints and stops."""

    def __init__(self, step: int):
        self.step = step

    @hookimpl
    def rft_on_validation_end(self, step):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def early_stopping_job(tmp_path: Path, model: Path) -> Path:
    """3 steps an epoch, validated after each, 6 steps at most; patience 2."""
    rows = [{"messages": chat(f"question {i}")} for i in range(6)]
    return write_job(
        tmp_path, model, ALWAYS_ONE, rows, rows[:2], {"batch_size": 2, "eval_interval": 1, "n_epochs": 2},
        num_generations=2, max_completion_length=4, early_stopping_patience=2, eval_on_start=False, save_steps=1000,
    )


def test_a_stopped_and_resumed_run_keeps_counting_the_patience(tmp_path, tiny_model_path, fresh_plugins):
    job = early_stopping_job(tmp_path, tiny_model_path)
    run = tmp_path / "run"
    manager = fresh_plugins.get_plugin_manager()
    stopper = StopSignalAfterValidation(2)
    manager.register(stopper, name="stopper")
    swallow = signal.signal(signal.SIGTERM, lambda *_: None)  # were the run not listening, ignore it
    try:
        with pytest.raises(RunInterrupted):
            train(job, progress_bar=False)
    finally:
        signal.signal(signal.SIGTERM, swallow)
        manager.unregister(stopper)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 2
    assert [entry["step"] for entry in checkpoint["callbacks"]["RunState"]["history"]] == [1, 2]

    result = train(job, resume=True, progress_bar=False)
    # validations 2 and 3 brought no gain over 1: the patience of 2 counts across the restart
    # (a resumed run that forgot the history would stop only at step 5)
    assert result.resumed_from_step == 2
    assert result.stopped_early and result.final_step == 3 and result.total_steps == 6
    assert [info["step"] for info in result.best_checkpoints] == [3, 2, 1]  # a tie ranks the later step first
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_early"] is True
    assert (run / "best" / "step-000001" / "README.md").is_file()  # each with its model card


def test_rft_disable_plugins_turns_best_checkpoints_and_early_stopping_off(
    tmp_path, tiny_model_path, fresh_plugins, monkeypatch
):
    """The name the behaviour had as a built-in plugin still blocks it (enabled, this run would
    report an early stop at step 3: two validations without gain)."""
    monkeypatch.setenv("RFT_DISABLE_PLUGINS", "rft_plugins.default_plugins.validation_callbacks")
    result = train(early_stopping_job(tmp_path, tiny_model_path), max_steps=3, progress_bar=False)
    assert result.final_step == 3 and not result.stopped_early
    assert result.best_checkpoints == [] and not (tmp_path / "run" / "best").exists()
