"""Resolution: every ``"auto"`` of a job becomes a number suited to the training data, then the
job becomes the loop's ``ResolvedSettings`` (documented in docs/job.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import JobError
from .schema import Job, TrainerSettings

if TYPE_CHECKING:
    from .settings import ResolvedSettings

#: "auto" batch_size: about a quarter of a small training file, at most this many prompts
AUTO_MAX_BATCH_SIZE = 8
#: "auto" n_epochs: enough passes for about this many optimisation steps, within 1..10 epochs
AUTO_TARGET_STEPS = 50
AUTO_MAX_EPOCHS = 10
#: "auto" eval_interval: about this many validations per run
AUTO_VALIDATIONS = 10
#: reasoning_effort -> factor on trainer.max_completion_length ("auto" = medium)
REASONING_EFFORT_LENGTH = {"none": 0.25, "minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 4.0}


@dataclass(frozen=True)
class ResolvedHyperparameters:
    """OpenAI's hyperparameters with every "auto" replaced, and the step plan they imply."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    eval_interval: int
    eval_samples: int
    compute_multiplier: float
    reasoning_effort: str
    steps_per_epoch: int
    total_steps: int
    num_generations: int
    max_completion_length: int
    learning_rate: float


def resolve_hyperparameters(job: Job, n_train_rows: int) -> ResolvedHyperparameters:
    """Replace every "auto" with a value suited to ``n_train_rows`` (documented in docs/job.md).

    - batch_size: ``min(8, ceil(rows / 4))`` prompts, so a small file still gives ~4 steps/epoch;
    - n_epochs: enough for ~50 steps in all, between 1 and 10;
    - total steps: ``ceil(rows / batch_size) * n_epochs``, capped by ``trainer.max_steps``;
    - eval_interval: ``total / 10`` (at least 1); eval_samples: 1 per validation prompt;
    - compute_multiplier scales the rollout budget: ``num_generations * multiplier`` (at least 2);
    - reasoning_effort scales ``max_completion_length`` (none and minimal 0.25x, low 0.5x, medium and
      default 1x, high 2x, xhigh 4x);
    - learning rate: ``trainer.learning_rate * learning_rate_multiplier`` ("auto" = 1).
    """
    if n_train_rows < 1:
        raise JobError("the training data has no rows", field="training_file")
    given, trainer = job.hyperparameters, job.trainer
    batch_size = (
        min(AUTO_MAX_BATCH_SIZE, max(1, math.ceil(n_train_rows / 4))) if given.batch_size == "auto" else given.batch_size
    )
    steps_per_epoch = math.ceil(n_train_rows / batch_size)
    n_epochs = (
        min(AUTO_MAX_EPOCHS, max(1, math.ceil(AUTO_TARGET_STEPS / steps_per_epoch)))
        if given.n_epochs == "auto" else given.n_epochs
    )
    total_steps = steps_per_epoch * n_epochs
    if trainer.max_steps is not None:
        total_steps = min(total_steps, trainer.max_steps)
    eval_interval = (
        max(1, total_steps // AUTO_VALIDATIONS) if given.eval_interval == "auto" else given.eval_interval
    )
    multiplier = 1.0 if given.learning_rate_multiplier == "auto" else float(given.learning_rate_multiplier)
    compute = 1.0 if given.compute_multiplier == "auto" else float(given.compute_multiplier)
    effort = "medium" if given.reasoning_effort in ("auto", "default") else given.reasoning_effort
    return ResolvedHyperparameters(
        n_epochs=n_epochs,
        batch_size=batch_size,
        learning_rate_multiplier=multiplier,
        eval_interval=eval_interval,
        eval_samples=1 if given.eval_samples == "auto" else given.eval_samples,
        compute_multiplier=compute,
        reasoning_effort=effort,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        num_generations=max(2, round(trainer.num_generations * compute)),
        max_completion_length=max(1, round(trainer.max_completion_length * REASONING_EFFORT_LENGTH[effort])),
        learning_rate=trainer.learning_rate * multiplier,
    )


def resolve(job: Job, n_train_rows: int) -> "ResolvedSettings":
    """The loop's concrete settings for ``job`` on a training set of ``n_train_rows`` prompts."""
    return settings_for(job, resolve_hyperparameters(job, n_train_rows))


def model_init_kwargs(trainer: TrainerSettings) -> dict[str, Any]:
    """The job's ``from_pretrained`` arguments with the dtype decided for its device."""
    from ..precision import default_dtype

    kwargs = trainer.model_init_kwargs.model_dump(exclude_none=True)
    kwargs.setdefault("dtype", default_dtype(trainer.accelerator))
    return kwargs


def settings_for(job: Job, plan: ResolvedHyperparameters) -> "ResolvedSettings":
    """The loop's concrete settings: ``job`` with the values ``plan`` decided for its "auto"s."""
    from ..settings import ResolvedSettings

    trainer = job.trainer
    return ResolvedSettings(
        model=job.model_folder,
        grader=job.grader,
        response_format=job.method.reinforcement.response_format,
        batch_size=plan.batch_size,
        num_generations=plan.num_generations,
        eval_samples=plan.eval_samples,
        learning_rate=plan.learning_rate,
        max_completion_length=plan.max_completion_length,
        max_prompt_length=trainer.max_prompt_length,
        temperature=trainer.temperature,
        top_p=trainer.top_p,
        top_k=trainer.top_k,
        beta=trainer.beta,
        epsilon=trainer.epsilon,
        epsilon_high=trainer.epsilon_high,
        loss_type=trainer.loss_type,
        scale_rewards=trainer.scale_rewards,
        num_iterations=trainer.num_iterations,
        lr_scheduler_type=trainer.lr_scheduler_type,
        lr_scheduler_kwargs=dict(trainer.lr_scheduler_kwargs),
        warmup_steps=trainer.warmup_steps,
        warmup_ratio=trainer.warmup_ratio,
        weight_decay=trainer.weight_decay,
        max_grad_norm=trainer.max_grad_norm,
        mask_truncated_completions=trainer.mask_truncated_completions,
        use_bias_correction_kl=trainer.use_bias_correction_kl,
        importance_sampling_correction=trainer.importance_sampling_correction,
        importance_sampling_mode=trainer.importance_sampling_mode,
        importance_sampling_clip_min=trainer.importance_sampling_clip_min,
        importance_sampling_clip_max=trainer.importance_sampling_clip_max,
        micro_batch_size=None if trainer.micro_batch_size == "auto" else trainer.micro_batch_size,
        logprob_chunk_size=trainer.logprob_chunk_size,
        gradient_checkpointing=trainer.gradient_checkpointing,
        master_weights=trainer.master_weights,
        model_init_kwargs=model_init_kwargs(trainer),
        lora=trainer.lora,
        sampler=trainer.sampler,
        sampler_options=dict(trainer.sampler_options),
        tool_call_parser=trainer.tool_call_parser,
        tool_call_parser_options=dict(trainer.tool_call_parser_options),
        reward_shapers=tuple(trainer.reward_shapers),
        grader_timeout=trainer.grader_timeout,
        grader_concurrency=trainer.grader_concurrency,
        seed=job.seed if job.seed is not None else trainer.seed,
    )
