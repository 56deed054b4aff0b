"""The job file: an OpenAI fine-tuning job (``method.type: reinforcement``) plus ``model`` and a
``trainer`` section for what OpenAI hides.

``trainer`` fields are named like ``trl.GRPOConfig``'s where one exists, so one job runs on
either engine (``trainer.backend``); TRL's names for the others are translated where they mean the
same (``job_aliases.py``). ``batch_size`` counts prompts per optimisation step (OpenAI's meaning);
each prompt yields ``num_generations`` samples. ``model`` and the data files are local paths or
Hugging Face Hub ids, read from the local cache (``rft_plugins.hub``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence, Union

import pydantic
import yaml
from pydantic import Field
from pydantic_core import ErrorDetails

from ..documents import DocumentError, DocumentLimits, load_json, load_yaml, read_text
from ..errors import ConfigError, GraderConfigError, JobError
from ..graders.build import validate_grader
from .job_aliases import AliasProblem, translate
from .job_aliases import hint as trl_hint
from ..fields import dotted, path_of
from ..options import problem_message
from .job_overrides import OverrideProblem, apply_overrides
from .model_folder import weights_problem

if TYPE_CHECKING:
    from .settings import ResolvedSettings

Auto = Literal["auto"]
#: sanity caps on numbers a job may set: past them a run only diverges, or never ends
MAX_LEARNING_RATE = 1.0
MAX_LEARNING_RATE_MULTIPLIER = 100.0
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)


class Hyperparameters(_Strict):
    """OpenAI's RFT hyperparameters; every one may be ``"auto"`` (resolved before training)."""

    n_epochs: Union[Auto, int] = Field("auto", description="passes over the training file (1-50)")
    batch_size: Union[Auto, int] = Field("auto", description="prompts per optimisation step (1-256)")
    learning_rate_multiplier: Union[Auto, float] = Field("auto", description="scales trainer.learning_rate (0-100]")
    eval_interval: Union[Auto, int] = Field("auto", description="steps between validations (>= 1)")
    eval_samples: Union[Auto, int] = Field("auto", description="samples per validation prompt (>= 1)")
    compute_multiplier: Union[Auto, float] = Field("auto", description="rollout budget scale, (0, 10]")
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

    r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
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


#: Lightning's precision settings, and "auto" (bf16-mixed on a CUDA GPU with bfloat16, else 32-true)
Precision = Literal[
    "auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "bf16", "16", "64"
]
LrSchedulerType = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
    "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay",
]


