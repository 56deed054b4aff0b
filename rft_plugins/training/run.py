"""``rft train`` as a function: job + data -> a training backend's run -> the outputs people expect.

The job, its data and its run folder are checked here, whatever the backend (``trainer.backend``:
the built-in Lightning loop, ``fit_with_lightning`` below, or a plugin's, such as TRL's); every
backend writes the same run folder (``run_outputs``), which holds, when training is done::

    metrics.csv, hparams.yaml   every logged metric, one row per step (Lightning CSVLogger)
    tensorboard/, wandb/, mlruns/   the same for the loggers in trainer.report_to
    checkpoints/last.ckpt       the Lightning checkpoint ``--resume`` continues from
    best/step-NNNNNN/           the best models by valid_reward_mean, as Hugging Face folders (with a model card)
    final/                      the model at the last step, as a Hugging Face folder (with a model card)
    reward_curve.png            train and valid reward against step
    samples.jsonl, samples.md   graded validation samples (prompt, completion, reward, details)
    report.html                 the run report: curves, error flags, timing, best/worst samples (rft report)
    run.json, summary.json      the job as run, and what came out of it
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..data.loading import load_rows
from .backends import RunRequest, TrainingBackend, training_backend
from .checkpoints import LAST_CHECKPOINT, best_checkpoints
from .job import (
    DOCUMENT_KEY, FILE_SOURCES, Job, JobError, ResolvedHyperparameters, job_from_dict, load_job,
    resolve_hyperparameters, settings_for,
)
from .run_folder import RUN_OUTPUTS, RunError, RunFolderPlan, plan_run_folder
from .run_outputs import (
    RunContext, RunResult, finish_run, hyperparameters, run_context, start_run_folder, write_outputs,
)
from .settings import ResolvedSettings

logger = logging.getLogger(__name__)

__all__ = ["RUN_OUTPUTS", "RunContext", "RunError", "RunResult", "train"]

#: job fields a resumed run may change (they do not change what the finished run is)
RESUMABLE_CHANGES = {("trainer", "output_dir"), ("trainer", "max_steps")}


def is_main_process() -> bool:
    """False in the extra processes a data-parallel launcher (Lightning's, torchrun) started.

    Lightning starts them by re-running the same command with ``LOCAL_RANK`` (torchrun: ``RANK``)
    set; only the first process may prepare the run folder.
    """
    for variable in ("RANK", "LOCAL_RANK"):
        if variable in os.environ:
            return int(os.environ[variable]) == 0
    return True


def _as_job(job: Job | dict | str | Path, check_files: bool, overrides: Sequence[tuple[str, Any]]) -> Job:
    if isinstance(job, Job):
        if overrides:
            raise ValueError("overrides apply to a job file or dict, not to a loaded Job")
        return job
    if isinstance(job, dict):
        return job_from_dict(job, check_files=check_files, overrides=overrides)
    return load_job(job, check_files=check_files, overrides=overrides)


def _with_overrides(job: Job, output_dir: str | Path | None, max_steps: int | None) -> Job:
    trainer: dict[str, Any] = {}
    if output_dir is not None:
        trainer["output_dir"] = str(output_dir)
    if max_steps is not None:
        if max_steps < 1:
            raise JobError("must be at least 1", field="trainer.max_steps")
        trainer["max_steps"] = max_steps
    return job.model_copy(update={"trainer": job.trainer.model_copy(update=trainer)}) if trainer else job


def _load_split(given: Iterable[dict] | None, location: str | None, job: Job) -> list[dict[str, Any]]:
    """In-memory rows when given, else the job's file for that split (none: no rows)."""
    if given is not None:
        return load_rows(given, "python")
    if location is None:
        return []
    return load_rows(location, job.trainer.data_source, job.trainer.data_source_options, job.built_source())


def _checkpoint_step(path: Path) -> int:
    """The step a Lightning checkpoint was saved at, without reading its tensors (memory-mapped)."""
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=False, mmap=True)["global_step"])


