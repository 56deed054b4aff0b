"""``events.jsonl`` under a real Lightning ``Trainer``: one line per step, the validation merged
into its step's line, and a resumed run keeping each step once.

The module is the smallest one that logs the metric names the RFT loop logs (a linear layer with
fixed values), so the file's lines can be checked against known numbers; the RFT guide's job in
``test_openai_rft_job`` checks the same file on a real run. Shape: the RFT guide's "Training
metrics" appendix (https://developers.openai.com/api/docs/guides/reinforcement-fine-tuning).
"""

from __future__ import annotations

import json

import lightning
import pytest
import torch
from torch.utils.data import DataLoader

from rft_plugins.training.events import OpenAIEvents, metrics_event

GRADER = {"type": "multi", "calculate_output": "a", "graders": {
    "a": {"type": "string_check", "input": "x", "reference": "x", "operation": "eq"},
    "b": {"type": "python", "source": "def grade(sample, item):\n    return 1.0\n"}}}


class LogsLikeTheLoop(lightning.LightningModule):
    """Logs, at step n, train reward n/10 and an other_error rate of 0.25 over 8 samples."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        step = self.global_step + 1
        self.log_dict({"train_reward_mean": step / 10, "train/multi_reward_mean": step / 10,
                       "train/a_reward_mean": 1.0, "train/b_reward_mean": 0.5, "train/other_error_rate": 0.25,
                       "train/graded_samples": 8.0, "timing/sampling_s": 0.5, "timing/training_s": 0.25,
                       "timing/full_iteration_s": 1.0, "completion_length_mean": 12.0}, on_step=True)
        return self.layer(batch).sum()

    def validation_step(self, batch, batch_idx):
        self.log_dict({"valid_reward_mean": 0.75, "valid/a_reward_mean": 0.5, "valid/sample_parse_error_rate": 0.5,
                       "valid/graded_samples": 2.0})

    def train_dataloader(self):
        return DataLoader(torch.ones(64, 1), batch_size=1)

    def val_dataloader(self):
        return DataLoader(torch.ones(2, 1), batch_size=2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(folder, max_steps: int, checkpoint=None) -> lightning.Trainer:
    trainer = lightning.Trainer(
        max_steps=max_steps, val_check_interval=2, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        callbacks=[OpenAIEvents(folder / "events.jsonl", GRADER)], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )
    trainer.fit(LogsLikeTheLoop(), ckpt_path=checkpoint)
    return trainer


def read(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def test_one_line_per_step_with_its_validation(tmp_path):
    fit(tmp_path, max_steps=3)
    events = read(tmp_path)
    assert [event["data"]["step"] for event in events] == [1, 2, 3]
    second = events[1]["data"]
    assert second["scores"]["train_reward_mean"] == pytest.approx(0.2)
    assert second["scores"]["valid_reward_mean"] == 0.75 and second["full_valid_mean_reward"] == 0.75
    assert second["full_valid_mean_parse_error"] == 0.5
    assert [(g["name"], g["type"], g.get("valid_reward_mean")) for g in second["scores"]["graders"]] == [
        ("a", "string_check", 0.5), ("b", "python", None)]
    (errors,) = second["errors"]["graders"]
    assert (errors["train_other_error_mean"], errors["train_other_error_count"]) == (0.25, 2.0)
    assert (errors["valid_sample_parse_error_mean"], errors["valid_sample_parse_error_count"]) == (0.5, 1.0)
    timing = second["timing"]["step"]
    assert (timing["sampling"], timing["training"]) == (0.5, 0.25)
    assert timing["eval"] > 0 and timing["full_iteration"] == pytest.approx(1.0 + timing["eval"])
    first = events[0]["data"]  # no validation after step 1
    assert "valid_reward_mean" not in first["scores"] and first["timing"]["step"]["eval"] == 0.0
    assert events[0]["message"] == "Step 1/3, train mean reward=0.10"
    assert events[1]["message"].endswith("full validation mean reward=0.75, full validation mean parse error=0.50")


def test_a_resumed_run_keeps_each_step_once(tmp_path):
    trainer = fit(tmp_path, max_steps=2)
    trainer.save_checkpoint(tmp_path / "step2.ckpt")
    stale = metrics_event(3, 4, {"train_reward_mean": 9.0}, None, GRADER)  # written, then killed before its checkpoint
    with (tmp_path / "events.jsonl").open("a") as handle:
        handle.write(json.dumps(stale) + "\n")
    fit(tmp_path, max_steps=4, checkpoint=tmp_path / "step2.ckpt")
    events = read(tmp_path)
    assert [event["data"]["step"] for event in events] == [1, 2, 3, 4]
    assert events[2]["data"]["train_mean_reward"] == pytest.approx(0.3)  # the resumed run's, not the stale line
