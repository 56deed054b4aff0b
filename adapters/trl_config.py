"""A job as TRL's ``GRPOConfig``: what the ``trl`` training backend maps, and what it refuses.

The names are mostly TRL's already (``trainer`` follows ``GRPOConfig``). What differs is counted:
a job's ``batch_size`` counts prompts per step, TRL's batch sizes count samples, so a step's
``batch_size x num_generations`` samples become ``per_device_train_batch_size`` (our
``micro_batch_size``) times ``gradient_accumulation_steps``, generated once per step. A field
TRL cannot honour (a reward shaper, a custom sampler, constrained decoding, more than one update
per batch, ...) is a ``JobError`` naming it when the job loads. ``check`` stays free of heavy
imports: it runs for every job that names this backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rft_plugins.training.backends import RunRequest
    from rft_plugins.training.job import Job

#: our ``micro_batch_size: auto`` — at most this many samples per forward/backward
AUTO_MICRO_BATCH = 8
LIGHTNING = "use the lightning backend"
#: Lightning precisions -> transformers' mixed-precision flags
PRECISIONS = {
    "32-true": (False, False), "32": (False, False),
    "bf16-mixed": (True, False), "bf16": (True, False),
    "16-mixed": (False, True), "16": (False, True),
}
#: ``trainer`` fields whose default is all TRL can do, and why
UNMAPPED: dict[str, tuple[Any, str]] = {
    "reward_shapers": ([], "TRL turns rewards into advantages its own way (scale_rewards); reward shaper plugins "
                           f"run only in the built-in loop: drop them or {LIGHTNING}"),
    "sampler": ("transformers", "TRL samples with its own generation (or vLLM, TRL's use_vllm); sampler plugins "
                                f"run only in the built-in loop: {LIGHTNING}"),
    "importance_sampling_correction": (False, "TRL corrects for the sampler only under vLLM "
                                              f"(vllm_importance_sampling_correction): {LIGHTNING}"),
    "num_iterations": (1, "TRL counts each of the num_iterations updates of a batch as a step of its own, so "
                          "max_steps, eval_interval and the step numbers would mean another thing: use 1 or "
                          + LIGHTNING),
    "devices": (1, "the trl backend trains in one process; for several GPUs launch TRL itself (accelerate launch) "
                   f"or {LIGHTNING}"),
    "strategy": ("auto", f"the trl backend trains in one process: {LIGHTNING}"),
}


def check(job: "Job") -> None:
    """Raise ``job.error(field, why)`` for what TRL's ``GRPOTrainer`` cannot do of ``job``."""
    from rft_plugins.extras import missing_libraries

    trainer = job.trainer
    if missing_libraries("trl"):
        raise job.error("trainer.backend", "the trl backend needs TRL: pip install 'rft-plugins[trl]'")
    if job.method.reinforcement.response_format is not None:
        raise job.error("method.reinforcement.response_format", "TRL's generation has no constrained decoding to "
                        f"enforce a response format: drop it or {LIGHTNING}")
    for name, (default, why) in UNMAPPED.items():
        if getattr(trainer, name) != default:
            raise job.error(f"trainer.{name}" + ("[0]" if name == "reward_shapers" else ""), why)
    unknown = sorted(set(trainer.sampler_options) - {"generation_kwargs"})
    if unknown:
        raise job.error(f"trainer.sampler_options.{unknown[0]}", "TRL's generation takes generation_kwargs only")
    if trainer.precision not in PRECISIONS and trainer.precision != "auto":
        raise job.error("trainer.precision", f"{trainer.precision} has no transformers equivalent; use 32-true, "
                        f"bf16-mixed or 16-mixed, or {LIGHTNING}")
    dtype = trainer.model_init_kwargs.dtype
    if trainer.master_weights and dtype in ("bfloat16", "float16"):
        raise job.error("trainer.master_weights", f"TRL updates {dtype} weights in place (no float32 master "
                        "copies): load float32 weights (drop model_init_kwargs.dtype) with bf16-mixed precision, "
                        f"which is TRL's way, set master_weights: false, or {LIGHTNING}")


