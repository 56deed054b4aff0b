"""``rft train JOB``: reinforcement fine-tuning of a local model from an OpenAI-style job file."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from ..data.rows import DataError
from ..errors import RFTError

#: exit status for a job that cannot run as written (bad job, bad data, run folder in the way)
BAD_INPUT = 2


def _fail(error: Exception, status: int) -> None:
    click.echo(f"Error: {error}", err=True)
    sys.exit(status)


def _set_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, object]]:
    """``--set FIELD=VALUE`` pairs, the values read as YAML."""
    from ..training.job.overrides import parse_override

    try:
        return [parse_override(value) for value in values]
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def _folder_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """``--output-dir`` as a path; an empty one (an unset shell variable) is refused, not read as '.'."""
    if value is not None and not value.strip():
        raise click.BadParameter("is empty (an unset shell variable?); name the run folder")
    return None if value is None else Path(value)


@click.command()
@click.argument("job", required=False, type=click.Path(path_type=Path))
@click.option(
    "--resume", is_flag=True,
    help="Continue the run in the output folder from its last checkpoint (checkpoints/last.ckpt; the trl backend: "
    "checkpoints/checkpoint-N) to the same final step, exactly "
    "(same data order and sampling as if never stopped). The job must be unchanged except max_steps and "
    "output_dir; a finished run just reports its result; no checkpoint yet starts from step 0.",
)
@click.option(
    "--overwrite", is_flag=True,
    help="Start afresh in an output folder that holds an earlier run, deleting that run's outputs "
    "(only the files rft train writes). Without it, such a folder is an error.",
)
@click.option(
    "--output-dir", type=str, callback=_folder_option,
    help="The run folder; overrides the job's trainer.output_dir (default runs/rft). With --resume: the run to continue.",
)
@click.option(
    "--max-steps", type=click.IntRange(min=1),
    help="Cap the run at this many optimisation steps (one step = batch_size prompts); overrides trainer.max_steps. "
    "The last step is validated whatever eval_interval is.",
)
@click.option(
    "--backend",
    help="The training backend: lightning (the built-in loop, default) or a plugin's, such as trl (TRL's "
    "GRPOTrainer, from the TRL adapter); overrides the job's trainer.backend. The run folder is the same.",
)
@click.option(
    "--set", "overrides", multiple=True, callback=_set_option, metavar="FIELD=VALUE",
    help="Set any job field, e.g. --set trainer.learning_rate=2e-5 --set method.reinforcement.hyperparameters."
    "n_epochs=3 (repeatable; the value is YAML: quote strings that would read as numbers or booleans).",
)
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print the run's summary (steps, final metrics, best checkpoints, files) as JSON on stdout; "
    "all training output goes to stderr.",
)
@click.option(
    "--demo", is_flag=True,
    help="Write the built-in demo (job, data, a tiny model and its supervised warm-up, nothing downloaded) to "
    "--output-dir (default runs/demo; the run goes to its run/ folder) and train it, printing the held-out "
    "exact-match reward before and after: about 25 s on an idle 2-core CPU. "
    "Replaces an earlier demo run unless --resume; a folder holding anything else is refused.",
)
@click.option(
    "--no-progress", is_flag=True,
    help="No progress bars (Lightning's, with step and train/valid reward, nor transformers'); "
    "metrics and outputs are written all the same. For logs and CI.",
)
def train(
    job: Path | None,
    resume: bool,
    overwrite: bool,
    output_dir: Path | None,
    max_steps: int | None,
    backend: str | None,
    overrides: list[tuple[str, object]],
    as_json: bool,
    demo: bool,
    no_progress: bool,
) -> None:
    """Fine-tune a Hugging Face model with reinforcement learning, as OpenAI RFT does.

    JOB is a YAML or JSON file shaped like an OpenAI fine-tuning job with
    `method.type: reinforcement` (training_file, validation_file, grader,
    hyperparameters), plus `model:` (a local model folder, or a Hugging Face
    Hub id) and an optional `trainer:` section (sampling, loss, LoRA, devices,
    backend, loggers, output_dir; TRL's GRPOConfig names work); see docs/job.md.
    The whole job is checked before training: a mistake is reported on one line
    with its file, line and field, and the command exits with status 2 (1: the
    run itself failed). SIGTERM or Ctrl-C finishes the current step, saves a
    checkpoint and exits with 143 or 130 (a second one stops at once).

    Each step samples num_generations answers for batch_size prompts, grades
    them and updates the model; every eval_interval steps and at the last step
    the validation file is sampled and graded. The progress bar shows the step
    and the latest train and valid reward.

    \b
    Outputs, in the output folder:
      metrics.csv, tensorboard/    train/valid reward, per-grader rewards, error rates, loss
      best/step-N/                 the best models by valid_reward_mean (Hugging Face folders)
      final/                       the model after the last step (with a model card)
      reward_curve.png             reward against step
      samples.md, samples.jsonl    graded validation samples
      checkpoints/last.ckpt        what --resume continues from

    \b
    rft train job.yaml
    rft train job.yaml --backend trl     # the same job through TRL's GRPOTrainer
    rft train job.yaml --set trainer.learning_rate=2e-5 --set trainer.report_to=[wandb]
    rft train job.yaml --resume          # after a crash or kill: same final step
    rft train --demo                     # the built-in example, nothing to download
    """
    # the training stack is an extra: without it this import is one line naming it (rft_plugins/extras.py)
    from ..training.job import JobError
    from ..training.interrupts import RunInterrupted
    from ..training.run import RunError, is_main_process, train as run_training

    if demo == (job is not None):
        raise click.UsageError("give a JOB file, or --demo (not both)")
    if demo:
        from ..data.demo import warmup_line, write_demo

        folder = output_dir or Path("runs/demo")
        click.echo(f"demo: the job, data, a tiny model and its warm-up go to {folder}, the run to {folder / 'run'}",
                   err=True)
        try:
            job = write_demo(folder)
        except RunError as error:
            _fail(error, BAD_INPUT)
        click.echo(f"demo: {warmup_line(folder)}", err=True)
        output_dir, overwrite = None, overwrite or not resume
    assert job is not None  # a JOB file or --demo's, checked above
    try:
        # stdout carries the result alone (--json stays parseable); what training prints goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            result = run_training(
                job, resume=resume, output_dir=output_dir, max_steps=max_steps, overwrite=overwrite,
                progress_bar=not no_progress, overrides=overrides + ([("trainer.backend", backend)] if backend else []),
            )
    except (JobError, DataError, RunError) as error:
        _fail(error, BAD_INPUT)
    except RunInterrupted as error:  # SIGTERM / SIGINT: checkpoint written, 128 + the signal
        click.echo(f"Stopped: {error}", err=True)
        sys.exit(error.exit_status)
    except RFTError as error:
        _fail(error, 1)
    if not is_main_process():
        return  # the extra processes of a data-parallel run: the first one reports
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    how = "stopped early" if result.stopped_early else "finished"
    click.echo(f"\nTraining {how} at step {result.final_step}/{result.total_steps} in {result.seconds:.0f} s.")
    if demo:
        from ..data.demo import before_after_line

        click.echo(before_after_line(result.output_dir))
    for name in ("train_reward_mean", "valid_reward_mean"):
        if name in result.metrics:
            click.echo(f"  {name}: {result.metrics[name]:.4f}")
    click.echo(f"Outputs in {result.output_dir}:")
    for label, key in (
        ("final model", "final_model"), ("best checkpoints", "best_checkpoints"), ("metrics", "metrics_csv"),
        ("reward curve", "reward_curve"), ("samples table", "samples_table"), ("resume checkpoint", "resume_checkpoint"),
    ):
        if key in result.files:
            click.echo(f"  {label + ':':<19}{result.files[key]}")
    for info in result.best_checkpoints:
        click.echo(f"    step {info['step']:>6}  valid_reward_mean {info['valid_reward_mean']:.4f}  {info['path']}")