def _differences(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), path + (key,))
        return found
    return [] if old == new or path in RESUMABLE_CHANGES else [".".join(path)]


def _job_inputs(job: Job) -> list[Path]:
    """The files a job reads (job file, model folder, data files): a run folder may not hold them."""
    document = job.__dict__.get(DOCUMENT_KEY)
    inputs = [Path(document.source)] if document is not None and Path(document.source).exists() else []
    inputs.append(Path(job.model_folder))
    if job.trainer.data_source in FILE_SOURCES:  # hub dataset ids are no paths here
        inputs += [Path(name) for name in (job.training_file, job.validation_file) if name and Path(name).exists()]
    return inputs


def _check_chat_template(job: Job) -> None:
    """The tokenizer renders chat prompts: checked before the run folder is touched, where the
    first training step would find out only after it was started."""
    from .model_folder import chat_template_problem

    problem = chat_template_problem(job.model_folder)
    if problem:
        raise job.error("model", problem)


def _check_folder(job: Job, resume: bool, overwrite: bool, backend: TrainingBackend) -> RunFolderPlan:
    """Check the run folder before anything heavy starts (``run_folder.plan_run_folder``), and
    that a resumed run is the same job."""
    plan = plan_run_folder(job.trainer.output_dir, _job_inputs(job), resume, overwrite, backend.last_checkpoint)
    if plan.resume_from is not None:
        assert plan.record is not None  # a folder with a checkpoint to resume holds its run record
        changed = _differences(plan.record.get("job"), job.model_dump(mode="json"))
        if changed:
            raise RunError(
                f"the job differs from the run in {plan.folder} ({', '.join(changed[:5])}); "
                "resume with the same job, or start a new run in another --output-dir"
            )
    return plan


#: ``trainer`` fields handed to ``lightning.Trainer``, in the order a rejection is matched to them
LIGHTNING_FIELDS = ("precision", "strategy", "accelerator", "devices")


def _lightning_field(message: str) -> str:
    """The ``trainer`` field a Lightning error is about: one it quotes as an argument first
    (`` `devices` ``, ``strategy=``), else one it mentions, else the section."""
    text = message.lower()
    for pattern in ("`{}", "{}=", "{}"):
        for name in LIGHTNING_FIELDS:
            if pattern.format(name) in text:
                return f"trainer.{name}"
    return "trainer"


