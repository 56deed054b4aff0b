"""The job file's schema: an OpenAI fine-tuning job (``method.type: reinforcement``) plus ``model``
and a ``trainer`` section for what OpenAI hides, as pydantic models.

``trainer`` fields are named like ``trl.GRPOConfig``'s where one exists, so one job runs on
either engine (``trainer.backend``); TRL's names for the others are translated where they mean the
same (``aliases.py``). ``batch_size`` counts prompts per optimisation step (OpenAI's meaning);
each prompt yields ``num_generations`` samples. ``model`` and the data files are local paths or
Hugging Face Hub ids, read from the local cache (``rft_plugins.hub``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Union

import pydantic
from pydantic import Field

from ...errors import JobError
from ...fields import path_of

if TYPE_CHECKING:
    from ...graders.runner import LoadedGrader

Auto = Literal["auto"]
#: sanity caps on numbers a job may set: past them a run only diverges, or never ends
MAX_LEARNING_RATE = 1.0
MAX_LEARNING_RATE_MULTIPLIER = 100.0
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)


class Hyperparameters(_Strict):
    """OpenAI's RFT hyperparameters; every one may be ``"auto"`` (resolved before training)."""

    n_epochs: Union[Auto, int] = Field(default="auto", description="passes over the training file (1-50)")
    batch_size: Union[Auto, int] = Field(default="auto", description="prompts per optimisation step (1-256)")
    learning_rate_multiplier: Union[Auto, float] = Field(default="auto", description="scales trainer.learning_rate (0-100]")
    eval_interval: Union[Auto, int] = Field(default="auto", description="steps between validations (>= 1)")
    eval_samples: Union[Auto, int] = Field(default="auto", description="samples per validation prompt (>= 1)")
    compute_multiplier: Union[Auto, float] = Field(default="auto", description="rollout budget scale, (0, 10]")
    # OpenAI's RFT takes "default"; every value of openai-python's ReasoningEffort is accepted too
    reasoning_effort: Union[Auto, Literal["default", "none", "minimal", "low", "medium", "high", "xhigh"]] = "auto"

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
        if value != "auto" and not 0 < value <= MAX_LEARNING_RATE_MULTIPLIER:
            raise ValueError(f"must be greater than 0 and at most {MAX_LEARNING_RATE_MULTIPLIER:g}")
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

    r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: Union[str, list[str]] = "all-linear"


class ModelInitKwargs(pydantic.BaseModel):
    """``from_pretrained`` arguments for the policy (and the KL reference), as TRL's ``model_init_kwargs``.

    ``dtype`` is checked; anything else (``attn_implementation``, ``revision``, ...) is passed on.
    Without ``dtype`` the weights are bfloat16 on a CUDA GPU that has it, float32 elsewhere.
    """

    model_config = pydantic.ConfigDict(extra="allow")

    dtype: Literal["auto", "bfloat16", "float16", "float32"] | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        if isinstance(value, dict) and "torch_dtype" in value:
            raise ValueError("torch_dtype is called dtype since transformers 5; write dtype")
        return value


#: Lightning's precision settings
LightningPrecision = Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "bf16", "16", "64"]
#: a job's: Lightning's, and "auto" (bf16-mixed on a CUDA GPU with bfloat16, else 32-true)
Precision = Literal["auto", LightningPrecision]
LrSchedulerType = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
    "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay",
]


