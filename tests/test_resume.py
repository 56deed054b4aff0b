"""Killed runs resume to the same final step; checkpoints are never half-written."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lightning
import pytest
import torch
import yaml
from train_jobs import RFT, chat, metric_rows, write_job as write_job_files

from rft_plugins.training.checkpoints import (
    atomic_directory,
    best_checkpoints,
    keep_best,
    remove_stale_temporaries,
)
from rft_plugins.training.loaders import train_loader
from rft_plugins.training.run import RunError, train

GRADER = {
    "type": "string_check",
    "name": "has_a",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.answer }}",
    "operation": "like",
}


def write_job(folder: Path, model: Path) -> Path:
    """6 prompts, 2 per step, 3 epochs capped at 8 steps; resume checkpoint every 2, validation every 4."""
    rows = [{"messages": chat(f"question {i}"), "answer": "a"} for i in range(6)]
    return write_job_files(
        folder, model, GRADER, rows, rows[:2], {"n_epochs": 3, "batch_size": 2, "eval_interval": 4},
        num_generations=2, max_completion_length=8, max_steps=8, save_steps=2, learning_rate=1e-3,
    )


def wait_for(condition, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended early with {process.returncode}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_a_run_killed_with_sigkill_resumes_to_the_same_final_step(tmp_path, tiny_model_path, caplog):
    import torch
    from transformers import AutoModelForCausalLM

    job = write_job(tmp_path, tiny_model_path)
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        [RFT, "train", str(job), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    # the same job, never interrupted: what the resumed run must reproduce
    reference = subprocess.Popen(
        [RFT, "train", str(job), "--no-progress", "--output-dir", str(tmp_path / "reference")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(last.exists, timeout=180, process=process)  # the first checkpoint: step 2 of 8
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_at = int(torch.load(last, map_location="cpu", weights_only=False)["global_step"])
    assert 2 <= killed_at < 8
    assert not (run / "final").exists() and not (run / "summary.json").exists()

    resumed = subprocess.run(
        [RFT, "train", str(job), "--resume", "--json", "--no-progress"], capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert summary["final_step"] == summary["total_steps"] == 8
    assert summary["resumed_from_step"] == killed_at

    assert not [path for path in run.rglob("*") if ".tmp" in path.name]
    assert int(torch.load(last, map_location="cpu", weights_only=False)["global_step"]) == 8
    for folder in [run / "final"] + [Path(info["path"]) for info in summary["best_checkpoints"]]:
        AutoModelForCausalLM.from_pretrained(folder)
    assert [info["step"] for info in best_checkpoints(run / "best")] != []
    rows = metric_rows(run / "metrics.csv")
    # every step logged exactly once, though steps after the checkpoint ran twice
    assert [int(row["step"]) for row in rows if row["train_reward_mean"]] == list(range(1, 9))
    assert [int(row["step"]) for row in rows if row["valid_reward_mean"]] == [0, 4, 8]  # the baseline not repeated

    # exact resume: the same prompts in the same order, the same samples drawn, the same updates
    assert reference.wait(timeout=240) == 0, reference.stderr.read()[-3000:]
    reference_run = tmp_path / "reference"
    reference_rows = metric_rows(reference_run / "metrics.csv")
    for column in ("train_reward_mean", "completion_length_mean", "loss", "valid_reward_mean"):
        resumed_values = {row["step"]: float(row[column]) for row in rows if row[column]}
        assert resumed_values == {row["step"]: float(row[column]) for row in reference_rows if row[column]}, column
    samples = (run / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3 * 2 and samples == (reference_run / "samples.jsonl").read_text().splitlines()  # steps 0, 4, 8
    final = AutoModelForCausalLM.from_pretrained(run / "final").state_dict()
    for name, value in AutoModelForCausalLM.from_pretrained(reference_run / "final").state_dict().items():
        assert torch.equal(final[name], value), name

    # resuming a finished run trains nothing and reports the same result (in process: no start-up cost)
    with caplog.at_level(logging.WARNING, logger="rft_plugins.training.run"):
        again = train(job, resume=True)
    assert again.final_step == 8 and again.to_dict() == summary
    assert "already finished" in caplog.text

    # resuming with a different job is refused, naming what changed
    data = yaml.safe_load(job.read_text())
    data["trainer"]["learning_rate"] = 5e-3
    job.write_text(yaml.safe_dump(data))
    with pytest.raises(RunError, match=r"the job differs from the run in .* \(trainer.learning_rate\)"):
        train(job, resume=True)


class DataOrder(lightning.LightningModule):
    """No model, just the ids of the rows each step trains on, from the loop's own training loader."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[int]] = []

    def train_dataloader(self):
        return train_loader([{"id": number} for number in range(6)], batch_size=2, seed=3, rank=0, world=1)

    def training_step(self, batch, batch_idx):
        self.seen.append([row["id"] for row in batch])
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward((self.weight - 1) ** 2)
        optimizer.step()

    def val_dataloader(self):
        return [0]

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD([self.weight], lr=0.1)