def micro_batch(job: "Job", samples: int) -> int:
    """Samples per forward/backward: the job's ``micro_batch_size``, or (auto) the largest
    divisor of the step's samples up to 8 (TRL needs whole passes)."""
    given = job.trainer.micro_batch_size
    if given != "auto":
        return int(given)
    return max(size for size in range(1, min(AUTO_MICRO_BATCH, samples) + 1) if samples % size == 0)


def precision_flags(job: "Job") -> tuple[bool, bool]:
    """``(bf16, fp16)`` for ``trainer.precision``; ``auto`` is bf16 on a CUDA GPU that has it."""
    if job.trainer.precision == "auto":
        from rft_plugins.models import bf16_on_cuda

        return bf16_on_cuda(job.trainer.accelerator), False
    return PRECISIONS[job.trainer.precision]


def config_kwargs(request: "RunRequest", report_to: list[str], resuming: bool) -> dict[str, Any]:
    """``GRPOConfig`` arguments for the run ``request`` describes (``output_dir``: its checkpoints)."""
    from rft_plugins.training.optim import warmup_steps_for

    job, plan, settings = request.job, request.plan, request.settings
    trainer = job.trainer
    samples = plan.batch_size * plan.num_generations
    micro = micro_batch(job, samples)
    bf16, fp16 = precision_flags(job)
    validates = bool(request.valid_data)
    return dict(
        output_dir=str(Path(request.folder) / "checkpoints"),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=samples // micro,
        num_generations=plan.num_generations,
        max_completion_length=plan.max_completion_length,
        temperature=trainer.temperature,
        top_p=trainer.top_p,
        top_k=trainer.top_k or 0,  # TRL's 0: no top-k
        generation_kwargs=dict(trainer.sampler_options.get("generation_kwargs") or {}) or None,
        beta=trainer.beta,
        epsilon=trainer.epsilon,
        epsilon_high=trainer.epsilon_high,
        loss_type=trainer.loss_type,
        scale_rewards=trainer.scale_rewards,
        num_iterations=1,
        mask_truncated_completions=trainer.mask_truncated_completions,
        use_bias_correction_kl=trainer.use_bias_correction_kl,
        learning_rate=plan.learning_rate,
        lr_scheduler_type=trainer.lr_scheduler_type,
        lr_scheduler_kwargs=dict(trainer.lr_scheduler_kwargs),
        warmup_steps=warmup_steps_for(plan.total_steps, trainer.warmup_steps, trainer.warmup_ratio),
        weight_decay=trainer.weight_decay,
        max_grad_norm=trainer.max_grad_norm or 0.0,  # transformers: 0 is no clipping
        optim="adamw_torch",
        gradient_checkpointing=trainer.gradient_checkpointing,
        bf16=bf16,
        fp16=fp16,
        use_cpu=trainer.accelerator == "cpu",
        max_steps=plan.total_steps,
        seed=settings.seed,
        eval_strategy="steps" if validates else "no",
        eval_steps=plan.eval_interval,
        eval_on_start=validates and trainer.eval_on_start and not resuming,
        num_generations_eval=plan.eval_samples,
        per_device_eval_batch_size=plan.batch_size * plan.eval_samples,
        logging_steps=trainer.logging_steps,
        save_strategy="steps",
        save_steps=trainer.save_steps or plan.eval_interval,
        save_total_limit=1,
        report_to=report_to,
        run_name=None,  # set by the backend: trainer.run_name, else the run folder's name
        disable_tqdm=not request.progress_bar,
        log_completions=False,
        remove_unused_columns=False,
        push_to_hub=False,  # the backend pushes final/ with its model card, as the built-in loop does
    )