class TrainerSettings(_Strict):
    """What OpenAI's service decides for you. Names follow ``trl.GRPOConfig`` where one exists."""

    num_generations: int = Field(default=4, ge=2, le=1024, description="samples per prompt (the GRPO group)")
    max_completion_length: int = Field(default=256, ge=1, le=1_048_576)
    max_prompt_length: int | None = Field(default=1024, ge=1, le=16_777_216)
    temperature: float = Field(default=1.0, gt=0, le=100)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    beta: float = Field(default=0.0, ge=0, description="KL coefficient to the reference model")
    epsilon: float = Field(default=0.2, gt=0, description="lower clip range of the surrogate")
    epsilon_high: float | None = Field(default=None, gt=0, description="upper clip range (DAPO); default epsilon")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    num_iterations: int = Field(default=1, ge=1, description="optimisation passes per generated batch")
    learning_rate: float = Field(
        default=1e-5, gt=0, le=MAX_LEARNING_RATE, description="base rate; times learning_rate_multiplier"
    )
    lr_scheduler_type: LrSchedulerType = Field(default="linear", description="transformers' schedule over the run's steps")
    lr_scheduler_kwargs: dict[str, Any] = Field(default_factory=dict, description="the schedule's own options")
    warmup_steps: int = Field(default=0, ge=0, description="steps of linear warm-up; overrides warmup_ratio")
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1, description="warm-up as a share of the run's steps")
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    mask_truncated_completions: bool = Field(
        default=False, description="leave completions cut at max_completion_length out of the loss"
    )
    use_bias_correction_kl: bool = Field(default=True, description="KL term times the importance ratio (TRL's default)")
    importance_sampling_correction: bool = Field(
        default=False, description="weigh the loss by policy / sampler probabilities, bounded (TRL's vllm_importance_sampling_*)"
    )
    importance_sampling_mode: Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"] = (
        "sequence_mask"
    )
    importance_sampling_clip_min: float | None = Field(default=None, ge=0)
    importance_sampling_clip_max: float | None = Field(default=3.0, gt=0)
    micro_batch_size: Union[Auto, int] = Field(
        default="auto", description="samples per forward/backward on each process (TRL's per_device_train_batch_size); "
        "auto: 8, the last pass of a step taking the rest",
    )
    logprob_chunk_size: int = Field(
        default=1024, ge=1, description="completion tokens per LM-head chunk for log-probs (memory)"
    )
    gradient_checkpointing: bool = Field(default=True, description="recompute activations in the backward pass (memory)")
    master_weights: bool = Field(
        default=True, description="float32 copies of 16-bit trainable weights in the optimiser, so small updates are kept"
    )
    model_init_kwargs: ModelInitKwargs = Field(default_factory=ModelInitKwargs)
    max_steps: int | None = Field(default=None, ge=1, description="cap on optimisation steps")
    eval_on_start: bool = Field(default=True, description="validate the untrained model first (step 0), as a baseline")
    save_steps: int | None = Field(default=None, ge=1, description="steps between resume checkpoints; default eval_interval")
    logging_steps: int = Field(default=1, ge=1, description="steps between metric rows in the logs")
    lora: LoraSettings | None = None
    precision: Precision = "auto"
    accelerator: str = "auto"
    devices: Union[int, str, list[int]] = 1
    strategy: str = "auto"
    output_dir: str = "runs/rft"
    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    sampler: str = "transformers"
    sampler_options: dict[str, Any] = Field(default_factory=dict)
    tool_call_parser: str = Field(
        default="auto", description="how tool calls in completions are parsed: a registered parser, or auto (the tokenizer's)"
    )
    tool_call_parser_options: dict[str, Any] = Field(default_factory=dict, description="passed to the parser")
    data_source: str | None = Field(default=None, description="registered data source; default by file type")
    data_source_options: dict[str, Any] = Field(default_factory=dict, description="passed to the data source")
    reward_shapers: list[dict[str, Any]] = Field(default_factory=list)
    grader_timeout: float = Field(default=120.0, gt=0, le=86_400, description="seconds before a grade is unresponsive")
    grader_concurrency: int = Field(default=32, ge=1, le=4096)
    save_top_k: int = Field(default=3, ge=1, description="best checkpoints kept, by valid_reward_mean")
    early_stopping_patience: int | None = Field(default=None, ge=1, description="validations without gain")
    backend: str = Field(default="lightning", description="the training backend plugin: lightning (built in), trl, ...")
    report_to: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description="loggers beside metrics.csv: tensorboard, wandb, mlflow (csv is always written); all, none",
    )
    run_name: str | None = Field(default=None, description="the run's name for W&B / MLflow; default the run folder's name")
    push_to_hub: bool = Field(default=False, description="upload final/ (with its model card) to the Hugging Face Hub")
    hub_model_id: str | None = Field(default=None, description="the hub repository push_to_hub uploads to")
    hub_private_repo: bool | None = Field(default=None, description="create the hub repository as private")

    @pydantic.field_validator("micro_batch_size")
    @classmethod
    def _micro_batch(cls, value: Any) -> Any:
        if value != "auto" and value < 1:
            raise ValueError("must be at least 1")
        return value

    @pydantic.field_validator("report_to", mode="before")
    @classmethod
    def _report_to(cls, value: Any) -> Any:
        """TRL's forms: a name, a list of names, ``all`` (every one installed) or ``none``."""
        from ..loggers import LOGGERS, installed_loggers

        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError("must be a logger name or a list of them")
        if names in (["none"], []):
            return []
        if names == ["all"]:
            return installed_loggers()
        unknown = [name for name in names if name not in LOGGERS]
        if unknown:
            raise ValueError(f"unknown logger {unknown[0]!r}; known: {', '.join(LOGGERS)}, all, none")
        return list(dict.fromkeys(names))


class Job(_Strict):
    """A whole ``rft train`` job."""

    model: str = Field(description="local path of a Hugging Face causal LM")
    training_file: str
    validation_file: str | None = None
    method: Method
    trainer: TrainerSettings = Field(default_factory=TrainerSettings)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="OpenAI's job seed; overrides trainer.seed")
    suffix: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def grader(self) -> dict[str, Any]:
        return self.method.reinforcement.grader

    @property
    def hyperparameters(self) -> Hyperparameters:
        return self.method.reinforcement.hyperparameters

    @property
    def model_folder(self) -> str:
        """Where the model is read from: ``model`` itself, or a hub id's snapshot in the local cache."""
        return self.__dict__.get(MODEL_FOLDER_KEY) or self.model

    def built_grader(self) -> "LoadedGrader":
        """The grader built when the job was checked, handed over once (the run that takes it
        closes it), else a new one: a job is checked by building its grader, and the run grades
        with that same object."""
        from ...graders.build import build_grader

        grader = self.__dict__.pop(GRADER_KEY, None)
        return grader if grader is not None else build_grader(self.grader)

    def built_source(self) -> Any:
        """The data source built when the job was checked (``trainer.data_source`` or its options
        set), or None: the run reads its files with it."""
        return self.__dict__.get(SOURCE_KEY)

    def error(self, field: str | None, message: str) -> "JobError":
        """A ``JobError`` about the dotted ``field`` (None: the job as a whole, as a ``ConfigError``
        without a field), with the job file and line where known.

        For problems found once the job has loaded (a sampler rejecting its options, Lightning
        rejecting a device setting), so they read like the ones found while loading.
        """
        document = self.__dict__.get(DOCUMENT_KEY)
        if document is None:
            return JobError(message, field=field)
        return document.error(path_of(field or ""), message)

#: where a loaded ``Job`` keeps the parsed file it came from, to locate later problems
DOCUMENT_KEY = "_rft_document"
#: where a loaded ``Job`` keeps the local folder of a model named by a hub id
MODEL_FOLDER_KEY = "_rft_model_folder"
#: where a checked ``Job`` keeps the grader and the data source its checks built, for the run
GRADER_KEY = "_rft_grader"
SOURCE_KEY = "_rft_source"
