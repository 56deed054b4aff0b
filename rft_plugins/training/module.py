"""``RFTModule``: the GRPO-family training loop as a Lightning ``LightningModule``.

One ``training_step`` takes a batch of prompts (dataset rows) and:

1. samples G completions per prompt with the job's sampler plugin, all prompts at once;
2. starts grading them in the background and meanwhile, micro-batch by micro-batch, computes the
   reference log-probs (KL) and, when the rollout is reused for several iterations, its log-probs
   under the current policy (the same training-mode forward as the loss's), then the first
   micro-batch's forward pass, whose graph waits for the advantages;
3. shapes the grades into advantages with the reward shaper plugins (over the whole batch of
   every process, so group and batch statistics do not depend on the number of processes);
4. runs ``num_iterations`` optimisation steps on the clipped surrogate (manual optimisation),
   each accumulating the gradients of every micro-batch of ``micro_batch_size`` samples, with each
   micro-batch's loss normalised as for the whole step; then steps the learning-rate schedule.

Validation (``validation_step``) samples ``eval_samples`` completions per validation prompt,
grades them, logs ``valid_reward_mean`` and fires ``rft_on_validation_end``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from typing import Any, ContextManager

import lightning
import torch
from torch.utils.data import DataLoader

from ..data.rows import validate_row
from ..graders.build import build_grader
from ..graders.metrics import ScoredSample, flags_of, reward_metrics
from ..graders.runner import LoadedGrader
from ..graders.types import Grade, item_of
from ..models import from_pretrained_kwargs
from ..plugins import get_plugin_manager
from ..sampling import RolloutBatch, SamplingParams, build_sampler, completion_logprobs
from ..sampling.logprobs import eval_mode
from ..sampling.prompts import encode_prompt
from ..sampling.tool_calls import build_tool_call_parser, parse_tool_calls
from ..shaping import ShapingBatch, build_shapers
from . import random_state
from .distributed import gather, rank_and_world
from .grading import BackgroundGrader
from .loaders import ResumableDataLoader, train_loader, validation_loader
from .losses import PolicyLoss, importance_sampling_weights, policy_loss
from .micro_batches import MicroBatch, split_rollout
from .optim import MasterWeightAdamW, build_scheduler
from .settings import ResolvedSettings


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


class _LossTotals:
    """A step's loss and token-weighted statistics added up over its micro-batches."""

    def __init__(self) -> None:
        self.loss: Any = 0.0
        self.tokens: Any = 0.0
        self.weighted: dict[str, Any] = {}

    def add(self, result: PolicyLoss, mask: torch.Tensor) -> None:
        tokens = mask.sum().float()
        self.loss = self.loss + result.loss.detach()
        self.tokens = self.tokens + tokens
        for name, value in (("kl", result.kl), ("clip_ratio", result.clip_ratio)):
            if value is not None:
                self.weighted[name] = self.weighted.get(name, 0.0) + value.detach().float() * tokens

    def mean(self, name: str) -> torch.Tensor:
        """The token-weighted mean of ``name`` over the micro-batches."""
        return self.weighted[name] / self.tokens.clamp(min=1.0)


