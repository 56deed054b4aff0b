"""``RFTModule``: the GRPO-family training loop as a Lightning ``LightningModule``.

One ``training_step`` takes a batch of prompts (dataset rows) and runs one ``PolicyStep``
(``step.py``: sample, grade in the background, shape, micro-batched updates) through Lightning's
manual optimisation, then steps the learning-rate schedule and logs. Validation
(``validation_step``) samples ``eval_samples`` completions per validation prompt, grades them,
logs ``valid_reward_mean``, fires ``rft_on_validation_end`` and keeps the result as
``last_validation`` for ``BestCheckpoints`` (best models, early stopping).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import TYPE_CHECKING, Any, ContextManager

import lightning
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from ..data.rows import validate_row
from ..graders.build import build_grader
from ..graders.metrics import ScoredSample, flags_of, reward_metrics
from ..graders.runner import LoadedGrader
from ..graders.types import item_of
from ..models import from_pretrained_kwargs
from ..plugins import get_plugin_manager
from . import random_state
from .best_checkpoints import ValidationResult
from .distributed import gather, rank_and_world
from .grading import BackgroundGrader, lightning_trainer_state
from .loaders import ResumableDataLoader, train_loader, validation_loader
from .optim import MasterWeightAdamW, build_scheduler
from .settings import ResolvedSettings
from .step import PolicyStep

if TYPE_CHECKING:
    from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

    from .job import Job


def load_policy(settings: ResolvedSettings) -> Any:
    """The model to train, in the dtype of ``model_init_kwargs`` (by default bfloat16 on a CUDA
    GPU, float32 elsewhere), with gradient checkpointing if asked, LoRA-wrapped if asked (the
    adapters in float32 over a 16-bit base, as peft makes them)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(settings.model, **from_pretrained_kwargs(settings.model_init_kwargs))
    if settings.gradient_checkpointing:
        # non-reentrant: works when the inputs need no gradient (frozen embeddings under LoRA);
        # transformers 5 renamed the method, 4.x has only the old name
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if settings.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = settings.lora
        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.lora_alpha,
            lora_dropout=lora.lora_dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config)
    return model


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


#: where the processes' random generator states go in a Lightning checkpoint
RANDOM_STATE_KEY = "rft_random_state"
#: where the validation records (the samples table) go in a Lightning checkpoint
VALIDATION_RECORDS_KEY = "rft_validation_records"


class _LightningUpdater:
    """The ``Updater`` of ``rft train``: Lightning's manual optimisation (precision plugins,
    gradient sync under data parallelism), gradients collected into float32 masters."""

    def __init__(self, module: "RFTModule", optimizer: Any):
        self.module, self.optimizer = module, optimizer

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        with self.module._gradient_sync(last):
            self.module.manual_backward(loss)
        self.optimizer.optimizer.collect_grads()

    def step(self, counted: bool) -> None:
        self.module._optimizer_step(self.optimizer, counted)


