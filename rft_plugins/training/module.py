"""``RFTModule``: the GRPO-family training loop as a Lightning ``LightningModule``.

One ``training_step`` takes a batch of prompts (dataset rows) and:

1. samples G completions per prompt with the job's sampler plugin;
2. starts grading them in the background and meanwhile computes the reference log-probs (KL)
   and, when reused for several iterations, the rollout's old log-probs;
3. shapes the grades into advantages with the reward shaper plugins (over the whole batch of
   every process, so group and batch statistics do not depend on the number of processes);
4. runs ``num_iterations`` optimisation steps on the clipped surrogate (manual optimisation).

Validation (``validation_step``) samples ``eval_samples`` completions per validation prompt,
grades them, logs ``valid_reward_mean`` and fires ``rft_on_validation_end``.
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any

import lightning
import torch
from torch.utils.data import DataLoader

from ..data.rows import validate_row
from ..graders.build import build_grader
from ..graders.runner import LoadedGrader
from ..graders.types import Grade
from ..plugins import get_plugin_manager
from ..sampling import RolloutBatch, SamplingParams, build_sampler, completion_logprobs
from ..sampling.logprobs import eval_mode
from ..shaping import ShapingBatch, build_shapers
from . import random_state
from .distributed import gather, rank_and_world
from .grading import BackgroundGrader
from .loaders import ResumableDataLoader, train_loader, validation_loader
from .losses import policy_loss
from .reward_metrics import ScoredSample, flags_of, reward_metrics
from .settings import ResolvedSettings


def load_policy(settings: ResolvedSettings) -> Any:
    """The model to train: loaded in float32 (Lightning's precision plugin casts), LoRA-wrapped if asked."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(settings.model, dtype=torch.float32)
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
        model = get_peft_model(model, config)
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


class RFTModule(lightning.LightningModule):
    """Samples, grades, shapes and optimises; see the module docstring for one step."""

    def __init__(self, settings: ResolvedSettings, train_rows: list[dict], valid_rows: list[dict]):
        super().__init__()
        from transformers import AutoTokenizer

        self.settings = settings
        # rows given straight to the module get the data sources' checks (OpenAI's RFT row rules)
        self.train_rows = [validate_row(row, f"training row {n}") for n, row in enumerate(train_rows, 1)]
        self.valid_rows = [validate_row(row, f"validation row {n}") for n, row in enumerate(valid_rows, 1)]
        self.automatic_optimization = False
        self.tokenizer = AutoTokenizer.from_pretrained(settings.model)
        self.model = load_policy(settings).train()  # from_pretrained gives eval mode; train keeps dropout
        # A frozen copy for the KL term, kept out of the module tree: not trained, not saved.
        reference = None
        if settings.beta > 0 and settings.lora is None:
            reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        object.__setattr__(self, "_reference_model", reference)
        self.loaded_grader: LoadedGrader | None = build_grader(settings.grader)
        self.sampler = build_sampler(settings.sampler, self.tokenizer, settings.sampler_options)
        self.shapers = build_shapers(settings)
        self.validation_records: list[dict[str, Any]] = []
        self._grading: BackgroundGrader | None = None
        self._validation_outputs: list[dict[str, Any]] = []
        self._restored_random_state: list[dict[str, Any]] | None = None

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

    def encode_prompt(self, row: dict[str, Any]) -> list[int]:
        """The row's chat rendered by the tokenizer's template, cut to ``max_prompt_length`` from the left."""
        text = self.tokenizer.apply_chat_template(
            row["messages"], tools=row.get("tools"), add_generation_prompt=True, tokenize=False
        )
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = self.settings.max_prompt_length
        return ids[-limit:] if limit is not None and len(ids) > limit else ids

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
        return str(self.settings.grader["name"])

    def _sample(self, rows: list[dict[str, Any]], generations: int) -> RolloutBatch:
        settings = self.settings
        params = SamplingParams(
            num_generations=generations,
            max_new_tokens=settings.max_completion_length,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
        )
        rollout = self.sampler.sample(self.model, [self.encode_prompt(row) for row in rows], params)
        rollout.validate(len(rows))
        for name in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "logprobs"):
            value = getattr(rollout, name)
            if value is not None:
                setattr(rollout, name, value.to(self.device))
        return rollout

    def _logprobs(self, model: Any, rollout: RolloutBatch) -> torch.Tensor:
        return completion_logprobs(
            model,
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            self.settings.temperature,
        )

    @torch.no_grad()
    def reference_logprobs(self, rollout: RolloutBatch) -> torch.Tensor:
        """Log-probs under the reference policy: the base model with the LoRA adapter switched off,
        or the frozen copy taken before training."""
        if self.settings.lora is not None:
            with self.model.disable_adapter(), eval_mode(self.model):
                return self._logprobs(self.model, rollout)
        reference = self._reference_model
        if next(reference.parameters()).device != self.device:
            reference.to(self.device)
        return self._logprobs(reference, rollout)

    # ------------------------------------------------------------ training
    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        return torch.optim.AdamW(trainable, lr=self.settings.learning_rate, weight_decay=self.settings.weight_decay)

    def on_train_start(self) -> None:
        get_plugin_manager().hook.rft_on_train_start(job=self.settings, module=self)
        if self._restored_random_state is not None:  # resumed: continue the checkpointed streams
            rank, world = rank_and_world()
            states, self._restored_random_state = self._restored_random_state, None
            if len(states) == world:
                random_state.restore(states[rank])
            else:
                warnings.warn(
                    f"the checkpoint holds the random state of {len(states)} processes, this run has {world}: "
                    "sampling continues from a fresh random state",
                    stacklevel=2,
                )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep every process's random state, so a resumed run draws the completions this one
        would, and the validation records so far, so the samples table still has them all.

        Gathers over processes: like ``Trainer.save_checkpoint`` itself, call it on every process.
        """
        checkpoint[RANDOM_STATE_KEY] = gather(random_state.capture())
        checkpoint[VALIDATION_RECORDS_KEY] = list(self.validation_records)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Hold the saved random states until training starts: Lightning sets up the data loaders
        and fires start hooks in between, and the uninterrupted run did none of that there."""
        self._restored_random_state = checkpoint.get(RANDOM_STATE_KEY)
        self.validation_records = list(checkpoint.get(VALIDATION_RECORDS_KEY, []))

    def training_step(self, rows: list[dict[str, Any]], batch_idx: int) -> torch.Tensor:
        settings = self.settings
        started = time.perf_counter()
        rollout = self._sample(rows, settings.num_generations)
        sampled = time.perf_counter()

        items = [row for row in rows for _ in range(settings.num_generations)]
        pending = self.grading.submit(rollout.texts, items)
        # Model work that needs no grades runs while the grader works: reference and old
        # log-probs, and the first pass's forward (its graph waits for the advantages).
        with torch.no_grad():
            ref_logprobs = self.reference_logprobs(rollout) if settings.beta > 0 else None
            old_logprobs = None
            if settings.num_iterations > 1:
                old_logprobs = rollout.logprobs
                if old_logprobs is None:
                    with eval_mode(self.model):
                        old_logprobs = self._logprobs(self.model, rollout)
        first_logprobs = self._logprobs(self.model, rollout)
        waiting = time.perf_counter()
        graded = pending.result()
        waited = time.perf_counter() - waiting

        advantages, scored, num_tokens = self._advantages(graded.grades, rollout)
        optimizer = self.optimizers()
        losses, kls, clips = [], [], []
        for iteration in range(settings.num_iterations):
            logprobs = first_logprobs if iteration == 0 else self._logprobs(self.model, rollout)
            result = policy_loss(
                logprobs,
                logprobs.detach() if old_logprobs is None else old_logprobs,
                advantages,
                rollout.completion_mask,
                loss_type=settings.loss_type,
                epsilon=settings.epsilon,
                epsilon_high=settings.epsilon_high,
                beta=settings.beta,
                ref_logprobs=ref_logprobs,
                max_completion_length=settings.max_completion_length,
                num_tokens=num_tokens,
            )
            optimizer.zero_grad()
            self.manual_backward(result.loss)
            if settings.max_grad_norm is not None:
                self.clip_gradients(optimizer, gradient_clip_val=settings.max_grad_norm, gradient_clip_algorithm="norm")
            self._optimizer_step(optimizer, counted=iteration == settings.num_iterations - 1)
            losses.append(result.loss.detach())
            clips.append(result.clip_ratio)
            if result.kl is not None:
                kls.append(result.kl)
        update = getattr(self.sampler, "update_weights", None)
        if callable(update):
            update(self.model)
        finished = time.perf_counter()

        batch_size = len(rows)
        synced = {
            "loss": torch.stack(losses).mean(),
            "clip_ratio": torch.stack(clips).mean(),
            "kl": torch.stack(kls).mean() if kls else torch.zeros((), device=self.device),
        }
        self.log_dict(synced, on_step=True, on_epoch=False, sync_dist=True, batch_size=batch_size, prog_bar=False)
        metrics = reward_metrics(scored, "train", self.grader_name)
        metrics["completion_length_mean"] = sum(s.length for s in scored) / max(1, len(scored))
        metrics["completion_truncated_rate"] = sum(s.truncated for s in scored) / max(1, len(scored))
        metrics["timing/sampling_s"] = sampled - started
        metrics["timing/grading_s"] = graded.seconds
        metrics["timing/grading_wait_s"] = waited
        metrics["timing/training_s"] = finished - sampled - waited  # model work, not waiting on grades
        metrics["timing/full_iteration_s"] = finished - started
        reward_mean = metrics.pop("train_reward_mean")
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("train_reward_mean", reward_mean, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        return synced["loss"]

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

    def _advantages(
        self, grades: list[Grade], rollout: RolloutBatch
    ) -> tuple[torch.Tensor, list[ScoredSample], float]:
        """Shape the grades of every process together; return this process's advantages, every
        process's scored samples (for metrics) and the DAPO token normaliser (TRL's)."""
        lengths = rollout.completion_lengths
        local = [ScoredSample.from_grade(g, n, t) for g, n, t in zip(grades, lengths, rollout.truncated)]
        per_rank = gather(local)
        rank, world = rank_and_world()
        offset = sum(len(part) for part in per_rank[:rank])
        everyone = [sample for part in per_rank for sample in part]
        batch = ShapingBatch(
            rewards=[s.reward for s in everyone],
            sub_rewards=[s.sub_rewards for s in everyone],
            completion_lengths=[s.length for s in everyone],
            truncated=[s.truncated for s in everyone],
            group_size=rollout.num_generations,
            max_completion_length=self.settings.max_completion_length,
        )
        shaped = self.shapers(batch)
        mine = shaped.advantages[offset : offset + len(local)]  # type: ignore[index]
        advantages = torch.tensor(mine, dtype=torch.float32, device=self.device)
        num_tokens = sum(s.length for s in everyone) / world
        return advantages, everyone, num_tokens

    # ---------------------------------------------------------- validation
    def validation_step(self, batch: tuple[list[int], list[dict[str, Any]]], batch_idx: int) -> None:
        indices, rows = batch
        generations = self.settings.eval_samples
        rollout = self._sample(rows, generations)
        items = [row for row in rows for _ in range(generations)]
        graded = self.grading.grade(rollout.texts, items)
        lengths = rollout.completion_lengths
        for position, (grade, text) in enumerate(zip(graded.grades, rollout.texts)):
            row = rows[position // generations]
            self._validation_outputs.append(
                {
                    "index": indices[position // generations],
                    "sample": position % generations,
                    "prompt": _message_text(row["messages"][-1]),
                    "completion": text,
                    "reward": grade.reward,
                    "sub_rewards": dict(grade.sub_rewards),
                    "errors": flags_of(grade),
                    "scored": ScoredSample.from_grade(grade, lengths[position], rollout.truncated[position]),
                }
            )

    def on_validation_epoch_end(self) -> None:
        outputs, self._validation_outputs = self._validation_outputs, []
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
