"""Built-in ``rft_on_validation_end`` plugin of ``rft train``: keep the best models, stop early.

After each validation: the model is saved as a Hugging Face folder if it is among the
``trainer.save_top_k`` best by ``valid_reward_mean`` (OpenAI keeps 3), and training stops once
``trainer.early_stopping_patience`` validations in a row brought no gain. Both act only inside an
``rft train`` run (a module carrying ``rft_run``); block the plugin with
``RFT_DISABLE_PLUGINS=rft_plugins.default_plugins.validation_callbacks``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..project import hookimpl

logger = logging.getLogger(__name__)


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


def save_if_best(run: Any, step: int, reward: float, metrics: dict[str, float], module: Any) -> None:
    """Keep the model (with its model card) in ``run.best_dir`` if it ranks in the best ``run.save_top_k``."""
    from ..training.checkpoints import best_folder, keep_best  # the train extra: only when a run validates

    card = getattr(run, "model_card", None)

    def save(folder: Any) -> None:
        module.save_hf(folder)
        if card is not None:
            card(folder, step, reward, best_folder(run.best_dir, step))

    saved = keep_best(run.best_dir, step, reward, save, run.save_top_k, metrics)
    if saved is not None:
        logger.info("step %d: valid_reward_mean %.4f, saved %s", step, reward, saved)


def stop_if_stalled(run: Any, module: Any) -> None:
    """Ask Lightning to stop once ``run.early_stopping_patience`` validations brought no gain."""
    patience = run.early_stopping_patience
    if patience is None or len(run.history) <= patience:
        return
    if validations_without_gain(run.history) >= patience:
        logger.info("early stopping: no better valid_reward_mean in %d validations", patience)
        run.stopped_early = True
        module.trainer.should_stop = True


@hookimpl
def rft_on_validation_end(step: int, metrics: dict, module: Any) -> None:
    run = getattr(module, "rft_run", None)
    if run is None:
        return  # not an `rft train` run (e.g. the Lightning adapter): nothing to keep or stop
    reward = _number(metrics.get("valid_reward_mean"))
    if reward is None:
        return  # every validation sample was "not applicable": nothing to rank
    numbers = {name: value for name, value in ((n, _number(v)) for n, v in metrics.items()) if value is not None}
    run.history = [entry for entry in run.history if entry["step"] != step]
    run.history.append({"step": int(step), "valid_reward_mean": reward})
    if module.trainer.is_global_zero:  # every process has the same model: one writes it
        save_if_best(run, int(step), reward, numbers, module)
    stop_if_stalled(run, module)
