"""``BestCheckpoints``: after each validation of ``rft train``, keep the best models and stop early.

The model is saved as a Hugging Face folder (``best/step-N``, with its model card) if it ranks in
the ``trainer.save_top_k`` best by ``valid_reward_mean`` (OpenAI keeps 3), and training stops once
``trainer.early_stopping_patience`` validations in a row brought no gain. The validation history
that patience counts lives in the callback and travels in Lightning's checkpoint through
``state_dict``, so a resumed run stops where the uninterrupted one would; the ranking of the kept
models is read back from their folders (``checkpoints.keep_best``).

One class for both backends: the Lightning loop adds it to its ``Trainer`` (it acts in
``on_validation_end``, after the ``rft_on_validation_end`` hooks and before ``ResumeCheckpoint``
saves); the TRL backend calls ``record`` from its own callback and keeps ``state_dict`` in its
checkpoint folders.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, cast

from lightning.pytorch import Callback, LightningModule, Trainer

from .checkpoints import best_folder, keep_best

if TYPE_CHECKING:
    from .module import RFTModule

logger = logging.getLogger(__name__)

#: writes the model card into a best checkpoint folder: ``(folder, step, reward, destination)``
ModelCardWriter = Callable[[Path, int, float, Path], None]


@dataclass(frozen=True)
class ValidationResult:
    """One validation's outcome, as ``rft_on_validation_end`` receives it."""

    step: int
    metrics: dict[str, float]
    samples: list[dict[str, Any]] = field(default_factory=list)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def validations_without_gain(history: list[dict[str, Any]]) -> int:
    """How many validations since the best ``valid_reward_mean`` (0 when the latest is the best)."""
    best_index = max(range(len(history)), key=lambda i: (history[i]["valid_reward_mean"], -i))
    return len(history) - 1 - best_index


class BestCheckpoints(Callback):
    """Keeps the ``save_top_k`` best models in ``best_dir`` and stops after ``early_stopping_patience``
    validations without gain (None: never); ``model_card`` writes each kept folder's card."""

    def __init__(
        self, best_dir: Path, save_top_k: int, early_stopping_patience: int | None,
        model_card: ModelCardWriter | None = None,
    ):
        self.best_dir = Path(best_dir)
        self.save_top_k = save_top_k
        self.early_stopping_patience = early_stopping_patience
        self.model_card = model_card
        self.history: list[dict[str, Any]] = []  # {"step", "valid_reward_mean"} per validation
        self.stopped_early = False

    @property
    def state_key(self) -> str:
        # the key of this state in Lightning checkpoints, as the callback that held it was named
        # before (``RunState``): runs checkpointed by earlier versions resume with their history
        return "RunState"

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(entry) for entry in self.history], "stopped_early": self.stopped_early}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(entry) for entry in state_dict.get("history", [])]
        self.stopped_early = bool(state_dict.get("stopped_early", False))

    def record(self, step: int, metrics: Mapping[str, Any], save_model: Callable[[Path], None], writer: bool) -> bool:
        """Rank validation ``step`` (saving the model with ``save_model`` if it makes the cut, when
        this process is the ``writer``); True when training should stop."""
        reward = _number(metrics.get("valid_reward_mean"))
        if reward is None:
            return False  # every validation sample was "not applicable": nothing to rank
        step = int(step)
        self.history = [entry for entry in self.history if entry["step"] != step]
        self.history.append({"step": step, "valid_reward_mean": reward})
        if writer:  # every process has the same model: one writes it
            numbers = {name: number for name, number in ((n, _number(v)) for n, v in metrics.items())
                       if number is not None}
            self._save_if_best(step, reward, numbers, save_model)
        return self._stalled()

    def _save_if_best(self, step: int, reward: float, metrics: dict[str, float],
                      save_model: Callable[[Path], None]) -> None:
        card = self.model_card

        def save(folder: Path) -> None:
            save_model(folder)
            if card is not None:
                card(folder, step, reward, best_folder(self.best_dir, step))

        saved = keep_best(self.best_dir, step, reward, save, self.save_top_k, metrics)
        if saved is not None:
            logger.info("step %d: valid_reward_mean %.4f, saved %s", step, reward, saved)

    def _stalled(self) -> bool:
        patience = self.early_stopping_patience
        if patience is None or len(self.history) <= patience:
            return False
        if validations_without_gain(self.history) >= patience:
            logger.info("early stopping: no better valid_reward_mean in %d validations", patience)
            self.stopped_early = True
            return True
        return False

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Rank the validation the module just finished: ``RFTModule.last_validation`` (None after
        a sanity check or when no sample could be scored; a module without one is left alone)."""
        validation = getattr(pl_module, "last_validation", None)
        if not isinstance(validation, ValidationResult):
            return
        module = cast("RFTModule", pl_module)

        def save_model(folder: Path) -> None:
            module.save_hf(str(folder))

        if self.record(validation.step, validation.metrics, save_model, trainer.is_global_zero):
            trainer.should_stop = True
