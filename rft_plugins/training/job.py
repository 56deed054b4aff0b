"""The job file: an OpenAI fine-tuning job (``method.type: reinforcement``) plus ``model`` and a
``trainer`` section for what OpenAI hides.

``trainer`` fields are named like ``trl.GRPOConfig``'s where one exists, so one job runs on
either engine. ``batch_size`` counts prompts per optimisation step (OpenAI's meaning); each prompt
yields ``num_generations`` samples.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import pydantic
from pydantic import Field

Auto = Literal["auto"]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class Hyperparameters(_Strict):
    """OpenAI's RFT hyperparameters; every one may be ``"auto"`` (resolved before training)."""

    n_epochs: Union[Auto, int] = Field("auto", description="passes over the training file (1-50)")
    batch_size: Union[Auto, int] = Field("auto", description="prompts per optimisation step (1-256)")
    learning_rate_multiplier: Union[Auto, float] = Field("auto", description="scales trainer.learning_rate")
    eval_interval: Union[Auto, int] = Field("auto", description="steps between validations (>= 1)")
    eval_samples: Union[Auto, int] = Field("auto", description="samples per validation prompt (>= 1)")
    compute_multiplier: Union[Auto, float] = Field("auto", description="rollout budget scale, (0, 10]")
    reasoning_effort: Union[Auto, Literal["low", "medium", "high"]] = "auto"

    @pydantic.field_validator("n_epochs")
    @classmethod
    def _epochs(cls, value: Any) -> Any:
        if value != "auto" and not 1 <= value <= 50:
            raise ValueError("must be between 1 and 50")
        return value

    @pydantic.field_validator("batch_size")
    @classmethod
    def _batch(cls, value: Any) -> Any:
        if value != "auto" and not 1 <= value <= 256:
            raise ValueError("must be between 1 and 256")
        return value

    @pydantic.field_validator("eval_interval", "eval_samples")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if value != "auto" and value < 1:
            raise ValueError("must be at least 1")
        return value

    @pydantic.field_validator("learning_rate_multiplier")
    @classmethod
    def _lr(cls, value: Any) -> Any:
        if value != "auto" and value <= 0:
            raise ValueError("must be greater than 0")
        return value

    @pydantic.field_validator("compute_multiplier")
    @classmethod
    def _compute(cls, value: Any) -> Any:
        if value != "auto" and not 0 < value <= 10:
            raise ValueError("must be in (0, 10]")
        return value


class Reinforcement(_Strict):
    grader: dict[str, Any]
    response_format: dict[str, Any] | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(_Strict):
    type: Literal["reinforcement"]
    reinforcement: Reinforcement


class LoraSettings(_Strict):
    """peft ``LoraConfig`` fields. With LoRA, the KL reference is the base model (adapter off)."""

    r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: Union[str, list[str]] = "all-linear"


class TrainerSettings(_Strict):
    """What OpenAI's service decides for you. Names follow ``trl.GRPOConfig`` where one exists."""

    num_generations: int = Field(4, ge=2, description="samples per prompt (the GRPO group)")
    max_completion_length: int = Field(256, ge=1)
    max_prompt_length: int | None = Field(1024, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    beta: float = Field(0.0, ge=0, description="KL coefficient to the reference model")
    epsilon: float = Field(0.2, gt=0, description="lower clip range of the surrogate")
    epsilon_high: float | None = Field(None, gt=0, description="upper clip range (DAPO); default epsilon")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    num_iterations: int = Field(1, ge=1, description="optimisation passes per generated batch")
    learning_rate: float = Field(1e-5, gt=0, description="base rate; times learning_rate_multiplier")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="cap on optimisation steps")
    lora: LoraSettings | None = None
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: Union[int, str, list[int]] = 1
    strategy: str = "auto"
    output_dir: str = "runs/rft"
    seed: int = 42
    sampler: str = "transformers"
    sampler_options: dict[str, Any] = Field(default_factory=dict)
    data_source: str | None = Field(None, description="registered data source; default by file type")
    reward_shapers: list[dict[str, Any]] = Field(default_factory=list)
    grader_timeout: float = Field(120.0, gt=0, description="seconds before a grade is unresponsive")
    grader_concurrency: int = Field(32, ge=1)
    save_top_k: int = Field(3, ge=1, description="best checkpoints kept, by valid_reward_mean")
    early_stopping_patience: int | None = Field(None, ge=1, description="validations without gain")


class Job(_Strict):
    """A whole ``rft train`` job."""

    model: str = Field(description="local path of a Hugging Face causal LM")
    training_file: str
    validation_file: str | None = None
    method: Method
    trainer: TrainerSettings = Field(default_factory=TrainerSettings)
    seed: int | None = Field(None, description="OpenAI's job seed; overrides trainer.seed")
    suffix: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def grader(self) -> dict[str, Any]:
        return self.method.reinforcement.grader

    @property
    def hyperparameters(self) -> Hyperparameters:
        return self.method.reinforcement.hyperparameters