def _build_module_and_trainer(
    job: Job, plan: ResolvedHyperparameters, settings: ResolvedSettings, data: tuple[list[dict], list[dict]],
    context: RunContext, progress_bar: bool,
) -> tuple[Any, Any]:
    """The ``RFTModule`` and its ``lightning.Trainer``. What they reject of the job (a sampler's
    options, a device setting, a batch that does not split over the processes) is a ``JobError``
    naming the job file, line and field, like the problems found while loading the job."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from ..sampling import SamplerConfigError
    from ..sampling.tool_calls import ToolCallParserError
    from ..shaping import ShaperConfigError
    from .module import RFTModule

    train_data, valid_data = data
    try:
        trainer = build_trainer(job, plan, context.output_dir, context, progress_bar, has_validation=bool(valid_data))
    except (ValueError, TypeError, MisconfigurationException) as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise job.error(_lightning_field(text), f"rejected by Lightning: {text}") from error
    _check_batch_split(job, settings, trainer.world_size)
    try:
        module = RFTModule(settings, train_data, valid_data, job=job)
    except (SamplerConfigError, ShaperConfigError, ToolCallParserError) as error:
        raise job.error(error.field, error.message) from error
    return module, trainer


def _check_batch_split(job: Job, settings: ResolvedSettings, processes: int) -> None:
    """A step's prompts split evenly over the processes, and each process's samples into whole
    micro-batches (checked before the model loads)."""
    if settings.batch_size % processes:
        raise job.error(
            "method.reinforcement.hyperparameters.batch_size",
            f"{settings.batch_size} prompts per step do not split evenly over {processes} processes; "
            f"use a multiple of {processes}",
        )
    samples = settings.batch_size // processes * settings.num_generations
    micro = settings.micro_batch_size
    if micro is not None and samples % micro:
        divisors = [n for n in range(1, samples + 1) if samples % n == 0]
        raise job.error(
            "trainer.micro_batch_size",
            f"{micro} does not divide the {samples} samples of a step on each process "
            f"({settings.batch_size} prompts x {settings.num_generations} generations"
            f"{f' / {processes} processes' if processes > 1 else ''}); use one of {', '.join(map(str, divisors))}",
        )


def train(
    job: Job | dict | str | Path,
    resume: bool = False,
    output_dir: str | Path | None = None,
    max_steps: int | None = None,
    train_rows: Iterable[dict] | None = None,
    valid_rows: Iterable[dict] | None = None,
    overwrite: bool = False,
    progress_bar: bool = True,
    overrides: Sequence[tuple[str, Any]] = (),
) -> RunResult:
    """Run an RFT job to its last step (or early stop) and write the run folder's outputs.

    ``job`` is a ``Job``, a job dict or a job file; ``overrides`` set fields of a file or dict
    first (``rft train --set``: ``[("trainer.backend", "trl")]``). ``train_rows`` / ``valid_rows``
    replace the job's files with in-memory rows (the ``python`` data source). ``resume``
    continues from the folder's last checkpoint to the same final step; resuming a finished run
    returns its result without training.
    """
    with _transformers_progress(progress_bar):
        return _train(job, resume, output_dir, max_steps, train_rows, valid_rows, overwrite, progress_bar, overrides)


@contextlib.contextmanager
def _transformers_progress(enabled: bool) -> Iterator[None]:
    """Without a progress bar, transformers' own (loading and writing weights) stay quiet too."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    if not enabled:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            transformers_logging.enable_progress_bar()


def _train(
    job: Job | dict | str | Path,
    resume: bool,
    output_dir: str | Path | None,
    max_steps: int | None,
    train_rows: Iterable[dict] | None,
    valid_rows: Iterable[dict] | None,
    overwrite: bool,
    progress_bar: bool,
    overrides: Sequence[tuple[str, Any]],
) -> RunResult:
    started = time.perf_counter()
    in_memory = train_rows is not None or valid_rows is not None
    job = _with_overrides(_as_job(job, not in_memory, overrides), output_dir, max_steps)
    backend = training_backend(job.trainer.backend)
    train_data = _load_split(train_rows, job.training_file, job)
    valid_data = _load_split(valid_rows, job.validation_file, job)
    plan = resolve_hyperparameters(job, len(train_data))
    settings = settings_for(job, plan)
    _check_chat_template(job)
    main = is_main_process()
    folder_plan: RunFolderPlan | None = None
    if main:
        folder_plan = _check_folder(job, resume, overwrite, backend)
        folder, checkpoint = folder_plan.folder, folder_plan.resume_from
        if checkpoint is not None and (folder / "summary.json").is_file():
            logger.warning("the run in %s already finished: nothing to resume", folder)
            return RunResult.from_dict(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
    else:  # a process launched for data parallelism: the first one prepares the folder
        folder = Path(job.trainer.output_dir).resolve()
        checkpoint = backend.last_checkpoint(folder) if resume else None
    request = RunRequest(job, plan, settings, train_data, valid_data, folder, folder_plan, checkpoint, progress_bar,
                         started)
    return backend.run(request)


def fit_with_lightning(request: RunRequest) -> RunResult:
    """The built-in backend: ``RFTModule`` under a ``lightning.Trainer``, to the last step."""
    import lightning

    from ..plugins import get_plugin_manager

    job, plan, settings, folder, checkpoint = (
        request.job, request.plan, request.settings, request.folder, request.checkpoint
    )
    valid_data, progress_bar = request.valid_data, request.progress_bar
    lightning.seed_everything(settings.seed, workers=True, verbose=False)
    context = run_context(request)
    module, trainer = _build_module_and_trainer(
        job, plan, settings, (request.train_data, valid_data), context, progress_bar
    )
    resumed_from = None if checkpoint is None else _checkpoint_step(checkpoint)
    start_run_folder(request, resumed_from)  # everything checked: only now does the run folder change
    for run_logger in trainer.loggers:  # hparams.yaml, and TensorBoard's hparams tab
        run_logger.log_hyperparams(hyperparameters(request))
    with context.stop.listening(enabled=trainer.world_size == 1):  # a signal: checkpoint, then RunInterrupted
        if checkpoint is None and valid_data and job.trainer.eval_on_start:
            from .outputs import baseline_rows

            with baseline_rows(trainer.loggers):  # step 0: every curve starts with the baseline
                trainer.validate(module, verbose=False)
        trainer.fit(module, ckpt_path=str(checkpoint) if checkpoint is not None else None)

    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if value.numel() == 1}
    files = {}
    if trainer.is_global_zero:
        last = folder / "checkpoints" / LAST_CHECKPOINT
        files = write_outputs(request, module.save_hf, module.validation_records, int(trainer.global_step), metrics,
                              last)
    get_plugin_manager().hook.rft_on_train_end(metrics=metrics, output_dir=str(folder), module=module)
    result = RunResult(
        output_dir=folder,
        final_step=int(trainer.global_step),
        total_steps=plan.total_steps,
        stopped_early=context.stopped_early,
        resumed_from_step=resumed_from,
        metrics={name: value for name, value in metrics.items() if math.isfinite(value)},
        best_checkpoints=best_checkpoints(context.best_dir),
        files=files,
        seconds=round(time.perf_counter() - request.started, 2),
    )
    return finish_run(request, result) if trainer.is_global_zero else result


