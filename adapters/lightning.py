"""``RFTCallback``: graders, and RFT itself, inside an existing Lightning pipeline.

Add it to any ``Trainer`` whose ``LightningModule`` holds a Hugging Face causal LM: at the end of
each validation epoch it samples answers to held-out prompts, grades them, and logs
``rft/<grader>_reward_mean`` (plus each ``multi`` sub-grader and the error rate), so a supervised
run can be watched — or checkpointed, or stopped early — by the same reward an RFT job uses.

With ``train=True`` it also trains: from ``start_epoch`` on, every ``every_n_steps`` training
batches (or after each epoch) it runs GRPO steps on ``train_rows`` with the loop's own sampler,
graders, reward shapers and loss (``rft_plugins.training.step.PolicyStep``, what ``rft train``
runs), updating the module's model with its own optimiser (or the module's). A supervised run
becomes supervised-then-RFT in one ``Trainer.fit``. Its state (steps taken, place in the data,
optimiser, history, random state) is in Lightning's checkpoints, so a resumed run continues it.

>>> trainer = Trainer(callbacks=[RFTCallback(grader, items, tokenizer=tokenizer)])
>>> trainer = Trainer(callbacks=[RFTCallback(grader, items, tokenizer=tokenizer, train=True,
...                                          train_rows=rows, start_epoch=1, every_n_steps=1)])
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..extras import require_extra

require_extra("train", "rft_plugins.adapters.lightning")

import lightning.pytorch as pl  # after the check, which names the extra
import torch

from ..data.rows import validate_row
from ..graders.build import build_grader
from ..graders.metrics import ScoredSample, summarize
from ..graders.runner import LoadedGrader
from ..graders.types import Grade
from ..training.grading import lightning_trainer_state

Generate = Callable[[pl.LightningModule, list[list[dict[str, Any]]]], list[str]]


class _PlainUpdater:
    """The callback's ``Updater``: plain backward passes, the norm clipped, its own optimiser."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_grad_norm: float | None):
        self.optimizer, self.max_grad_norm = optimizer, max_grad_norm
        self.grad_norm = 0.0

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        loss.backward()
        collect = getattr(self.optimizer, "collect_grads", None)
        if callable(collect):
            collect()

    def step(self, counted: bool) -> None:
        parameters = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if parameters:
            self.grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm or float("inf")))
        self.optimizer.step()


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
        train: bool = False,
        train_rows: Sequence[dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
        start_epoch: int = 0,
        every_n_steps: int | None = None,
        steps_per_epoch: int = 1,
        optimizer: str = "own",
    ):
        if generate is None and tokenizer is None:
            raise ValueError("RFTCallback needs a tokenizer (or a generate function)")
        if train and (tokenizer is None or not train_rows):
            raise ValueError("RFTCallback(train=True) needs a tokenizer and train_rows (OpenAI RFT rows)")
        if optimizer not in ("own", "module"):
            raise ValueError(f"optimizer is 'own' (AdamW at settings' learning_rate) or 'module', not {optimizer!r}")
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
        self.train = train
        self.train_rows = [validate_row(row, f"train_rows[{n}]") for n, row in enumerate(train_rows or [])]
        self.settings_options = dict(settings or {})
        self.start_epoch, self.every_n_steps, self.steps_per_epoch = start_epoch, every_n_steps, steps_per_epoch
        self.optimizer_choice = optimizer
        self.rft_steps = 0  # GRPO steps taken
        self.rows_served = 0  # place in the shuffled training rows (epochs run on)
        self._step: Any = None  # the PolicyStep, its grading thread and optimiser: built on first use
        self._grading: Any = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._pending_optimizer_state: dict[str, Any] | None = None

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
        summary = summarize([ScoredSample.from_grade(grade) for grade in grades])
        metrics = {f"{name}_reward_mean": summary.reward_mean or 0.0, f"{name}_error_rate": summary.error_rate}
        for key, mean in summary.sub_reward_means.items():
            if mean is not None:
                metrics[f"{name}/{key}_reward_mean"] = mean
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
        grades = self.grader.grade_batch(texts, shard, timeout=self.grader_timeout,
                                         trainer_state=lightning_trainer_state(trainer))
        metrics = self._metrics(grades)
        for key, value in metrics.items():
            pl_module.log(key, value, sync_dist=trainer.world_size > 1, on_epoch=True)
        self.history.append({"step": trainer.global_step, "epoch": trainer.current_epoch, **metrics})
        self.last_samples = [
            {"messages": item["messages"], "completion": text, "reward": grade.reward, "errors": grade.flagged}
            for item, text, grade in zip(shard, texts, grades)
        ]

    # ---------------------------------------------------------------------------- training
    @property
    def best_reward(self) -> float | None:
        """The best held-out reward seen so far."""
        key = f"{self.log_prefix}/{self.grader.name}_reward_mean"
        rewards = [entry[key] for entry in self.history if key in entry]
        return max(rewards) if rewards else None

    def _settings(self) -> Any:
        from ..training.settings import ResolvedSettings

        options = {"batch_size": 4, "num_generations": 4, "max_completion_length": self.generation["max_new_tokens"],
                   **self.settings_options}
        return ResolvedSettings(model="<the module's model>", grader=dict(self.grader.config), **options)

    def _setup_training(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from ..training.grading import BackgroundGrader
        from ..training.optim import MasterWeightAdamW
        from ..training.step import PolicyStep

        if trainer.world_size > 1:
            raise RuntimeError("RFTCallback(train=True) trains in one process; for data parallelism use rft train")
        settings = self._settings()
        model = getattr(pl_module, self.model_attribute)
        self._step = PolicyStep(settings, self.tokenizer, model)
        self._grading = BackgroundGrader(self.grader, settings.grader_concurrency, settings.grader_timeout)
        if self.optimizer_choice == "module":
            self._optimizer = trainer.optimizers[0]
        else:
            trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
            self._optimizer = MasterWeightAdamW(
                trainable, master_weights=settings.master_weights, lr=settings.learning_rate,
                weight_decay=settings.weight_decay,
            )
            if self._pending_optimizer_state is not None:
                self._optimizer.load_state_dict(self._pending_optimizer_state)
                self._pending_optimizer_state = None

    def _next_rows(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` training rows, each pass over them shuffled by the seed and the pass."""
        import random

        settings = self._step.settings
        rows: list[dict[str, Any]] = []
        while len(rows) < count:
            epoch, position = divmod(self.rows_served, len(self.train_rows))
            order = list(range(len(self.train_rows)))
            random.Random(settings.seed + epoch).shuffle(order)
            rows.append(self.train_rows[order[position]])
            self.rows_served += 1
        return rows

    def _train_steps(self, trainer: pl.Trainer, pl_module: pl.LightningModule, count: int) -> None:
        """``count`` GRPO steps on the module's model, logged as ``rft/train_*``."""
        from ..graders.metrics import reward_metrics

        if self._step is None:
            self._setup_training(trainer, pl_module)
        model = getattr(pl_module, self.model_attribute)
        assert self._optimizer is not None  # _setup_training sets it
        updater = _PlainUpdater(self._optimizer, self._step.settings.max_grad_norm)
        was_training = model.training
        model.train()
        try:
            for _ in range(count):
                rows = self._next_rows(self._step.settings.batch_size)
                report = self._step.run(model, rows, self._grading, updater, pl_module.device,
                                        lightning_trainer_state(trainer))
                self.rft_steps += 1
                metrics = reward_metrics(report.scored, "train", self.grader.name)
                logged = {f"{self.log_prefix}/train_reward_mean": metrics["train_reward_mean"],
                          f"{self.log_prefix}/loss": float(torch.stack(report.losses).mean()),
                          f"{self.log_prefix}/grad_norm": updater.grad_norm,
                          f"{self.log_prefix}/steps": float(self.rft_steps)}
                for key, value in logged.items():
                    pl_module.log(key, value, on_step=True, on_epoch=False, batch_size=len(rows))
        finally:
            model.train(was_training)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        """Every ``every_n_steps`` batches from ``start_epoch`` on: one GRPO step."""
        if (self.train and self.every_n_steps and trainer.current_epoch >= self.start_epoch
                and (trainer.global_step % self.every_n_steps == 0)):
            self._train_steps(trainer, pl_module, 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Without ``every_n_steps``: ``steps_per_epoch`` GRPO steps after each epoch from ``start_epoch``."""
        if self.train and not self.every_n_steps and trainer.current_epoch >= self.start_epoch:
            self._train_steps(trainer, pl_module, self.steps_per_epoch)

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """History, GRPO steps, place in the data, the own optimiser's state, the random state."""
        from ..training import random_state

        state: dict[str, Any] = {"history": self.history, "rft_steps": self.rft_steps, "rows_served": self.rows_served}
        if self.train:
            state["random_state"] = random_state.capture()
            if self.optimizer_choice == "own" and self._optimizer is not None:
                state["optimizer"] = self._optimizer.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        from ..training import random_state

        self.history = list(state_dict.get("history", []))
        self.rft_steps = int(state_dict.get("rft_steps", 0))
        self.rows_served = int(state_dict.get("rows_served", 0))
        self._pending_optimizer_state = state_dict.get("optimizer")
        if "random_state" in state_dict:
            random_state.restore(state_dict["random_state"])

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._grading is not None:
            self._grading.close()
            self._grading = None
        self.grader.close()