def _mismatch_metrics(mismatch: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """``sampling/logprob_difference_{mean,max}``: |policy - sampler| log-prob per counted token;
    ``sampling/importance_weight_{min,mean,max}`` when the correction is on (TRL's metrics)."""
    metrics: dict[str, float] = {}
    for name, key in (("logprob_difference", "difference"), ("importance_weight", "weights")):
        values = torch.cat(mismatch[key]) if mismatch[key] else None
        if values is None or not values.numel():
            continue
        metrics[f"sampling/{name}_mean"] = values.float().mean().item()
        metrics[f"sampling/{name}_max"] = values.max().item()
        if key == "weights":
            metrics[f"sampling/{name}_min"] = values.min().item()
    return metrics


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
        # frozen weights (a LoRA base) stay out of checkpoints: a resumed run loads them from `model`
        self.strict_loading = all(parameter.requires_grad for parameter in self.model.parameters())
        # A frozen copy for the KL term, kept out of the module tree: not trained, not saved.
        reference = None
        if settings.beta > 0 and settings.lora is None:
            reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        object.__setattr__(self, "_reference_model", reference)
        self.loaded_grader: LoadedGrader | None = build_grader(settings.grader)
        self.sampler = build_sampler(settings.sampler, self.tokenizer, settings.sampler_options)
        self.tool_call_parser = build_tool_call_parser(
            settings.tool_call_parser, self.tokenizer, settings.tool_call_parser_options
        )
        self.shapers = build_shapers(settings)
        self.validation_records: list[dict[str, Any]] = []
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

    def encode_prompt(self, row: dict[str, Any]) -> list[int]:
        """The row's chat rendered by the tokenizer's template, cut to ``max_prompt_length`` from the left."""
        return encode_prompt(self.tokenizer, row, self.settings.max_prompt_length)

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
            response_format=settings.response_format,
        )
        prompts = [self.encode_prompt(row) for row in rows]
        rollout = self.sampler.sample(self.model, prompts, params)
        rollout.validate(len(rows))
        if rollout.tool_calls is None and self.tool_call_parser is not None and any(row.get("tools") for row in rows):
            parse_tool_calls(rollout, self.tokenizer, self.tool_call_parser, prompts, [row.get("tools") for row in rows])
        for name in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "logprobs"):
            value = getattr(rollout, name)
            if value is not None:
                setattr(rollout, name, value.to(self.device))
        return rollout

    def _logprobs(self, model: Any, part: MicroBatch | RolloutBatch) -> torch.Tensor:
        return completion_logprobs(
            model,
            part.prompt_ids,
            part.prompt_mask,
            part.completion_ids,
            part.completion_mask,
            self.settings.temperature,
            self.settings.logprob_chunk_size,
        )

    @torch.no_grad()
    def reference_logprobs(self, part: MicroBatch | RolloutBatch) -> torch.Tensor:
        """Log-probs under the reference policy: the base model with the LoRA adapter switched off,
        or the frozen copy taken before training, in the policy's device and dtype (a precision
        plugin that converted the policy converts the reference too, so the KL starts at 0)."""
        if self.settings.lora is not None:
            with self.model.disable_adapter(), eval_mode(self.model):
                return self._logprobs(self.model, part)
        reference, policy = self._reference_model, next(self.model.parameters())
        current = next(reference.parameters())
        if (current.device, current.dtype) != (policy.device, policy.dtype):
            reference.to(device=policy.device, dtype=policy.dtype)
        return self._logprobs(reference, part)

    # ------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, Any]:
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
        get_plugin_manager().hook.rft_on_train_start(job=self.settings, module=self)
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
        settings = self.settings
        started = self._clock()
        rollout = self._sample(rows, settings.num_generations)
        sampled = self._clock()

        items = [item_of(row) for row in rows for _ in range(settings.num_generations)]
        pending = self.grading.submit(rollout.texts, items, rollout.tool_calls)
        parts = split_rollout(rollout, self._loss_mask(rollout), settings.micro_batch_size)
        # Model work that needs no grades runs while the grader works: reference and old
        # log-probs, and the first micro-batch's forward (its graph waits for the advantages).
        with torch.no_grad():
            for part in parts:
                if settings.beta > 0:
                    part.ref_logprobs = self.reference_logprobs(part)
                if settings.num_iterations > 1:
                    part.old_logprobs = self._logprobs(self.model, part)
        first_logprobs = self._logprobs(self.model, parts[0])
        waiting = self._clock()
        graded = pending.result()
        waited = time.perf_counter() - waiting

        advantages, scored, num_tokens = self._advantages(graded.grades, rollout)
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        learning_rate = optimizer.param_groups[0]["lr"]  # the rate of this step's updates
        losses, kls, clips = [], [], []
        mismatch: dict[str, list[torch.Tensor]] = {"difference": [], "weights": []}
        for iteration in range(settings.num_iterations):
            optimizer.zero_grad()
            totals = _LossTotals()
            for index, part in enumerate(parts):
                logprobs = first_logprobs if iteration == 0 and index == 0 else self._logprobs(self.model, part)
                old_logprobs = logprobs.detach() if part.old_logprobs is None else part.old_logprobs
                if iteration == 0:
                    self._weigh_sampler_mismatch(part, old_logprobs, mismatch)
                result = policy_loss(
                    logprobs,
                    old_logprobs,
                    advantages[part.rows],
                    part.loss_mask,
                    loss_type=settings.loss_type,
                    epsilon=settings.epsilon,
                    epsilon_high=settings.epsilon_high,
                    beta=settings.beta,
                    ref_logprobs=part.ref_logprobs,
                    max_completion_length=settings.max_completion_length,
                    num_tokens=num_tokens,
                    num_sequences=len(rollout.texts),
                    bias_correction_kl=settings.use_bias_correction_kl,
                    importance_weights=part.importance_weights,
                )
                with self._gradient_sync(last=index == len(parts) - 1):
                    self.manual_backward(result.loss)
                optimizer.optimizer.collect_grads()
                totals.add(result, part.loss_mask)
            self._optimizer_step(optimizer, counted=iteration == settings.num_iterations - 1)
            losses.append(totals.loss)
            clips.append(totals.mean("clip_ratio"))
            if settings.beta > 0:
                kls.append(totals.mean("kl"))
        scheduler.step()
        update = getattr(self.sampler, "update_weights", None)
        if callable(update):
            update(self.model)
        finished = self._clock()

        batch_size = len(rows)
        synced = {
            "loss": torch.stack(losses).mean(),
            "clip_ratio": torch.stack(clips).mean(),
            "kl": torch.stack(kls).mean() if kls else torch.zeros((), device=self.device),
            "grad_norm": self._grad_norm,
        }
        self.log_dict(synced, on_step=True, on_epoch=False, sync_dist=True, batch_size=batch_size, prog_bar=False)
        metrics = reward_metrics(scored, "train", self.grader_name)
        metrics["learning_rate"] = learning_rate
        metrics.update(_mismatch_metrics(mismatch))
        metrics["completion_length_mean"] = sum(s.length for s in scored) / max(1, len(scored))
        metrics["completion_truncated_rate"] = sum(s.truncated for s in scored) / max(1, len(scored))
        metrics["timing/sampling_s"] = sampled - started
        metrics["timing/grading_s"] = graded.seconds
        metrics["timing/grading_wait_s"] = waited
        metrics["timing/training_s"] = finished - sampled - waited  # model work, not waiting on grades
        metrics["timing/full_iteration_s"] = finished - started
        if self.device.type == "cuda":
            metrics["memory/peak_allocated_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
            metrics["memory/peak_reserved_gib"] = torch.cuda.max_memory_reserved(self.device) / 2**30
        reward_mean = metrics.pop("train_reward_mean")
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("train_reward_mean", reward_mean, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        return synced["loss"]

    def _weigh_sampler_mismatch(
        self, part: MicroBatch, policy_logprobs: torch.Tensor, mismatch: dict[str, list[torch.Tensor]]
    ) -> None:
        """Keep how far the sampler's log-probs are from the policy's (on the tokens the loss
        counts) and, with ``importance_sampling_correction``, set the weights that correct for it."""
        if part.sampler_logprobs is None:
            return
        counted = part.loss_mask.bool()
        mismatch["difference"].append((policy_logprobs - part.sampler_logprobs).abs()[counted])
        settings = self.settings
        if settings.importance_sampling_correction:
            weights = importance_sampling_weights(
                policy_logprobs, part.sampler_logprobs, part.loss_mask, settings.importance_sampling_mode,
                settings.importance_sampling_clip_min, settings.importance_sampling_clip_max,
            )
            part.importance_weights = weights
            mismatch["weights"].append(weights[counted] if weights.size(1) > 1 else weights[counted.any(dim=1), 0])

    def _clock(self) -> float:
        """Wall time once the accelerator has finished what was queued, so each phase's time
        includes its kernels, not only their launch."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _loss_mask(self, rollout: RolloutBatch) -> torch.Tensor:
        """The completion tokens the loss counts: all, or only those of completions that ended
        (``mask_truncated_completions``, as TRL)."""
        if not self.settings.mask_truncated_completions:
            return rollout.completion_mask
        ended = torch.tensor([not cut for cut in rollout.truncated], device=rollout.completion_mask.device)
        return rollout.completion_mask * ended.unsqueeze(1).to(rollout.completion_mask.dtype)

    def _gradient_sync(self, last: bool) -> ContextManager[Any]:
        """Under data parallelism, gradients are averaged over processes once per update, after
        the last micro-batch; 16-bit weights move theirs into float32 after every micro-batch, so
        those are averaged each time."""
        block = getattr(self.trainer.strategy, "block_backward_sync", None)
        if last or block is None or self.optimizers().optimizer.has_masters:
            return contextlib.nullcontext()
        return block()

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

    def _advantages(
        self, grades: list[Grade], rollout: RolloutBatch
    ) -> tuple[torch.Tensor, list[ScoredSample], float]:
        """Shape the grades of every process together; return this process's advantages, every
        process's scored samples (for metrics) and the DAPO token normaliser (TRL's: the tokens
        the loss counts over all processes, divided by the number of processes)."""
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
        advantages = torch.tensor(mine, dtype=torch.float64, device=self.device)  # the loss takes its dtype
        masked = self.settings.mask_truncated_completions
        num_tokens = sum(s.length for s in everyone if not (masked and s.truncated)) / world
        return advantages, everyone, num_tokens

    # ---------------------------------------------------------- validation
    def validation_step(self, batch: tuple[list[int], list[dict[str, Any]]], batch_idx: int) -> None:
        indices, rows = batch
        generations = self.settings.eval_samples
        rollout = self._sample(rows, generations)
        items = [item_of(row) for row in rows for _ in range(generations)]
        graded = self.grading.grade(rollout.texts, items, rollout.tool_calls)
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