def build_trainer(
    job: Job, plan: ResolvedHyperparameters, folder: Path, context: RunContext, progress_bar: bool, has_validation: bool
) -> Any:
    """The ``lightning.Trainer`` of a run: steps, validation cadence (every ``eval_interval`` steps
    and the last), devices, loggers, checkpoints."""
    import lightning

    from .callbacks import AtomicCheckpointIO, ResumeCheckpoint, RewardProgressBar, ValidateFinalStep
    from .loggers import lightning_loggers
    from .precision import resolve_precision

    from .events import EVENTS_FILE, OpenAIEvents

    validation_interval = plan.eval_interval if has_validation else None
    callbacks: list[Any] = [
        OpenAIEvents(folder / EVENTS_FILE, job.grader),  # first: a step's event line precedes its checkpoint
        # before ResumeCheckpoint: the checkpoint after a validation holds the history it ranked
        *([context.best] if context.best is not None else []),
        ResumeCheckpoint(
            folder / "checkpoints", job.trainer.save_steps or plan.eval_interval, validation_interval, context.stop
        ),
    ]
    if has_validation:
        callbacks.append(ValidateFinalStep())
    if progress_bar:
        callbacks.append(RewardProgressBar())
    return lightning.Trainer(
        max_steps=plan.total_steps,
        max_epochs=-1,  # max_steps ends the run; epochs are only the data order
        val_check_interval=plan.eval_interval,
        check_val_every_n_epoch=None,  # so val_check_interval counts steps across epochs
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_validation else 0,
        accelerator=job.trainer.accelerator,
        devices=job.trainer.devices,
        strategy=job.trainer.strategy,
        precision=resolve_precision(job.trainer.precision, job.trainer.accelerator),
        logger=lightning_loggers(job, folder),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=False,  # ResumeCheckpoint and BestCheckpoints do it
        enable_progress_bar=progress_bar,
        log_every_n_steps=job.trainer.logging_steps,
        default_root_dir=str(folder),
    )

