"""What a job's fields must satisfy beyond their types, checked while it loads so that a run never
fails on a setting after minutes of model loading: the model folder, the data files, the grader,
the plugins the trainer names, the loggers, the precision for the device, the response format.
Every problem is a ``JobError`` at the field's line in the job file."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ...errors import ConfigError, GraderConfigError, JobError
from ...fields import dotted, path_of
from ...graders.build import build_grader
from ..model_folder import weights_problem
from .document import GRADER_PATH, Document
from .resolution import resolve
from .schema import GRADER_KEY, SOURCE_KEY, Job

#: data sources that read the job's training/validation files from disk
FILE_SOURCES = {None, "jsonl", "hf_datasets"}


def check_job(job: Job, document: Document, grader_document: Document | None, check_files: bool = True) -> None:
    """Every check but the model's (``check_model_folder``), in the order a user fixes things: the data
    files (unless rows come in memory), the grader, the plugins, outputs, precision, the learning-rate
    schedule, the response format."""
    if check_files:
        _check_files(job, document)
    _check_grader(job, document, grader_document)
    _check_plugins(job)
    _check_outputs(job)
    _check_precision(job)
    _check_schedule(job)
    _check_response_format(job)


def check_model_folder(job: Job, document: Document) -> None:
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

def _check_files(job: Job, document: Document) -> None:
    from ...data.hf_datasets import hub_dataset
    from ...hub import HubError, dataset_snapshot

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


def _grader_error(document: Document, grader_document: Document | None, field: str, message: str) -> JobError:
    """A problem with the grader's ``field``: in its own file, or in the job (or on the command line)."""
    if grader_document is None:
        return document.error(GRADER_PATH + path_of(field), message)
    name = ".".join(part for part in (dotted(GRADER_PATH), field) if part)
    return JobError(message, grader_document.source, grader_document.line_of(path_of(field)), name)


def _check_grader(job: Job, document: Document, grader_document: Document | None) -> None:
    grader = job.grader
    if grader.get("type") == "label_model":
        message = "label_model cannot be the top-level RFT grader (OpenAI's rule); put it inside a multi grader"
        raise _grader_error(document, grader_document, "type", message)
    try:
        built = build_grader(grader)
    except GraderConfigError as error:
        raise _grader_error(document, grader_document, error.field or "", error.message) from error
    object.__setattr__(job, GRADER_KEY, built)  # the run grades with it (``Job.built_grader``)


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
    from ...data.loading import build_source, choose_source
    from ...registry import find
    from ...shaping import build_shapers

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
            source = build_source(choose_source(job.training_file, trainer.data_source), trainer.data_source_options)
            object.__setattr__(job, SOURCE_KEY, source)  # the run reads with it (``Job.built_source``)
    with _located(job):
        build_shapers(resolve(job, 1))  # shapers read settings that do not depend on the data


def _check_outputs(job: Job) -> None:
    """The loggers in ``report_to`` are installed, and ``push_to_hub`` can reach the hub."""
    from ...hub import hub_offline
    from ..loggers import missing_logger

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
    from ...sampling.structured import check_response_format, schema_of

    response_format = job.method.reinforcement.response_format
    with _located(job):
        if job.trainer.sampler == "transformers":
            check_response_format(response_format)
        else:  # another sampler enforces it its own way
            schema_of(response_format)


def _check_schedule(job: Job) -> None:
    """A warm-up the schedule would ignore: transformers' ``constant`` has none (TRL ignores it too)."""
    trainer = job.trainer
    if trainer.lr_scheduler_type == "constant" and (trainer.warmup_steps or trainer.warmup_ratio):
        field = "trainer.warmup_steps" if trainer.warmup_steps else "trainer.warmup_ratio"
        raise job.error(field, "the constant schedule has no warm-up; set lr_scheduler_type: constant_with_warmup")


def _check_precision(job: Job) -> None:
    """A precision the job's device cannot run (Lightning would switch it silently)."""
    from ..precision import precision_problem

    problem = precision_problem(job.trainer.precision, job.trainer.accelerator)
    if problem:
        raise job.error("trainer.precision", problem)
