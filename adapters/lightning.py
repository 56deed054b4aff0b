"""``RFTCallback``: graders inside an existing Lightning pipeline.

Add it to any ``Trainer`` whose ``LightningModule`` holds a Hugging Face causal LM: at the end of
each validation epoch it samples answers to held-out prompts, grades them, and logs
``rft/<grader>_reward_mean`` (plus each ``multi`` sub-grader and the error rate), so a supervised
run can be watched — or checkpointed, or stopped early — by the same reward an RFT job uses.

>>> trainer = Trainer(callbacks=[RFTCallback(grader, items, tokenizer=tokenizer)])
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..extras import require_extra

require_extra("train", "rft_plugins.adapters.lightning")

import lightning.pytorch as pl  # after the check, which names the extra
import torch

from ..graders.build import build_grader
from ..graders.runner import LoadedGrader
from ..graders.types import Grade

Generate = Callable[[pl.LightningModule, list[list[dict[str, Any]]]], list[str]]


class RFTCallback(pl.Callback):
    """Grade the model's answers to ``items`` (OpenAI RFT rows: ``messages`` + reference keys).

    ``generate(pl_module, conversations) -> texts`` replaces the default sampler, which calls
    ``generate`` on ``pl_module.<model_attribute>`` with ``tokenizer``'s chat template. Under DDP
    each rank grades its share of the items and the logged means are averaged across ranks.
    """

    def __init__(
        self,
        grader: dict[str, Any] | LoadedGrader,
        items: Sequence[dict[str, Any]],
        tokenizer: Any = None,
        generate: Generate | None = None,
        model_attribute: str = "model",
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        do_sample: bool = False,
        every_n_epochs: int = 1,
        log_prefix: str = "rft",
        grader_timeout: float | None = 120.0,
    ):
        if generate is None and tokenizer is None:
            raise ValueError("RFTCallback needs a tokenizer (or a generate function)")
        self.grader = grader if isinstance(grader, LoadedGrader) else build_grader(grader)
        self.items = list(items)
        self.tokenizer = tokenizer
        self.generate = generate or self._generate_with_hf
        self.model_attribute = model_attribute
        self.generation = {"max_new_tokens": max_new_tokens, "temperature": temperature, "do_sample": do_sample}
        self.every_n_epochs = every_n_epochs
        self.log_prefix = log_prefix
        self.grader_timeout = grader_timeout
        self.history: list[dict[str, float]] = []
        self.last_samples: list[dict[str, Any]] = []

    @torch.no_grad()
    def _generate_with_hf(self, pl_module: pl.LightningModule, conversations: list[list[dict]]) -> list[str]:
        model = getattr(pl_module, self.model_attribute)
        tokenizer = self.tokenizer
        prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(pl_module.device)
        finally:
            tokenizer.padding_side = side
        output = model.generate(**batch, pad_token_id=tokenizer.pad_token_id, **self.generation)
        return tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)

    def _metrics(self, grades: list[Grade]) -> dict[str, float]:
        name = f"{self.log_prefix}/{self.grader.name}"
        rewards = [grade.reward for grade in grades if grade.reward is not None]
        metrics = {
            f"{name}_reward_mean": sum(rewards) / len(rewards) if rewards else 0.0,
            f"{name}_error_rate": sum(1 for grade in grades if grade.flagged) / len(grades),
        }
        for key in grades[0].sub_rewards:
            values = [grade.sub_rewards[key] for grade in grades if grade.sub_rewards.get(key) is not None]
            if values:
                metrics[f"{name}/{key}_reward_mean"] = sum(values) / len(values)
        return metrics

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Sample, grade and log; skipped during the sanity check and between ``every_n_epochs``."""
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return
        shard = self.items[trainer.global_rank :: trainer.world_size]
        if not shard:
            return
        was_training = pl_module.training
        pl_module.eval()
        try:
            texts = self.generate(pl_module, [item["messages"] for item in shard])
        finally:
            pl_module.train(was_training)
        grades = self.grader.grade_batch(texts, shard, timeout=self.grader_timeout)
        metrics = self._metrics(grades)
        for key, value in metrics.items():
            pl_module.log(key, value, sync_dist=trainer.world_size > 1, on_epoch=True)
        self.history.append({"step": trainer.global_step, "epoch": trainer.current_epoch, **metrics})
        self.last_samples = [
            {"messages": item["messages"], "completion": text, "reward": grade.reward, "errors": grade.flagged}
            for item, text, grade in zip(shard, texts, grades)
        ]

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.grader.close()
