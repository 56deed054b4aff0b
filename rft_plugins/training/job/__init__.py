"""The job file: what ``rft train`` reads, checked before anything heavy starts.

- ``schema``: the fields (OpenAI's fine-tuning job plus ``model`` and ``trainer``), as pydantic models;
- ``aliases``: TRL's and transformers' names for our fields, translated or refused;
- ``overrides``: ``--set FIELD=VALUE`` from the command line;
- ``document``: the parsed file with the line of every key, so an error names file, line and field;
- ``loading`` and ``checks``: ``load_job`` / ``job_from_dict``, and what the fields must satisfy;
- ``resolution`` and ``settings``: every ``"auto"`` decided, then the loop's ``ResolvedSettings``.

Import from here; the modules' layout may change.
"""

from ...errors import JobError
from .checks import FILE_SOURCES
from .loading import Overrides, job_from_dict, load_job
from .resolution import (
    AUTO_MAX_BATCH_SIZE,
    AUTO_MAX_EPOCHS,
    AUTO_TARGET_STEPS,
    AUTO_VALIDATIONS,
    REASONING_EFFORT_LENGTH,
    ResolvedHyperparameters,
    model_init_kwargs,
    resolve,
    resolve_hyperparameters,
    settings_for,
)
from .schema import (
    DOCUMENT_KEY,
    MAX_LEARNING_RATE,
    MAX_LEARNING_RATE_MULTIPLIER,
    MAX_SEED,
    MODEL_FOLDER_KEY,
    Hyperparameters,
    Job,
    LoraSettings,
    Method,
    ModelInitKwargs,
    Reinforcement,
    TrainerSettings,
)

__all__ = [
    "AUTO_MAX_BATCH_SIZE", "AUTO_MAX_EPOCHS", "AUTO_TARGET_STEPS", "AUTO_VALIDATIONS", "DOCUMENT_KEY", "FILE_SOURCES",
    "MAX_LEARNING_RATE", "MAX_LEARNING_RATE_MULTIPLIER", "MAX_SEED", "MODEL_FOLDER_KEY", "REASONING_EFFORT_LENGTH",
    "Hyperparameters", "Job", "JobError", "LoraSettings", "Method", "ModelInitKwargs", "Overrides", "Reinforcement",
    "ResolvedHyperparameters", "TrainerSettings", "job_from_dict", "load_job", "model_init_kwargs", "resolve",
    "resolve_hyperparameters", "settings_for",
]