class TrainerSettings(_Strict):
    """What OpenAI's service decides for you. Names follow ``trl.GRPOConfig`` where one exists."""

    num_generations: int = Field(4, ge=2, le=1024, description="samples per prompt (the GRPO group)")
    max_completion_length: int = Field(256, ge=1, le=1_048_576)
    max_prompt_length: int | None = Field(1024, ge=1, le=16_777_216)
    temperature: float = Field(1.0, gt=0, le=100)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    beta: float = Field(0.0, ge=0, description="KL coefficient to the reference model")
    epsilon: float = Field(0.2, gt=0, description="lower clip range of the surrogate")
    epsilon_high: float | None = Field(None, gt=0, description="upper clip range (DAPO); default epsilon")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    num_iterations: int = Field(1, ge=1, description="optimisation passes per generated batch")
    learning_rate: float = Field(
        1e-5, gt=0, le=MAX_LEARNING_RATE, description="base rate; times learning_rate_multiplier"
    )
    lr_scheduler_type: LrSchedulerType = Field("linear", description="transformers' schedule over the run's steps")
    lr_scheduler_kwargs: dict[str, Any] = Field(default_factory=dict, description="the schedule's own options")
    warmup_steps: int = Field(0, ge=0, description="steps of linear warm-up; overrides warmup_ratio")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="warm-up as a share of the run's steps")
    weight_decay: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    mask_truncated_completions: bool = Field(
        False, description="leave completions cut at max_completion_length out of the loss"
    )
    use_bias_correction_kl: bool = Field(True, description="KL term times the importance ratio (TRL's default)")
    importance_sampling_correction: bool = Field(
        False, description="weigh the loss by policy / sampler probabilities, bounded (TRL's vllm_importance_sampling_*)"
    )
    importance_sampling_mode: Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"] = (
        "sequence_mask"
    )
    importance_sampling_clip_min: float | None = Field(None, ge=0)
    importance_sampling_clip_max: float | None = Field(3.0, gt=0)
    micro_batch_size: Union[Auto, int] = Field(
        "auto", description="samples per forward/backward on each process (TRL's per_device_train_batch_size); "
        "auto: 8, the last pass of a step taking the rest",
    )
    logprob_chunk_size: int = Field(
        1024, ge=1, description="completion tokens per LM-head chunk for log-probs (memory)"
    )
    gradient_checkpointing: bool = Field(True, description="recompute activations in the backward pass (memory)")
    master_weights: bool = Field(
        True, description="float32 copies of 16-bit trainable weights in the optimiser, so small updates are kept"
    )
    model_init_kwargs: ModelInitKwargs = Field(default_factory=ModelInitKwargs)
    max_steps: int | None = Field(None, ge=1, description="cap on optimisation steps")
    eval_on_start: bool = Field(True, description="validate the untrained model first (step 0), as a baseline")
    save_steps: int | None = Field(None, ge=1, description="steps between resume checkpoints; default eval_interval")
    logging_steps: int = Field(1, ge=1, description="steps between metric rows in the logs")
    lora: LoraSettings | None = None
    precision: Precision = "auto"
    accelerator: str = "auto"
    devices: Union[int, str, list[int]] = 1
    strategy: str = "auto"
    output_dir: str = "runs/rft"
    seed: int = Field(42, ge=0, le=MAX_SEED)
    sampler: str = "transformers"
    sampler_options: dict[str, Any] = Field(default_factory=dict)
    tool_call_parser: str = Field(
        "auto", description="how tool calls in completions are parsed: a registered parser, or auto (the tokenizer's)"
    )
    tool_call_parser_options: dict[str, Any] = Field(default_factory=dict, description="passed to the parser")
    data_source: str | None = Field(None, description="registered data source; default by file type")
    data_source_options: dict[str, Any] = Field(default_factory=dict, description="passed to the data source")
    reward_shapers: list[dict[str, Any]] = Field(default_factory=list)
    grader_timeout: float = Field(120.0, gt=0, le=86_400, description="seconds before a grade is unresponsive")
    grader_concurrency: int = Field(32, ge=1, le=4096)
    save_top_k: int = Field(3, ge=1, description="best checkpoints kept, by valid_reward_mean")
    early_stopping_patience: int | None = Field(None, ge=1, description="validations without gain")
    backend: str = Field("lightning", description="the training backend plugin: lightning (built in), trl, ...")
    report_to: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description="loggers beside metrics.csv: tensorboard, wandb, mlflow (csv is always written); all, none",
    )
    run_name: str | None = Field(None, description="the run's name for W&B / MLflow; default the run folder's name")
    push_to_hub: bool = Field(False, description="upload final/ (with its model card) to the Hugging Face Hub")
    hub_model_id: str | None = Field(None, description="the hub repository push_to_hub uploads to")
    hub_private_repo: bool | None = Field(None, description="create the hub repository as private")

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
        from .loggers import LOGGERS, installed_loggers

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
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="OpenAI's job seed; overrides trainer.seed")
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

    def error(self, field: str, message: str) -> "JobError":
        """A ``JobError`` about the dotted ``field``, with the job file and line where known.

        For problems found once the job has loaded (a sampler rejecting its options, Lightning
        rejecting a device setting), so they read like the ones found while loading.
        """
        document = self.__dict__.get(DOCUMENT_KEY)
        if document is None:
            return JobError(message, field=field)
        return document.error(path_of(field), message)


