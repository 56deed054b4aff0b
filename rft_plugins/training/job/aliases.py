"""TRL's and transformers' names in a job's ``trainer`` section, translated where they mean what
ours mean, and refused with the reason where they do not.

A TRL user's ``GRPOConfig`` fields then work as written: ``per_device_train_batch_size`` is our
``micro_batch_size`` (samples per forward/backward), ``num_train_epochs`` OpenAI's ``n_epochs``,
``bf16: true`` the precision ``bf16-mixed``, and so on. ``gradient_accumulation_steps`` has no
field of its own here (a step's samples are split into ``micro_batch_size`` passes), so it is
turned into the prompts per step it implies, and refused when that contradicts ``batch_size``.
The translation runs on the parsed document, before the schema, and records which name the user
wrote, so an error about a translated field names the field as written.
"""

from __future__ import annotations

from typing import Any

Path = tuple[Any, ...]

TRAINER = ("trainer",)
HYPERPARAMETERS = ("method", "reinforcement", "hyperparameters")

#: trainer fields with the same meaning under another name: TRL's name -> (section, our name)
RENAMED: dict[str, Path] = {
    "per_device_train_batch_size": TRAINER + ("micro_batch_size",),
    "num_train_epochs": HYPERPARAMETERS + ("n_epochs",),
    "eval_steps": HYPERPARAMETERS + ("eval_interval",),
    "num_generations_eval": HYPERPARAMETERS + ("eval_samples",),
}

SAMPLER_HINT = (
    "there is no built-in vLLM engine: rollout engines are sampler plugins (trainer.sampler; "
    "docs/training.md, 'Samplers')"
)
BATCH_HINT = (
    "a step samples all its prompts at once: set method.reinforcement.hyperparameters.batch_size "
    "(prompts per step) and trainer.micro_batch_size (samples per forward/backward)"
)
#: TRL / transformers fields that have no counterpart, with what to write instead
HINTS: dict[str, str] = {
    "per_device_eval_batch_size": "validation samples batch_size prompts at a time; there is no separate setting",
    "generation_batch_size": BATCH_HINT,
    "steps_per_generation": BATCH_HINT,
    "optim": "the optimiser is AdamW (with float32 master weights of 16-bit weights: trainer.master_weights)",
    "eval_strategy": "validation runs every method.reinforcement.hyperparameters.eval_interval steps and at the last",
    "save_strategy": "resume checkpoints are saved every trainer.save_steps steps (default eval_interval)",
    "save_total_limit": "the best trainer.save_top_k models are kept in best/, and one resume checkpoint",
    "logging_dir": "every log goes to the run folder (trainer.output_dir)",
    "reward_funcs": "a job has one grader (method.reinforcement.grader): combine several in a multi grader",
    "reward_weights": "combine graders with weights in a multi grader's calculate_output",
    "model_name_or_path": "the model is the job's top-level model field",
    "torch_dtype": "write trainer.model_init_kwargs.dtype",
    "use_vllm": SAMPLER_HINT,
}


class AliasProblem(ValueError):
    """A TRL name that cannot be translated: the document path as written, and why."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def hint(name: str) -> str | None:
    """What to write instead of the TRL / transformers field ``name``, if it is one we know."""
    return HINTS.get(name) or (SAMPLER_HINT if name.startswith("vllm_") else None)


def _section(data: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The mapping at ``path``, created where missing; None when something else is in the way."""
    for key in path:
        child = data.setdefault(key, {})
        if not isinstance(child, dict):
            return None
        data = child
    return data


def _move(data: dict[str, Any], trainer: dict[str, Any], name: str, target: Path, written: dict[Path, Path]) -> None:
    """``trainer[name]`` to ``target``; refused when the job already sets ``target`` itself."""
    value = trainer.pop(name)
    section = _section(data, target[:-1])
    if section is None:  # a section of the wrong type: the schema reports it
        trainer[name] = value
        return
    ours = ".".join(target)
    if target[-1] in section:
        raise AliasProblem(TRAINER + (name,), f"{name} is TRL's name for {ours}, which the job sets too; keep one")
    section[target[-1]] = value
    written[target] = TRAINER + (name,)


