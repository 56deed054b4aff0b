"""``rft eval``: a model's reward on a data file, with the job's grader or another: the baseline
before training, or a checkpoint after it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..data.rows import DataError
from ..errors import RFTError
from .inputs import load_document

#: exit status for input that cannot be evaluated (bad job, data, grader or model)
BAD_INPUT = 2


def _fail(error: Exception | str, status: int = BAD_INPUT) -> None:
    click.echo(f"Error: {error}", err=True)
    sys.exit(status)


def _from_job(path: Path) -> tuple[dict[str, Any], Any]:
    """The settings a job implies (model, grader, sampling) and the job itself."""
    from ..training.job import load_job

    job = load_job(path, check_files=True)
    trainer = job.trainer
    values = {
        "model": job.model_folder, "grader": job.grader, "max_new_tokens": trainer.max_completion_length,
        "max_prompt_length": trainer.max_prompt_length, "temperature": trainer.temperature, "top_p": trainer.top_p,
        "top_k": trainer.top_k, "response_format": job.method.reinforcement.response_format,
        "model_init_kwargs": trainer.model_init_kwargs.model_dump(exclude_none=True), "sampler": trainer.sampler,
        "sampler_options": dict(trainer.sampler_options), "tool_call_parser": trainer.tool_call_parser,
        "grader_timeout": trainer.grader_timeout, "grader_concurrency": trainer.grader_concurrency,
        "seed": job.seed if job.seed is not None else trainer.seed,
    }
    return values, job


@click.command(name="eval")
@click.argument("job", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", help="A model folder, a checkpoint (best/step-N, final/), a LoRA adapter folder or a "
              "hub id in the local cache; default: the job's model.")
@click.option("--data", type=click.Path(path_type=Path), help="Rows to sample (OpenAI RFT JSONL or any data "
              "source's file); default: the job's validation file, else its training file.")
@click.option("--grader", help="A grader JSON/YAML file or inline JSON; default: the job's grader.")
@click.option("-n", "--samples", type=click.IntRange(min=1), default=4, show_default=True,
              help="Samples per prompt.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N rows.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="Default: the job's max_completion_length, else 256.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), help="Default: the job's, else 1.")
@click.option("--pass-threshold", type=float, help="A sample passes at this reward; default: the grader's "
              "pass_threshold, else 1.")
@click.option("--prompts-per-call", type=click.IntRange(min=1), default=8, show_default=True,
              help="Prompts sampled together (memory).")
@click.option("--seed", type=int, help="Sampling seed; default: the job's, else 42.")
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also write eval.json (settings and summary) and samples.jsonl (every graded sample) here.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (and the best and worst samples) as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def eval_command(
    job: Path | None, model: str | None, data: Path | None, grader: str | None, samples: int, limit: int | None,
    max_new_tokens: int | None, temperature: float | None, pass_threshold: float | None, prompts_per_call: int,
    seed: int | None, output_dir: Path | None, as_json: bool, no_progress: bool,
) -> None:
    """Sample a model on a data file and grade every sample: reward mean, pass rate, a reward
    histogram, per-grader means, error flags, the best and worst samples.

    Check the grader and the base model before training (OpenAI's advice), or score a checkpoint
    after. JOB (an `rft train` job file) supplies the model, data, grader and sampling settings;
    the options override them, and without a JOB --model, --data and --grader are needed.

    \b
    rft eval job.yaml                              # the job's base model on its validation file
    rft eval job.yaml --model runs/rft/final       # the trained model, same data and grader
    rft eval --model ./model --data valid.jsonl --grader grader.json -n 8 --json
    """
    from ..extras import require_extra

    try:
        require_extra("train", "rft eval")
        if no_progress:  # transformers' loading bars too
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
        from ..data.loading import load_rows
        from ..errors import GraderConfigError
        from ..graders.build import validate_grader
        from ..evaluation import EvalSettings, evaluate
        from ..training.job import JobError

        values: dict[str, Any] = {}
        rows_from: Any = data
        if job is not None:
            values, loaded = _from_job(job)
            if rows_from is None:
                rows_from = loaded.validation_file or loaded.training_file
        for name, value in (("model", model), ("max_new_tokens", max_new_tokens), ("temperature", temperature),
                            ("seed", seed)):
            if value is not None:
                values[name] = value
        if grader is not None:
            values["grader"] = load_document(grader)
        missing = [option for option, key in (("--model", "model"), ("--grader", "grader")) if key not in values]
        if rows_from is None:
            missing.append("--data")
        if missing:
            raise click.UsageError(f"without a JOB, give {', '.join(missing)}")
        try:  # before the model loads
            validate_grader(values["grader"])
        except GraderConfigError as error:
            raise click.BadParameter(str(error), param_hint="grader") from error
        rows = load_rows(str(rows_from))[:limit]
        settings = EvalSettings(samples=samples, pass_threshold=pass_threshold, prompts_per_call=prompts_per_call,
                                **values)
        result = _run(evaluate, settings, rows, progress=not no_progress)
    except (JobError, DataError) as error:
        _fail(error)
    except RFTError as error:
        _fail(error, BAD_INPUT if isinstance(error, ValueError) else 1)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        report = result.to_dict()
        (output_dir / "samples.jsonl").write_text("".join(json.dumps(record) + "\n" for record in report.pop("records")))
        (output_dir / "eval.json").write_text(json.dumps(report, indent=2, default=str))
    if as_json:
        best, worst = result.extremes()
        click.echo(json.dumps({**result.summary(), "best": best, "worst": worst}, indent=2, default=str))
        return
    from rich.console import Console

    from ..evaluation.report import render

    render(result, Console())


def _run(evaluate: Any, settings: Any, rows: list[dict[str, Any]], progress: bool) -> Any:
    """``evaluate`` with a progress bar over the rows on stderr (stdout keeps the result)."""
    if not progress:
        return evaluate(settings, rows)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sampling and grading", total=len(rows))
        return evaluate(settings, rows, progress=lambda done, total: bar.update(task, completed=done))