# --------------------------------------------------------------------------------------------
# Loading: YAML or JSON, with errors that name the file, the line and the dotted field.
# --------------------------------------------------------------------------------------------

#: which pydantic model validates the object at each path, for "did you mean" hints
_SECTIONS: dict[tuple[str, ...], type[pydantic.BaseModel]] = {
    (): Job,
    ("method",): Method,
    ("method", "reinforcement"): Reinforcement,
    ("method", "reinforcement", "hyperparameters"): Hyperparameters,
    ("trainer",): TrainerSettings,
    ("trainer", "lora"): LoraSettings,
}
GRADER_PATH = ("method", "reinforcement", "grader")
#: where a loaded ``Job`` keeps the parsed file it came from, to locate later problems
DOCUMENT_KEY = "_rft_document"
#: where a loaded ``Job`` keeps the local folder of a model named by a hub id
MODEL_FOLDER_KEY = "_rft_model_folder"
#: where a problem with a ``--set`` (or ``--backend``) value is reported
OVERRIDE_SOURCE = "command line"
#: data sources that read the job's training/validation files from disk
FILE_SOURCES = {None, "jsonl", "hf_datasets"}


@dataclass
class _Document:
    """A parsed YAML/JSON document and the line of each key, by path; the fields written under
    TRL's names (``written``: our path -> the path as written) and set by ``--set``."""

    source: str
    data: Any
    lines: dict[tuple[Any, ...], int]
    written: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    overridden: set[tuple[Any, ...]] = field(default_factory=set)

    def as_written(self, path: Sequence[Any]) -> tuple[Any, ...]:
        """``path`` as the user wrote it (a TRL name for one of our fields)."""
        path = tuple(path)
        for end in range(len(path), 0, -1):
            if path[:end] in self.written:
                return self.written[path[:end]] + path[end:]
        return path

    def error(self, path: Sequence[Any], message: str) -> "JobError":
        """A ``JobError`` about ``path``: the field as written, at its line, or in ``--set``."""
        shown = self.as_written(path)
        field_name = dotted(shown) or None
        if any(shown[:end] in self.overridden for end in range(len(shown), 0, -1)):
            return JobError(message, OVERRIDE_SOURCE, None, field_name)
        return JobError(message, self.source, self.line_of(shown), field_name)

    def line_of(self, path: Sequence[Any]) -> int | None:
        """The line of the deepest key of ``path`` that the document has."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def _key_lines(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = path + (key.value,)
            lines[child] = key.start_mark.line + 1
            _key_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _key_lines(value, path + (index,), lines)


def _read_document(path: Path) -> _Document:
    """Parse YAML or JSON (by suffix; JSON first when unknown), keeping each key's line; size,
    UTF-8, YAML aliases and nesting are checked first (``rft_plugins.documents``)."""
    try:
        return _parse_document(path, DocumentLimits.from_environment())
    except DocumentError as error:
        raise JobError(error.message, str(path), error.line) from error


def _parse_document(path: Path, limits: DocumentLimits) -> _Document:
    source = str(path)
    try:
        text = read_text(path, limits)
    except OSError as error:
        raise JobError(f"cannot read: {error.strerror or error}", source) from error
    is_yaml = path.suffix.lower() in {".yaml", ".yml"}
    root = None
    if not is_yaml:
        try:
            data = load_json(text, limits)
        except json.JSONDecodeError as error:
            if path.suffix.lower() == ".json":
                raise JobError(f"invalid JSON: {error.msg} (column {error.colno})", source, error.lineno) from error
            is_yaml = True
    if is_yaml:
        try:
            data, root = load_yaml(text, limits)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            problem = getattr(error, "problem", None) or str(error)
            raise JobError(f"invalid YAML: {problem}", source, mark.line + 1 if mark else None) from error
    lines: dict[tuple[Any, ...], int] = {}
    try:  # JSON is (nearly) YAML: one composer gives key lines for both
        root = root or yaml.compose(text)
        if root is not None:
            _key_lines(root, (), lines)
    except yaml.YAMLError:
        pass
    return _Document(source, data, lines)


def _clean_location(data: Any, location: Sequence[Any], missing: bool) -> tuple[Any, ...]:
    """pydantic's error location without union-member tags (``int``, ``literal['auto']``)."""
    path: list[Any] = []
    for index, part in enumerate(location):
        last = index == len(location) - 1
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif not (missing and last):
            continue
        path.append(part)
    return tuple(path)