class SaveAt(lightning.Callback):
    """Saves a checkpoint at one step, after the batch or after that step's validation."""

    def __init__(self, path: Path, step: int, moment: str):
        self.path, self.step, self.moment = path, step, moment

    def on_train_batch_end(self, trainer, *args):
        if self.moment == "batch" and trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)

    def on_validation_end(self, trainer, module):
        if self.moment == "validation" and trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


def data_order_trainer(*callbacks) -> lightning.Trainer:
    return lightning.Trainer(
        max_steps=9, max_epochs=-1, val_check_interval=4, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=list(callbacks),
    )


@pytest.mark.parametrize(
    "step, moment",
    [(2, "batch"), (3, "batch"), (4, "validation"), (6, "batch"), (8, "validation")],
    ids=["mid-epoch", "epoch-end", "after-validation", "second-epoch-end", "third-epoch-validation"],
)
def test_a_resumed_run_trains_on_the_rows_an_uninterrupted_run_would(tmp_path, step, moment):
    """6 rows, 2 per step: epochs end at steps 3, 6, 9; validation every 4 steps. Resumed from a
    checkpoint at ``step``, Lightning restores the loader's place and the rest is the same."""
    uninterrupted = DataOrder()
    checkpoint = tmp_path / "at.ckpt"
    data_order_trainer(SaveAt(checkpoint, step, moment)).fit(uninterrupted)
    assert len(uninterrupted.seen) == 9
    assert sorted(sum(uninterrupted.seen[:3], [])) == list(range(6))  # an epoch covers every row once
    assert uninterrupted.seen[:3] != uninterrupted.seen[3:6]  # each epoch has its own order

    resumed = DataOrder()
    trainer = data_order_trainer()
    trainer.fit(resumed, ckpt_path=checkpoint)
    assert trainer.global_step == 9
    assert resumed.seen == uninterrupted.seen[step:]


WRITER = textwrap.dedent(
    """
    import sys, torch
    from rft_plugins.training.callbacks import AtomicCheckpointIO
    io, path = AtomicCheckpointIO(), sys.argv[1]
    for number in range(1, 10**6):
        io.save_checkpoint({"number": number, "weights": torch.full((2_000_000,), float(number))}, path)
        if number == 1:
            print("saved", flush=True)
    """
)


def test_a_checkpoint_killed_mid_write_is_the_old_one_or_the_new_one(tmp_path):
    import torch

    path = tmp_path / "last.ckpt"
    temporary = tmp_path / "last.ckpt.tmp"
    killed_mid_write = 0
    for _attempt in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "saved"
        deadline = time.monotonic() + 30
        while not temporary.exists() and time.monotonic() < deadline:  # kill while a write is under way,
            time.sleep(0.001)  # whatever the machine's load: a fixed delay can miss every write
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        checkpoint = torch.load(path, weights_only=False)  # never truncated, whatever moment the kill hit
        assert checkpoint["number"] >= 1
        assert torch.equal(checkpoint["weights"], torch.full((2_000_000,), float(checkpoint["number"])))
        leftovers = remove_stale_temporaries(tmp_path)
        assert all(leftover.name == "last.ckpt.tmp" for leftover in leftovers)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
        killed_mid_write += bool(leftovers)
        if killed_mid_write:
            break
    assert killed_mid_write, "no kill landed inside a write: the test proved nothing"


def save_marker(text: str):
    def save(folder: Path) -> None:
        (folder / "model.txt").write_text(text)

    return save


def test_keep_best_keeps_the_top_k_by_reward(tmp_path):
    best = tmp_path / "best"
    for step, reward in [(1, 0.2), (2, 0.5), (3, 0.1), (4, 0.5), (5, 0.9), (6, 0.05)]:
        keep_best(best, step, reward, save_marker(f"model {step}"), keep=3, metrics={"valid_reward_mean": reward})
    kept = best_checkpoints(best)
    assert [(info["step"], info["valid_reward_mean"]) for info in kept] == [(5, 0.9), (4, 0.5), (2, 0.5)]
    assert sorted(folder.name for folder in best.iterdir()) == ["step-000002", "step-000004", "step-000005"]
    assert (best / "step-000004" / "model.txt").read_text() == "model 4"
    assert json.loads((best / "step-000005" / "rft_checkpoint.json").read_text())["metrics"] == {"valid_reward_mean": 0.9}
    # a model that does not make the cut is never written
    assert keep_best(best, 7, 0.01, save_marker("model 7"), keep=3) is None
    assert not (best / "step-000007").exists()


def test_a_failed_save_leaves_no_folder(tmp_path):
    def failing(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"\0" * 10)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        keep_best(tmp_path / "best", 3, 0.7, failing, keep=3)
    assert list((tmp_path / "best").iterdir()) == []
    with atomic_directory(tmp_path / "final") as folder:
        (folder / "v").write_text("1")
    with atomic_directory(tmp_path / "final") as folder:  # replacing a finished folder
        (folder / "v").write_text("2")
    assert (tmp_path / "final" / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "final"]
