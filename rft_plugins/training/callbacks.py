"""The Lightning pieces of ``rft train``: atomic checkpoint IO, the resume checkpoint, validating
the last step, and a progress bar that shows the reward (best checkpoints and early stopping:
``best_checkpoints.py``).

Lightning's own ``_atomic_save`` is not enough for checkpoints that must never be half-written:
fsspec stages the file in the system temp folder and *moves* it, which is a copy, not a rename,
when ``/tmp`` is another filesystem. ``AtomicCheckpointIO`` writes beside the target and renames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..atomic_files import atomic_write_bytes
from .checkpoints import LAST_CHECKPOINT
from .interrupts import StopRequests


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``torch.save`` checkpoint IO, writing to ``*.tmp`` and renaming into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        atomic_write_bytes(Path(path), lambda handle: torch.save(checkpoint, handle))


class ResumeCheckpoint(Callback):
    """Keeps ``last.ckpt`` (everything needed to resume exactly) up to date.

    Saved every ``every_n_steps`` optimisation steps and at the last step. A step followed by a
    validation (every ``validation_interval`` steps and the last, see ``ValidateFinalStep``) is
    saved after the validation instead, once: the checkpoint then holds the validation's results
    and ``BestCheckpoints``' history (early stopping), and a run killed mid-validation
    resumes from an earlier step and validates again rather than skipping it.

    The step's metrics row is written before its checkpoint (see ``_log_step_row``). When a stop
    signal arrived (``stop``), the step in progress is saved at this same moment and the run
    ends with ``RunInterrupted``.
    """

    def __init__(
        self, folder: Path, every_n_steps: int, validation_interval: int | None, stop: StopRequests | None = None
    ):
        self.path = Path(folder) / LAST_CHECKPOINT
        self.every_n_steps = every_n_steps
        self.validation_interval = validation_interval
        self.stop = stop

    def _validates_after(self, trainer: Trainer) -> bool:
        step = trainer.global_step
        interval = self.validation_interval
        return interval is not None and (step % interval == 0 or step >= trainer.max_steps)

    def _save(self, trainer: Trainer) -> None:
        for logger in trainer.loggers:  # the metrics files must reach the checkpoint's step too
            logger.save()
        trainer.save_checkpoint(self.path, weights_only=False)

    def _stop_requested(self) -> StopRequests | None:
        """The stop requests, when a stop signal has arrived; else None."""
        return self.stop if self.stop is not None and self.stop.requested else None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.stop is not None:
            self.stop.reclaim()  # Lightning's SIGTERM handler, installed by fit, would stop before our save
        if (stop := self._stop_requested()) is not None:  # a signal during start-up: nothing new to save
            raise stop.interrupted(trainer.global_step, trainer.max_steps, saved=False)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any) -> None:
        step = trainer.global_step
        due = step % self.every_n_steps == 0 or step >= trainer.max_steps or self._stop_requested() is not None
        if due and not self._validates_after(trainer):
            _log_step_row(trainer)
            self._save(trainer)
            if (stop := self._stop_requested()) is not None:
                raise stop.interrupted(step, trainer.max_steps, saved=True)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._save(trainer)
            if (stop := self._stop_requested()) is not None:
                raise stop.interrupted(trainer.global_step, trainer.max_steps, saved=True)


def _log_step_row(trainer: Trainer) -> None:
    """Write the step's metrics row now, before the checkpoint that follows it.

    Lightning logs a step's metrics only after every ``on_train_batch_end`` hook has run, so a run
    killed right after the checkpoint resumed past a step whose row was never written. Lightning
    writes the same row again just after; ``outputs.StepsCompleted`` loggers skip the repeat. (A
    private Lightning method: where it is missing, the row is written after the checkpoint, as
    before.)
    """
    update = getattr(getattr(trainer, "_logger_connector", None), "update_train_step_metrics", None)
    if callable(update):
        update()


class ValidateFinalStep(Callback):
    """Validates the model of the last step even when the step count is no multiple of the interval.

    The final model is the one people take away, so it is scored and competes for the best
    checkpoints. Lightning validates when a stop is requested (``_should_check_val_fx`` in its
    training epoch loop), through the same path as a scheduled validation: the metrics are logged
    at the last step, the ``rft_on_validation_end`` hooks fire and ``ResumeCheckpoint`` saves.
    """

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


class RewardProgressBar(TQDMProgressBar):
    """Lightning's bar with the step count and the latest train / valid reward in it."""

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        items["step"] = f"{trainer.global_step}/{trainer.max_steps}"
        for metric, label in (("train_reward_mean", "reward"), ("valid_reward_mean", "valid_reward")):
            items.pop(metric, None)
            value = trainer.callback_metrics.get(metric)
            if value is not None:
                items[label] = f"{float(value):.3f}"
        return items
