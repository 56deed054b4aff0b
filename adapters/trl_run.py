"""One ``rft train`` run on TRL's ``GRPOTrainer`` (the ``trl`` backend; see ``trl_backend.py``).

The prompts are the loop's own: each dataset row travels as JSON in TRL's ``prompt`` column and
becomes token ids through the same chat template and left cut (``sampling.prompts.encode_prompt``);
completions with tool calls are parsed by the job's tool-call parser, as the loop's sampler does.
The job's grader grades through the adapter's reward function (``trainer_state`` included); its
grades also make the loop's metrics (``trl_metrics.py``). Validation fires the loop's
``rft_on_validation_end`` hook, then the loop's ``BestCheckpoints`` keeps ``best/`` and stops
early as it does for the loop; its state (the validation history) is kept in each checkpoint
folder, so a resumed run continues it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

from rft_plugins.graders.types import Sample, item_of
from rft_plugins.plugins import get_plugin_manager
from rft_plugins.training.backends import RunRequest
from rft_plugins.training.checkpoints import best_checkpoints
from rft_plugins.training.events import EVENTS_FILE, EventsFile
from rft_plugins.training.interrupts import RunInterrupted
from rft_plugins.training.loggers import DEFAULT_PROJECT, mlflow_tracking_uri, run_name
from rft_plugins.training.run_outputs import (
    RunContext, RunResult, finish_run, hyperparameters, run_context, start_run_folder, write_outputs,
)
from rft_plugins.training.settings import ResolvedSettings

from .trl import reward_func
from .trl_config import config_kwargs
from .trl_metrics import GradeLog, PhaseClock, SUMMARY_KEYS, memory_metrics, training_row

logger = logging.getLogger(__name__)

#: a validation's records kept in each TRL checkpoint, so a resumed run's samples.jsonl has them all
RECORDS_FILE = "rft_validation_records.json"
#: ``BestCheckpoints.state_dict()`` kept in each TRL checkpoint, so early stopping resumes exactly
BEST_STATE_FILE = "rft_best_checkpoints.json"


def trainer_class() -> type:
    """``GRPOTrainer`` with the loop's prompts and the step's phases timed."""
    from trl import GRPOTrainer

    from rft_plugins.sampling.prompts import encode_prompt

    class RFTGRPOTrainer(GRPOTrainer):
        max_prompt_length: int | None = None
        clock: PhaseClock | None = None

        def _tokenize_prompts(self, prompts: list) -> Any:
            ids = [encode_prompt(self.processing_class, json.loads(row), self.max_prompt_length) for row in prompts]
            return ids, None, {}

        def _timed(self, phase: str, call: Any, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args)
            finally:
                if self.clock is not None and self.model is not None and self.model.training:  # the training step's, not validation's
                    self.clock.current[phase] += time.perf_counter() - started

        def _generate(self, prompts: list) -> Any:
            return self._timed("sampling", super()._generate, prompts)

        def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
            return self._timed("grading", super()._calculate_rewards, inputs, prompts, completions, completion_ids_list)

    return RFTGRPOTrainer


class _TrainerView:
    """``module.trainer`` for the lifecycle hooks: ``should_stop`` and ``is_global_zero``
    (``rft_plugins.training.lifecycle.TrainerControl``)."""

    def __init__(self, trainer: Any):
        self._trainer = trainer
        self.control: Any = None

    @property
    def is_global_zero(self) -> bool:
        return self._trainer.is_world_process_zero()

    @property
    def should_stop(self) -> bool:
        return bool(self.control is not None and self.control.should_training_stop)

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        if self.control is not None:
            self.control.should_training_stop = value


class TRLModule:
    """The ``module`` the lifecycle hooks get under this backend (``rft_plugins.training.lifecycle.RunModule``):
    ``trainer`` (``should_stop``), ``model``, ``tokenizer``, ``settings`` and ``save_hf``."""

    def __init__(self, trainer: Any, settings: ResolvedSettings):
        self.trl_trainer = trainer
        self.trainer = _TrainerView(trainer)
        self.settings = settings

    @property
    def model(self) -> Any:
        return self.trl_trainer.model

    @property
    def tokenizer(self) -> Any:
        return self.trl_trainer.processing_class

    def save_hf(self, path: str | Path) -> None:
        """The model (the adapter alone with LoRA) and tokenizer, as the loop saves them."""
        self.model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))


class Samples:
    """The reward function's ``prepare`` and ``on_grades``: rows from TRL's ``prompt`` column,
    completions parsed for tool calls, and every grade kept for the metrics."""

    def __init__(self, tokenizer: Any, settings: Any, grades: GradeLog):
        from rft_plugins.sampling.tool_calls import build_tool_call_parser

        self.tokenizer, self.grades = tokenizer, grades
        self.parser = build_tool_call_parser(settings.tool_call_parser, tokenizer, settings.tool_call_parser_options)
        self.max_prompt_length = settings.max_prompt_length
        self.eos = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        self.trainer: Any = None
        self._batch: tuple[list[dict[str, Any]], list[Sample]] = ([], [])

    def _sample(self, row: dict[str, Any], text: str, ids: list[int]) -> Sample:
        tools = row.get("tools")
        if not tools or self.parser is None:
            return Sample.from_text(text)
        from rft_plugins.sampling.prompts import encode_prompt

        prompt = self.tokenizer.decode(encode_prompt(self.tokenizer, row, self.max_prompt_length),
                                       skip_special_tokens=False)
        completion = self.tokenizer.decode([i for i in ids if i != self.tokenizer.pad_token_id],
                                           skip_special_tokens=False)
        parsed = self.parser.parse(completion, prompt, tools)
        return Sample.from_text(parsed.text, parsed.tool_calls)

    def prepare(self, prompts: Any, completions: Any, columns: dict[str, Any]) -> tuple[list[Sample], list[dict]]:
        rows = [json.loads(prompt) for prompt in prompts]
        ids = columns.get("completion_ids") or [[] for _ in completions]
        samples = [self._sample(row, text, row_ids) for row, text, row_ids in zip(rows, completions, ids)]
        self._batch = (rows, samples)
        return samples, [item_of(row) for row in rows]

    def on_grades(self, grades: list[Any], columns: dict[str, Any]) -> None:
        rows, samples = self._batch
        ids = columns.get("completion_ids") or [[] for _ in grades]
        split = "train" if self.trainer.model.training else "valid"
        truncated = [not row_ids or row_ids[-1] not in self.eos for row_ids in ids]
        self.grades.add(split, grades, samples, rows, [len(row_ids) for row_ids in ids], truncated)


def _callback(
    request: RunRequest, module: TRLModule, context: RunContext, grades: GradeLog, clock: PhaseClock, csv: Any
) -> Any:
    """The run's ``TrainerCallback``: the loop's metric names in every logger and ``metrics.csv``,
    validation (records, hooks, best checkpoints, the last step's), stop signals, records and the
    best checkpoints' state in checkpoints."""
    from transformers import TrainerCallback

    job, plan = request.job, request.plan
    grader_name = str(job.grader.get("name") or job.grader.get("type"))
    validates = bool(request.valid_data)
    stop, best = context.stop, context.best
    events = EventsFile(request.folder / EVENTS_FILE, job.grader, plan.total_steps)  # OpenAI's metrics events

    class RFTMetrics(TrainerCallback):
        def __init__(self) -> None:
            self.latest: dict[str, float] = {}  # each metric's last value: the summary's metrics

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                events.start(state.global_step)  # a resumed run's lines up to its checkpoint

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.begin()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.end()
            last = state.global_step >= state.max_steps
            if validates and last and state.global_step % plan.eval_interval:
                control.should_evaluate = True  # the loop validates the last step, whatever the interval
            if stop.requested:
                control.should_save = control.should_training_stop = True

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if logs is None or any(key in logs for key in SUMMARY_KEYS):
                return
            if any(key.startswith("eval_") for key in logs):
                from rft_plugins.graders.metrics import reward_metrics

                row: dict[str, Any] = reward_metrics(grades.take("valid"), "valid", grader_name)
                samples = grades.close_validation(state.global_step)
                eval_seconds = float(logs.get("eval_runtime", 0.0))
                numbers = self._write(logs, row, state.global_step)
                if state.is_world_process_zero:
                    events.validation(state.global_step, numbers, eval_seconds)
                module.trainer.control = control
                get_plugin_manager().hook.rft_on_validation_end(
                    step=state.global_step, metrics=dict(row), samples=samples, module=module
                )
                if best is not None and best.record(state.global_step, row, module.save_hf,
                                                    state.is_world_process_zero):
                    control.should_training_stop = True
                return
            row = training_row(logs, grades.take("train"), grader_name, clock.take(), job.trainer.beta)
            row.update(memory_metrics())
            numbers = self._write(logs, row, state.global_step)
            if state.is_world_process_zero:
                events.train_step(state.global_step, numbers)

        def _write(self, logs: dict[str, Any], row: dict[str, Any], step: int) -> dict[str, float]:
            """``row`` in place of TRL's in ``logs`` (the loggers after this one see it) and in metrics.csv;
            returns its numbers."""
            logs.clear()
            logs.update(row)
            numbers = {name: float(value) for name, value in row.items() if isinstance(value, (int, float))}
            self.latest.update(numbers)
            csv.log_metrics(numbers, step - 1)  # the CSV logger numbers rows by steps completed: it adds one
            csv.save()
            return numbers

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir() and state.is_world_process_zero:
                (folder / RECORDS_FILE).write_text(json.dumps(grades.records, default=str), encoding="utf-8")
                if best is not None:
                    (folder / BEST_STATE_FILE).write_text(json.dumps(best.state_dict()), encoding="utf-8")

    return RFTMetrics()


@contextlib.contextmanager
def _logger_environment(request: RunRequest) -> Iterator[None]:
    """TensorBoard's, W&B's and MLflow's files in the run folder, project and experiment ``rft``,
    unless their own environment variables say otherwise (transformers' integrations read only those)."""
    folder = request.folder
    defaults = {"TENSORBOARD_LOGGING_DIR": str(folder / "tensorboard"), "WANDB_DIR": str(folder),
                "WANDB_PROJECT": DEFAULT_PROJECT, "MLFLOW_TRACKING_URI": mlflow_tracking_uri(folder),
                "MLFLOW_EXPERIMENT_NAME": DEFAULT_PROJECT}
    added = [name for name in defaults if name not in os.environ]
    os.environ.update({name: defaults[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _load(request: RunRequest) -> tuple[Any, Any, Any]:
    """The policy (TRL's way: float32 weights unless the job names a dtype), its tokenizer, and
    the LoRA config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rft_plugins.models import from_pretrained_kwargs

    trainer = request.job.trainer
    kwargs = trainer.model_init_kwargs.model_dump(exclude_none=True)
    kwargs.setdefault("dtype", "float32")
    model = AutoModelForCausalLM.from_pretrained(request.settings.model, **from_pretrained_kwargs(kwargs))
    tokenizer = AutoTokenizer.from_pretrained(request.settings.model)
    lora = None
    if trainer.lora is not None:
        from peft import LoraConfig

        lora = LoraConfig(r=trainer.lora.r, lora_alpha=trainer.lora.lora_alpha, lora_dropout=trainer.lora.lora_dropout,
                          target_modules=trainer.lora.target_modules, task_type="CAUSAL_LM")
    return model, tokenizer, lora


def _dataset(rows: list[dict[str, Any]]) -> Any:
    """Rows for TRL: each one whole, as JSON in the ``prompt`` column (Arrow would merge keys across rows)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [json.dumps(row) for row in rows]})


def run(request: RunRequest) -> RunResult:
    """Train ``request``'s job with ``GRPOTrainer`` and write the run folder."""
    from trl import GRPOConfig

    job, folder, checkpoint = request.job, request.folder, request.checkpoint
    context = run_context(request)
    model, tokenizer, lora = _load(request)
    grades, clock = GradeLog(), PhaseClock()
    samples = Samples(tokenizer, request.settings, grades)
    reward = reward_func(job.built_grader(), job.trainer.grader_timeout, job.trainer.grader_concurrency,
                         prepare=samples.prepare, on_grades=samples.on_grades)
    report_to = [name for name in job.trainer.report_to if name != "csv"]
    config = GRPOConfig(**{**config_kwargs(request, report_to, checkpoint is not None),
                           "run_name": run_name(job, folder)})
    with _logger_environment(request):  # transformers' loggers read it when the trainer is made
        trainer = trainer_class()(
            model=model, processing_class=tokenizer, reward_funcs=[reward], args=config,
            train_dataset=_dataset(request.train_data),
            eval_dataset=_dataset(request.valid_data) if request.valid_data else None, peft_config=lora,
        )
    if not request.progress_bar:  # without bars, transformers prints every log row instead: quiet, as the loop
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    trainer.max_prompt_length, trainer.clock, samples.trainer = request.settings.max_prompt_length, clock, trainer
    module = TRLModule(trainer, request.settings)
    resumed_from = int(checkpoint.name.removeprefix("checkpoint-")) if checkpoint is not None else None
    if checkpoint is not None and (checkpoint / RECORDS_FILE).is_file():
        grades.records = json.loads((checkpoint / RECORDS_FILE).read_text(encoding="utf-8"))
    if checkpoint is not None and context.best is not None and (checkpoint / BEST_STATE_FILE).is_file():
        context.best.load_state_dict(json.loads((checkpoint / BEST_STATE_FILE).read_text(encoding="utf-8")))
    start_run_folder(request, resumed_from, {"trl_config": config.to_dict()})

    from rft_plugins.training.outputs import ResumableCSVLogger

    csv = ResumableCSVLogger(folder)
    csv.log_hyperparams(hyperparameters(request))
    callback = _callback(request, module, context, grades, clock, csv)
    trainer.callback_handler.callbacks.insert(0, callback)  # first: every logger after it sees the loop's names
    get_plugin_manager().hook.rft_on_train_start(job=job, settings=request.settings, module=module)
    with _logger_environment(request), context.stop.listening():
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    csv.finalize("success")
    step = int(trainer.state.global_step)
    if context.stop.signum is not None and step < request.plan.total_steps:  # a stop was requested
        total = request.plan.total_steps
        raise RunInterrupted(context.stop.signum, f"stopped by {context.stop.name} after step {step} of {total}; "
                             f"checkpoints/checkpoint-{step} holds it; continue with --resume")
    metrics = dict(callback.latest)
    files = {}
    if trainer.is_world_process_zero():
        files = write_outputs(request, module.save_hf, grades.records, step, metrics,
                              _last_checkpoint(folder))
    get_plugin_manager().hook.rft_on_train_end(metrics=metrics, output_dir=str(folder), module=module)
    result = RunResult(
        output_dir=folder, final_step=step, total_steps=request.plan.total_steps,
        stopped_early=context.stopped_early, resumed_from_step=resumed_from,
        metrics={name: value for name, value in metrics.items() if math.isfinite(value)},
        best_checkpoints=best_checkpoints(context.best_dir), files=files,
        seconds=round(time.perf_counter() - request.started, 2),
    )
    return finish_run(request, result)


def _last_checkpoint(folder: Path) -> Path | None:
    from .trl_backend import TRLBackend

    return TRLBackend().last_checkpoint(folder)