def _precision(trainer: dict[str, Any], written: dict[Path, Path]) -> None:
    """``bf16`` / ``fp16`` (transformers' mixed precision flags) as Lightning's precision."""
    flags = {name: trainer.pop(name) for name in ("bf16", "fp16") if name in trainer}
    if not flags:
        return
    where = TRAINER + (next(iter(flags)),)
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise AliasProblem(TRAINER + (name,), f"must be true or false, not {value!r}")
    if flags.get("bf16") and flags.get("fp16"):
        raise AliasProblem(where, "bf16 and fp16 are both true; choose one")
    if "precision" in trainer:
        names = "/".join(flags)
        raise AliasProblem(where, f"{names} is transformers' trainer.precision, which the job sets too; keep one")
    trainer["precision"] = "bf16-mixed" if flags.get("bf16") else "16-mixed" if flags.get("fp16") else "32-true"
    written[TRAINER + ("precision",)] = where


def _flag(trainer: dict[str, Any], name: str) -> bool | None:
    """A boolean TRL flag, removed from the section (None when absent)."""
    if name not in trainer:
        return None
    value = trainer.pop(name)
    if not isinstance(value, bool):
        raise AliasProblem(TRAINER + (name,), f"must be true or false, not {value!r}")
    return value


def _accumulation(data: dict[str, Any], trainer: dict[str, Any], written: dict[Path, Path]) -> None:
    """``gradient_accumulation_steps`` as the prompts per step it implies with TRL's batch sizes:
    ``per_device_train_batch_size x steps x devices`` samples, ``/ num_generations`` prompts."""
    if "gradient_accumulation_steps" not in trainer:
        return
    where = TRAINER + ("gradient_accumulation_steps",)
    steps = trainer.pop("gradient_accumulation_steps")
    micro, generations = trainer.get("micro_batch_size"), trainer.get("num_generations", 4)
    devices = trainer.get("devices", 1)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise AliasProblem(where, f"must be a whole number of at least 1, not {steps!r}")
    if not isinstance(micro, int) or isinstance(micro, bool):
        raise AliasProblem(where, "needs per_device_train_batch_size (samples per pass): TRL's step is "
                           "per_device_train_batch_size x gradient_accumulation_steps samples per device")
    if not isinstance(devices, int) or not isinstance(generations, int) or generations < 1:
        raise AliasProblem(where, "cannot be translated when devices or num_generations is not a number; " + BATCH_HINT)
    samples = micro * steps * devices
    if samples % generations:
        raise AliasProblem(
            where, f"{micro} x {steps} x {devices} device(s) = {samples} samples per step are not whole groups of "
            f"num_generations {generations}",
        )
    prompts = samples // generations
    hyperparameters = _section(data, HYPERPARAMETERS)
    given = hyperparameters.get("batch_size", "auto") if hyperparameters is not None else "auto"
    if given not in ("auto", prompts):
        raise AliasProblem(
            where, f"makes {prompts} prompts per step ({samples} samples / {generations} generations), but "
            f"method.reinforcement.hyperparameters.batch_size is {given}; keep one of them",
        )
    if hyperparameters is not None:
        hyperparameters["batch_size"] = prompts
        written.setdefault(HYPERPARAMETERS + ("batch_size",), where)


def translate(data: dict[str, Any]) -> dict[Path, Path]:
    """Rewrite TRL / transformers names in ``data`` (a parsed job, changed in place) as ours.

    Returns, for each field written under another name, its path as written. Raises
    ``AliasProblem`` for a name whose meaning differs in a way that cannot be translated.
    """
    trainer = data.get("trainer")
    written: dict[Path, Path] = {}
    if not isinstance(trainer, dict):
        return written
    epochs = trainer.get("num_train_epochs")
    if isinstance(epochs, float):  # TRL allows a fraction of an epoch; OpenAI's n_epochs does not
        if not epochs.is_integer():
            message = f"n_epochs counts whole passes over the data, not {epochs}"
            raise AliasProblem(TRAINER + ("num_train_epochs",), message)
        trainer["num_train_epochs"] = int(epochs)
    for name, target in RENAMED.items():
        if name in trainer:
            _move(data, trainer, name, target, written)
    _precision(trainer, written)
    if _flag(trainer, "use_cpu"):
        if trainer.get("accelerator", "cpu") != "cpu":
            raise AliasProblem(TRAINER + ("use_cpu",), "use_cpu is true but trainer.accelerator is not cpu; keep one")
        trainer["accelerator"] = "cpu"
        written[TRAINER + ("accelerator",)] = TRAINER + ("use_cpu",)
    if _flag(trainer, "use_vllm"):
        raise AliasProblem(TRAINER + ("use_vllm",), SAMPLER_HINT)
    _accumulation(data, trainer, written)
    if trainer.get("top_k") == 0 and not isinstance(trainer.get("top_k"), bool):
        trainer["top_k"] = None  # TRL's 0: no top-k filtering
    return written
