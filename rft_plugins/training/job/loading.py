"""Loading a job: a YAML or JSON file (or a dict, the API's way in), with ``--set`` overrides and
TRL's names applied, validated by the schema, its relative paths resolved against the job's folder,
then checked (``checks``) before anything heavy starts."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Sequence

import pydantic

from ...errors import JobError
from ...fields import dotted
from .aliases import AliasProblem, translate
from .checks import FILE_SOURCES, check_job, check_model_folder
from .document import GRADER_PATH, OVERRIDE_SOURCE, Document, read_document, schema_error
from .overrides import OverrideProblem, apply_overrides
from .schema import DOCUMENT_KEY, MODEL_FOLDER_KEY, Job


def _resolve_path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _model_snapshot(job: Job, document: Document) -> str | None:
    """The local snapshot folder of a ``model`` given as a hub id (None for a local path)."""
    from ...hub import HubError, is_repo_id, model_snapshot

    if Path(job.model).exists() or not is_repo_id(job.model):
        return None
    try:
        return str(model_snapshot(job.model, job.trainer.model_init_kwargs.model_dump().get("revision")))
    except HubError as error:
        raise document.error(("model",), error.args[0]) from error

def _resolve_location(value: str, base: Path) -> str:
    """A data file's path against the job's folder; a hub dataset id (no such file) stays as it is."""
    from ...data.hf_datasets import hub_dataset

    path = _resolve_path(value, base)
    return value if not path.exists() and hub_dataset(value) is not None else str(path)


#: ``--set`` overrides: (dotted field, value) pairs, applied in order
Overrides = Sequence[tuple[str, Any]]


def job_from_dict(
    data: Any, base_dir: str | Path | None = None, source: str = "<job>", check_model: bool = True,
    check_files: bool = True, overrides: Overrides = (),
) -> Job:
    """Validate a job given as a dict (the API's way in); relative paths resolve against ``base_dir``.

    ``check_files=False`` skips checking that the data files exist (rows given in memory instead).
    """
    return _build_job(Document(source, data, {}), Path(base_dir or "."), None, check_model, check_files, overrides)


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
    return _build_job(read_document(path), path.parent, None, check_model, check_files, overrides)


def _rewrite(document: Document, data: dict[str, Any], overrides: Overrides) -> Document:
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
    document: Document, base: Path, grader_document: Document | None, check_model: bool, check_files: bool = True,
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
        grader_document = read_document(grader_path)
        reinforcement["grader"] = grader_document.data
    try:
        job = Job.model_validate(data)
    except pydantic.ValidationError as error:
        raise schema_error(error, document) from error
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
        check_model_folder(job, document)
    # the parsed file rides along outside the fields: not dumped, not compared, kept by model_copy
    object.__setattr__(job, DOCUMENT_KEY, document)
    check_job(job, document, grader_document, check_files)
    return job