def _message(error: ErrorDetails, path: tuple[Any, ...]) -> str:
    """``problem_message``, with what to write instead of an unknown field (TRL's name, a typo)."""
    if error["type"] != "extra_forbidden":
        return problem_message(error)
    instead = trl_hint(str(path[-1]))
    if instead:  # a TRL / transformers field without a counterpart here
        return f"unknown field (TRL's {path[-1]} has no counterpart here): {instead}"
    section = _SECTIONS.get(path[:-1])
    hint = difflib.get_close_matches(str(path[-1]), list(section.model_fields), n=1) if section else []
    return "unknown field" + (f"; did you mean {hint[0]!r}?" if hint else "")


def _schema_error(error: pydantic.ValidationError, document: _Document) -> JobError:
    """The first problem pydantic found, located; union alternatives are merged into one line."""
    problems = error.errors()
    first = problems[0]
    path = _clean_location(document.data, first["loc"], first["type"] == "missing")
    messages: list[str] = []
    for problem in problems:
        if _clean_location(document.data, problem["loc"], problem["type"] == "missing") == path:
            text = _message(problem, path)
            if messages:
                text = text.removeprefix("Input should be ")
            if text not in messages:
                messages.append(text)
    return document.error(path, " or ".join(messages))


def _resolve_path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _model_snapshot(job: Job, document: _Document) -> str | None:
    """The local snapshot folder of a ``model`` given as a hub id (None for a local path)."""
    from ..hub import HubError, is_repo_id, model_snapshot

    if Path(job.model).exists() or not is_repo_id(job.model):
        return None
    try:
        return str(model_snapshot(job.model, job.trainer.model_init_kwargs.model_dump().get("revision")))
    except HubError as error:
        raise document.error(("model",), error.args[0]) from error


def _check_model(job: Job, document: _Document) -> None:
    path = Path(job.model_folder)
    if not path.exists():
        raise document.error(
            ("model",), f"{path} does not exist (a local Hugging Face model folder, or a hub id in the local cache)"
        )
    if not (path / "config.json").is_file():
        raise document.error(("model",), f"{path} is not a Hugging Face model folder (no config.json)")
    problem = weights_problem(path)
    if problem:
        raise document.error(("model",), problem)


def _resolve_location(value: str, base: Path) -> str:
    """A data file's path against the job's folder; a hub dataset id (no such file) stays as it is."""
    from ..data.hf_datasets import hub_dataset

    path = _resolve_path(value, base)
    return value if not path.exists() and hub_dataset(value) is not None else str(path)


def _check_files(job: Job, document: _Document) -> None:
    from ..data.hf_datasets import hub_dataset
    from ..hub import HubError, dataset_snapshot

    if job.trainer.data_source not in FILE_SOURCES:
        return  # another data source reads these names its own way
    for name in ("training_file", "validation_file"):
        value = getattr(job, name)
        hub = hub_dataset(value) if value is not None else None
        if hub is not None:
            try:
                dataset_snapshot(hub[0], job.trainer.data_source_options.get("revision"))
            except HubError as error:
                raise document.error((name,), error.args[0]) from error
        elif value is not None and not Path(value).exists():
            raise document.error((name,), f"{value} does not exist")


def _grader_error(document: _Document, grader_document: _Document | None, field: str, message: str) -> JobError:
    """A problem with the grader's ``field``: in its own file, or in the job (or on the command line)."""
    if grader_document is None:
        return document.error(GRADER_PATH + path_of(field), message)
    name = ".".join(part for part in (dotted(GRADER_PATH), field) if part)
    return JobError(message, grader_document.source, grader_document.line_of(path_of(field)), name)


