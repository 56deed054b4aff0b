"""Every concrete value the training loop needs, with no ``"auto"`` left in it.

The job file (``schema``) is what users write; ``ResolvedSettings`` is what the loop reads. Keeping
them apart means the loop never guesses a default and a test can build a loop without a job file.
Defaults here match ``TrainerSettings`` so that a direct constructor gives the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..losses import IMPORTANCE_SAMPLING_MODES
from ..optim import LR_SCHEDULER_TYPES
from .schema import LoraSettings

LossType = Literal["grpo", "dr_grpo", "dapo"]
ScaleRewards = Literal["group", "batch", "none"]


@dataclass(frozen=True)
class ResolvedSettings:
    """The resolved training settings: a job with its ``"auto"`` values decided.

    ``batch_size`` counts prompts per optimisation step across all processes; each prompt yields
    ``num_generations`` samples. ``learning_rate`` is already multiplied by the job's
    ``learning_rate_multiplier``. ``epsilon_high`` of None means ``epsilon`` (symmetric clipping).
    ``micro_batch_size`` counts samples per forward/backward on each process (None: "auto", 8
    per pass and the rest in the last). ``model_init_kwargs`` go to ``from_pretrained``; without
    a ``dtype`` the weights are bfloat16 on a CUDA GPU that has it, float32 elsewhere.
    """

    model: str
    grader: dict[str, Any]
    response_format: dict[str, Any] | None = None
    batch_size: int = 4
    num_generations: int = 4
    eval_samples: int = 1
    learning_rate: float = 1e-5
    max_completion_length: int = 256
    max_prompt_length: int | None = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float | None = None
    loss_type: LossType = "dapo"
    scale_rewards: ScaleRewards = "group"
    num_iterations: int = 1
    lr_scheduler_type: str = "linear"
    lr_scheduler_kwargs: dict[str, Any] = field(default_factory=dict)
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    mask_truncated_completions: bool = False
    use_bias_correction_kl: bool = True
    importance_sampling_correction: bool = False
    importance_sampling_mode: str = "sequence_mask"
    importance_sampling_clip_min: float | None = None
    importance_sampling_clip_max: float | None = 3.0
    micro_batch_size: int | None = None
    logprob_chunk_size: int = 1024
    gradient_checkpointing: bool = True
    master_weights: bool = True
    model_init_kwargs: dict[str, Any] = field(default_factory=dict)
    lora: LoraSettings | None = None
    sampler: str = "transformers"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    tool_call_parser: str = "auto"
    tool_call_parser_options: dict[str, Any] = field(default_factory=dict)
    reward_shapers: tuple[dict[str, Any], ...] = ()
    grader_timeout: float = 120.0
    grader_concurrency: int = 32
    seed: int = 42

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "num_generations": self.num_generations >= 1,
            "eval_samples": self.eval_samples >= 1,
            "learning_rate": self.learning_rate > 0,
            "max_completion_length": self.max_completion_length >= 1,
            "temperature": self.temperature > 0,
            "top_p": 0 < self.top_p <= 1,
            "beta": self.beta >= 0,
            "epsilon": self.epsilon > 0,
            "num_iterations": self.num_iterations >= 1,
            "micro_batch_size": self.micro_batch_size is None or self.micro_batch_size >= 1,
            "logprob_chunk_size": self.logprob_chunk_size >= 1,
            "warmup_steps": self.warmup_steps >= 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "lr_scheduler_type": self.lr_scheduler_type in LR_SCHEDULER_TYPES,
            "importance_sampling_mode": self.importance_sampling_mode in IMPORTANCE_SAMPLING_MODES,
            "loss_type": self.loss_type in ("grpo", "dr_grpo", "dapo"),
            "scale_rewards": self.scale_rewards in ("group", "batch", "none"),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid resolved setting(s): {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")
        # a list is the natural thing to pass; keep the frozen object immutable all the same
        object.__setattr__(self, "reward_shapers", tuple(self.reward_shapers))

    @property
    def clip_high(self) -> float:
        """The upper clip range: ``epsilon_high`` when set (DAPO's clip-higher), else ``epsilon``."""
        return self.epsilon if self.epsilon_high is None else self.epsilon_high