class RFTModule(lightning.LightningModule):
    """Samples, grades, shapes and optimises; see the module docstring for one step."""

    step: PolicyStep  # set with object.__setattr__: kept out of the module tree

    def __init__(
        self, settings: ResolvedSettings, train_rows: list[dict], valid_rows: list[dict], job: Job | None = None
    ):
        """``job`` is the job the settings were resolved from (``rft train`` gives it; None for a
        module built from settings alone); ``rft_on_train_start`` receives it."""
        super().__init__()
        from transformers import AutoTokenizer

        self.settings = settings
        self.job = job
        # rows given straight to the module get the data sources' checks (OpenAI's RFT row rules)
        self.train_rows = [validate_row(row, f"training row {n}") for n, row in enumerate(train_rows, 1)]
        self.valid_rows = [validate_row(row, f"validation row {n}") for n, row in enumerate(valid_rows, 1)]
        self.automatic_optimization = False
        self.tokenizer = AutoTokenizer.from_pretrained(settings.model)
        self.model = load_policy(settings).train()  # from_pretrained gives eval mode; train keeps dropout
        # frozen weights (a LoRA base) stay out of checkpoints: a resumed run loads them from `model`
        self.strict_loading = all(parameter.requires_grad for parameter in self.model.parameters())
        # the grader the job's check built, else a new one (a module built from settings alone)
        self.loaded_grader: LoadedGrader | None = job.built_grader() if job is not None else build_grader(settings.grader)
        # the sampler, tool-call parser, reward shapers and KL reference; kept out of the module
        # tree (the reference is not trained, not saved)
        object.__setattr__(self, "step", PolicyStep(settings, self.tokenizer, self.model))
        self.sampler = self.step.sampler
        self.validation_records: list[dict[str, Any]] = []
        #: the latest validation's step, metrics and samples (None after a sanity check, or when no
        #: sample was scored); ``BestCheckpoints`` ranks it in ``on_validation_end``
        self.last_validation: ValidationResult | None = None
        self._grading: BackgroundGrader | None = None
        self._validation_outputs: list[dict[str, Any]] = []
        self._restored_random_state: list[dict[str, Any]] | None = None
        self._grad_norm = torch.zeros(())

    # ----------------------------------------------------------------- data
    def train_dataloader(self) -> ResumableDataLoader:
        """``batch_size`` prompts per step over all processes, shuffled reproducibly by ``seed``;
        a resumed run continues the interrupted epoch where it stopped."""
        rank, world = rank_and_world()
        return train_loader(self.train_rows, self.settings.batch_size, self.settings.seed, rank, world)

    def val_dataloader(self) -> DataLoader | list:
        """Every validation row once per validation, split over processes."""
        if not self.valid_rows:
            return []
        rank, world = rank_and_world()
        return validation_loader(self.valid_rows, self.settings.batch_size, rank, world)

    # ------------------------------------------------------------- helpers
    @property
    def grading(self) -> BackgroundGrader:
        """The background grader, started on first use (threads do not survive pickling)."""
        if self._grading is None:
            settings = self.settings
            if self.loaded_grader is None:  # closed by an earlier teardown
                self.loaded_grader = build_grader(settings.grader)
            self._grading = BackgroundGrader(self.loaded_grader, settings.grader_concurrency, settings.grader_timeout)
        return self._grading

    @property
    def grader_name(self) -> str:
        return str(self.settings.grader.get("name") or self.settings.grader["type"])  # OpenAI's may have no name

    # ------------------------------------------------------------ training
    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """AdamW (over float32 masters of 16-bit weights) and the learning-rate schedule, stepped
        once per batch over the run's ``max_steps``."""
        settings = self.settings
        trainable = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        optimizer = MasterWeightAdamW(
            trainable, master_weights=settings.master_weights, lr=settings.learning_rate,
            weight_decay=settings.weight_decay,
        )
        scheduler = build_scheduler(
            optimizer, settings.lr_scheduler_type, self.trainer.estimated_stepping_batches,
            settings.warmup_steps, settings.warmup_ratio, settings.lr_scheduler_kwargs,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_start(self) -> None:
        get_plugin_manager().hook.rft_on_train_start(job=self.job, settings=self.settings, module=self)
        rank, world = rank_and_world()
        if self._restored_random_state is None:  # a fresh start: each process samples its own stream
            random_state.seed(self.settings.seed + rank)
            return
        states, self._restored_random_state = self._restored_random_state, None  # resumed: continue them
        if len(states) == world:
            random_state.restore(states[rank])
        else:
            warnings.warn(
                f"the checkpoint holds the random state of {len(states)} processes, this run has {world}: "
                "sampling continues from a fresh random state",
                stacklevel=2,
            )
            random_state.seed(self.settings.seed + rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep every process's random state, so a resumed run draws the completions this one
        would, and the validation records so far, so the samples table still has them all; leave
        out the frozen weights, which the model folder already holds.

        Gathers over processes: like ``Trainer.save_checkpoint`` itself, call it on every process.
        """
        checkpoint[RANDOM_STATE_KEY] = gather(random_state.capture())
        checkpoint[VALIDATION_RECORDS_KEY] = list(self.validation_records)
        weights = checkpoint.get("state_dict", {})
        for name, parameter in self.model.named_parameters(remove_duplicate=False):  # tied ones under each name
            if not parameter.requires_grad:  # never changes: 13 GB of a 7B base model per save saved
                weights.pop(f"model.{name}", None)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Hold the saved random states until training starts: Lightning sets up the data loaders
        and fires start hooks in between, and the uninterrupted run did none of that there."""
        self._restored_random_state = checkpoint.get(RANDOM_STATE_KEY)
        self.validation_records = list(checkpoint.get(VALIDATION_RECORDS_KEY, []))

    def training_step(self, rows: list[dict[str, Any]], batch_idx: int) -> torch.Tensor:
        optimizer, scheduler = self._lightning_optimizer(), self.lr_schedulers()
        assert isinstance(scheduler, LRScheduler)  # configure_optimizers gives one, stepped here
        learning_rate = optimizer.param_groups[0]["lr"]  # the rate of this step's updates
        report = self.step.run(
            self.model, rows, self.grading, _LightningUpdater(self, optimizer), self.device,
            lightning_trainer_state(self.trainer),
        )
        scheduler.step()

        batch_size = len(rows)
        synced = {
            "loss": torch.stack(report.losses).mean(),
            "clip_ratio": torch.stack(report.clip_ratios).mean(),
            "kl": torch.stack(report.kls).mean() if report.kls else torch.zeros((), device=self.device),
            "grad_norm": self._grad_norm,
        }
        self.log_dict(synced, on_step=True, on_epoch=False, sync_dist=True, batch_size=batch_size, prog_bar=False)
        scored = report.scored
        metrics = reward_metrics(scored, "train", self.grader_name)
        metrics["learning_rate"] = learning_rate
        metrics.update(report.mismatch_metrics())
        metrics["completion_length_mean"] = sum(s.length for s in scored) / max(1, len(scored))
        metrics["completion_truncated_rate"] = sum(s.truncated for s in scored) / max(1, len(scored))
        metrics.update({f"timing/{phase}_s": seconds for phase, seconds in report.seconds.items()})
        if self.device.type == "cuda":
            metrics["memory/peak_allocated_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
            metrics["memory/peak_reserved_gib"] = torch.cuda.max_memory_reserved(self.device) / 2**30
        reward_mean = metrics.pop("train_reward_mean")
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("train_reward_mean", reward_mean, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        return synced["loss"]

    def _gradient_sync(self, last: bool) -> ContextManager[Any]:
        """Under data parallelism, gradients are averaged over processes once per update, after
        the last micro-batch; 16-bit weights move theirs into float32 after every micro-batch, so
        those are averaged each time."""
        block = getattr(self.trainer.strategy, "block_backward_sync", None)
        if last or block is None or self._master_weight_optimizer().has_masters:
            return contextlib.nullcontext()
        return block()

    def _lightning_optimizer(self) -> LightningOptimizer:
        optimizer = self.optimizers()
        assert isinstance(optimizer, LightningOptimizer)  # configure_optimizers gives one optimiser
        return optimizer

    def _master_weight_optimizer(self) -> MasterWeightAdamW:
        optimizer = self._lightning_optimizer().optimizer
        assert isinstance(optimizer, MasterWeightAdamW)  # the one configure_optimizers gives
        return optimizer

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the gradient norm to ``max_grad_norm`` and keep the norm for the logs.

        Lightning calls this right before the update, after a mixed-precision scaler unscaled the
        gradients, so the clip sees the true norm (clipping in ``training_step`` would clip the
        scaled gradients, and every fp16 update would be ``max_grad_norm / scale``).
        """
        parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        limit = self.settings.max_grad_norm or math.inf
        self._grad_norm = torch.nn.utils.clip_grad_norm_(parameters, limit).detach() if parameters else torch.zeros(())

    def _optimizer_step(self, optimizer: Any, counted: bool) -> None:
        """Step the optimiser; only the batch's last update advances ``trainer.global_step``.

        A step is one batch of prompts, as OpenAI counts them (and as ``max_steps`` and
        ``val_check_interval`` are planned); the ``num_iterations - 1`` earlier updates on the same
        rollout go through the strategy directly, so precision plugins still apply to them.
        """
        if counted:
            optimizer.step()
        else:
            self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    # ---------------------------------------------------------- validation
    def validation_step(self, batch: tuple[list[int], list[dict[str, Any]]], batch_idx: int) -> None:
        indices, rows = batch
        generations = self.settings.eval_samples
        rollout = self.step.sample(self.model, rows, generations, self.device)
        items = [item_of(row) for row in rows for _ in range(generations)]
        graded = self.grading.grade(rollout.texts, items, rollout.tool_calls, lightning_trainer_state(self.trainer))
        lengths = rollout.completion_lengths
        for position, (grade, text) in enumerate(zip(graded.grades, rollout.texts)):
            row = rows[position // generations]
            self._validation_outputs.append(
                {
                    "index": indices[position // generations],
                    "sample": position % generations,
                    "prompt": _message_text(row["messages"][-1]),
                    "completion": text,
                    "tool_calls": rollout.tool_calls[position] if rollout.tool_calls else [],
                    "reward": grade.reward,
                    "sub_rewards": dict(grade.sub_rewards),
                    "errors": flags_of(grade),
                    "scored": ScoredSample.from_grade(grade, lengths[position], rollout.truncated[position]),
                }
            )

    def on_validation_epoch_end(self) -> None:
        outputs, self._validation_outputs = self._validation_outputs, []
        self.last_validation = None
        seen: dict[tuple[int, int], dict[str, Any]] = {}
        for part in gather(outputs):
            for record in part:  # DistributedSampler repeats rows to even out processes: keep one
                seen.setdefault((record["index"], record["sample"]), record)
        if not seen:
            return
        records = [seen[key] for key in sorted(seen)]
        metrics = reward_metrics([r["scored"] for r in records], "valid", self.grader_name)
        self.log_dict({k: v for k, v in metrics.items() if k != "valid_reward_mean"})
        self.log("valid_reward_mean", metrics["valid_reward_mean"], prog_bar=True)
        if self.trainer.sanity_checking:
            return
        step = self.global_step
        samples = [
            {"step": step, **{k: v for k, v in record.items() if k not in ("scored", "index", "sample")}}
            for record in records
        ]
        self.validation_records.extend(samples)
        self.last_validation = ValidationResult(step, dict(metrics), samples)
        get_plugin_manager().hook.rft_on_validation_end(step=step, metrics=dict(metrics), samples=samples, module=self)

    # -------------------------------------------------------------- outputs
    def save_hf(self, path: str) -> None:
        """Save the model (the adapter alone with LoRA) and tokenizer in Hugging Face format."""
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def teardown(self, stage: str) -> None:
        """After ``fit``: stop the grading thread, release the grader and the sampler's resources."""
        if stage != "fit":
            return
        if self._grading is not None:
            self._grading.close()
            self._grading = None
        if self.loaded_grader is not None:
            self.loaded_grader.close()
            self.loaded_grader = None
        close = getattr(self.sampler, "close", None)
        if callable(close):
            close()