def _check_grader(job: Job, document: _Document, grader_document: _Document | None) -> None:
    grader = job.grader
    if grader.get("type") == "label_model":
        message = "label_model cannot be the top-level RFT grader (OpenAI's rule); put it inside a multi grader"
        raise _grader_error(document, grader_document, "type", message)
    try:
        validate_grader(grader)
    except GraderConfigError as error:
        raise _grader_error(document, grader_document, error.field or "", error.message) from error


@contextmanager
def _located(job: Job, whole: str = "") -> Iterator[None]:
    """A ``ConfigError`` raised inside (a plugin rejecting the job's settings) as a ``JobError`` at
    its field in the job file; ``whole`` is the field of one that names none."""
    try:
        yield
    except ConfigError as error:
        raise job.error(error.field or whole, error.message) from error


def _check_plugins(job: Job) -> None:
    """The trainer's plugin choices, checked as far as they can be without the model: the backend,
    sampler and tool-call parser exist, the data source takes its options, the reward shapers build
    in order."""
    from ..data.loading import build_source, choose_source
    from ..registry import find
    from ..shaping import build_shapers

    trainer = job.trainer
    with _located(job):
        backend = find("training_backends", trainer.backend, "trainer.backend").create()
    backend.check(job)  # what this engine cannot do of the job
    with _located(job):
        find("samplers", trainer.sampler, "trainer.sampler")
        if trainer.tool_call_parser != "auto":
            find("tool_call_parsers", trainer.tool_call_parser, "trainer.tool_call_parser")
    with _located(job, whole="trainer.data_source"):
        if trainer.data_source is not None or trainer.data_source_options:
            build_source(choose_source(job.training_file, trainer.data_source), trainer.data_source_options)
    with _located(job):
        build_shapers(resolve(job, 1))  # shapers read settings that do not depend on the data


#: ``--set`` overrides: (dotted field, value) pairs, applied in order
Overrides = Sequence[tuple[str, Any]]


def job_from_dict(
    data: Any, base_dir: str | Path | None = None, source: str = "<job>", check_model: bool = True,
    check_files: bool = True, overrides: Overrides = (),
) -> Job:
    """Validate a job given as a dict (the API's way in); relative paths resolve against ``base_dir``.

    ``check_files=False`` skips checking that the data files exist (rows given in memory instead).
    """
    return _build_job(_Document(source, data, {}), Path(base_dir or "."), None, check_model, check_files, overrides)


def load_job(path: str | Path, check_model: bool = True, check_files: bool = True, overrides: Overrides = ()) -> Job:
    """Read a YAML or JSON job file and validate all of it before anything heavy starts.

    Relative paths in it (model, data files, a grader given as a file name) are resolved against
    the job file's folder. ``trainer.output_dir`` stays relative to the working directory, like
    other training tools' output folders. ``overrides`` (``--set``) replace fields first. Raises
    ``JobError`` naming file, line and field.
    """
    path = Path(path)
    if not path.is_file():
        raise JobError("job file does not exist" if not path.exists() else "not a file", str(path))
    return _build_job(_read_document(path), path.parent, None, check_model, check_files, overrides)


def _rewrite(document: _Document, data: dict[str, Any], overrides: Overrides) -> _Document:
    """``data`` with the ``--set`` overrides applied and TRL's names translated, as the document
    the job is validated from (it remembers what was set, and what was written under TRL's names)."""
    try:
        overridden = apply_overrides(data, overrides)
    except OverrideProblem as problem:
        raise JobError(problem.message, OVERRIDE_SOURCE, None, dotted(problem.path) or None) from problem
    document = dataclasses.replace(document, data=data, overridden=overridden)
    try:
        written = translate(data)
    except AliasProblem as problem:
        raise document.error(problem.path, problem.message) from problem
    return dataclasses.replace(document, written=written)


def _build_job(
    document: _Document, base: Path, grader_document: _Document | None, check_model: bool, check_files: bool = True,
    overrides: Overrides = (),
) -> Job:
    data = document.data
    if not isinstance(data, dict):
        raise JobError(f"a job is a mapping of fields, not {type(data).__name__}", document.source, 1)
    document = _rewrite(document, copy.deepcopy(data), overrides)
    data = document.data
    method = data.get("method")
    reinforcement = method.get("reinforcement") if isinstance(method, dict) else None
    if isinstance(reinforcement, dict) and isinstance(reinforcement.get("grader"), str):
        grader_path = _resolve_path(reinforcement["grader"], base)
        if not grader_path.is_file():
            raise JobError(
                f"grader file {grader_path} does not exist", document.source,
                document.line_of(GRADER_PATH), dotted(GRADER_PATH),
            )
        grader_document = _read_document(grader_path)
        reinforcement["grader"] = grader_document.data
    try:
        job = Job.model_validate(data)
    except pydantic.ValidationError as error:
        raise _schema_error(error, document) from error
    local_model = _resolve_path(job.model, base)
    updates: dict[str, Any] = {"model": str(local_model)} if local_model.exists() else {}
    if job.trainer.data_source in FILE_SOURCES:
        updates["training_file"] = _resolve_location(job.training_file, base)
        if job.validation_file is not None:
            updates["validation_file"] = _resolve_location(job.validation_file, base)
    job = job.model_copy(update=updates)
    if check_model:
        snapshot = _model_snapshot(job, document)
        if snapshot is not None:  # a hub id: the job keeps it, the run reads the cached folder
            object.__setattr__(job, MODEL_FOLDER_KEY, snapshot)
        elif "model" not in updates:  # neither a hub id nor there: reported against the job's folder
            job = job.model_copy(update={"model": str(local_model)})
        _check_model(job, document)
    # the parsed file rides along outside the fields: not dumped, not compared, kept by model_copy
    object.__setattr__(job, DOCUMENT_KEY, document)
    if check_files:
        _check_files(job, document)
    _check_grader(job, document, grader_document)
    _check_plugins(job)
    _check_outputs(job)
    _check_precision(job)
    _check_response_format(job)
    return job


def _check_outputs(job: Job) -> None:
    """The loggers in ``report_to`` are installed, and ``push_to_hub`` can reach the hub."""
    from ..hub import hub_offline
    from .loggers import missing_logger

    problem = missing_logger(job.trainer.report_to)
    if problem:
        raise job.error("trainer.report_to", problem)
    if job.trainer.push_to_hub and hub_offline():
        raise job.error(
            "trainer.push_to_hub",
            "HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it, or set push_to_hub: false and upload "
            "final/ later (hf upload REPO RUN_FOLDER/final)",
        )


def _check_response_format(job: Job) -> None:
    """The response format is OpenAI's, and the built-in sampler can enforce its schema."""
    from ..sampling.structured import check_response_format, schema_of

    response_format = job.method.reinforcement.response_format
    with _located(job):
        if job.trainer.sampler == "transformers":
            check_response_format(response_format)
        else:  # another sampler enforces it its own way
            schema_of(response_format)


def _check_precision(job: Job) -> None:
    """A precision the job's device cannot run (Lightning would switch it silently)."""
    from .precision import precision_problem

    problem = precision_problem(job.trainer.precision, job.trainer.accelerator)
    if problem:
        raise job.error("trainer.precision", problem)


# --------------------------------------------------------------------------------------------
# Resolution: every "auto" becomes a number, then the loop's ResolvedSettings.
# --------------------------------------------------------------------------------------------

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
    from .precision import default_dtype

    kwargs = trainer.model_init_kwargs.model_dump(exclude_none=True)
    kwargs.setdefault("dtype", default_dtype(trainer.accelerator))
    return kwargs


def settings_for(job: Job, plan: ResolvedHyperparameters) -> "ResolvedSettings":
    """The loop's concrete settings: ``job`` with the values ``plan`` decided for its "auto"s."""
    from .settings import ResolvedSettings

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
