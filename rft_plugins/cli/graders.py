"""``rft graders run|validate|list``: use graders without training anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..errors import GraderConfigError, PluginConflictError
from ..graders.build import build_grader
from ..graders.run import run_response
from ..graders.runner import LoadedGrader
from ..graders.types import BOOLEAN_FLAGS
from ..registry import collect
from .inputs import load_document, read_jsonl

CHUNK = 256


@click.group()
def graders() -> None:
    """Run, validate and list graders (OpenAI grader JSON objects)."""


def _load_grader(spec: str) -> LoadedGrader:
    """Build the grader, or exit 1 naming the bad field."""
    try:
        return build_grader(load_document(spec))
    except (GraderConfigError, PluginConflictError) as error:
        raise click.ClickException(f"invalid grader: {error}") from error


@graders.command("run")
@click.argument("grader")
@click.option("--sample", "sample_text", help="The model's output text to grade.")
@click.option("--item", "item_json", default="{}", help="The dataset row as JSON (the `item` namespace).")
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL file: one row per sample with `sample` (text or sample fields) and `item` "
    "(defaults to the row's other keys).",
)
@click.option("--json", "as_json", is_flag=True, help="With --input: print one run response per line.")
@click.option(
    "--concurrency", default=32, show_default=True, type=click.IntRange(min=1),
    help="Grades in flight at once (I/O-bound graders); at least 1.",
)
def run_command(
    grader: str, sample_text: str | None, item_json: str, input_path: Path | None, as_json: bool, concurrency: int
) -> None:
    """Grade model output with GRADER (a JSON/YAML file, or inline JSON).

    With --sample, prints the response of OpenAI's graders/run endpoint (reward, metadata with
    error flags and timing, sub_rewards). With --input, grades every row and prints a summary.

    \b
    rft graders run grader.json --sample "Paris" --item '{"answer": "Paris"}'
    rft graders run grader.json --input samples.jsonl --json
    """
    if (sample_text is None) == (input_path is None):
        raise click.UsageError("give exactly one of --sample and --input")
    loaded = _load_grader(grader)
    with loaded:
        if sample_text is not None:
            item = load_document(item_json, "item")
            click.echo(json.dumps(run_response(loaded.name, loaded.type, loaded.grade(sample_text, item)), indent=2))
            return
        assert input_path is not None  # exactly one of --sample and --input was given
        rows = [row for _, row in read_jsonl(input_path)]
        samples = [row.get("sample", "") for row in rows]
        items = [row["item"] if "item" in row else {k: v for k, v in row.items() if k != "sample"} for row in rows]
        grades = []
        with Progress(console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task(f"grading with {loaded.name}", total=len(rows))
            for start in range(0, len(rows), CHUNK):
                chunk = slice(start, start + CHUNK)
                grades += loaded.grade_batch(samples[chunk], items[chunk], max_concurrency=concurrency)
                progress.update(task, completed=len(grades))
    if as_json:
        for grade in grades:
            click.echo(json.dumps(run_response(loaded.name, loaded.type, grade)))
        return
    _print_summary(loaded.name, grades)


def _print_summary(name: str, grades: list) -> None:
    rewards = [grade.reward for grade in grades if grade.reward is not None]
    table = Table(title=f"grader {name}: {len(grades)} samples")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("reward_mean", f"{sum(rewards) / len(rewards):.4f}" if rewards else "n/a")
    table.add_row("not_applicable", str(len(grades) - len(rewards)))
    for flag in BOOLEAN_FLAGS:
        count = sum(1 for grade in grades if grade.errors.get(flag))
        if count:
            table.add_row(f"{flag}_rate", f"{count / len(grades):.4f}")
    Console().print(table)


@graders.command("validate")
@click.argument("grader")
def validate_command(grader: str) -> None:
    """Check GRADER (file or inline JSON); exits 1 naming the bad field."""
    _load_grader(grader).close()
    click.echo("valid")


@graders.command("check")
@click.argument("job", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--grader", "grader_spec", help="A grader JSON/YAML file or inline JSON (default: the job's).")
@click.option("--data", type=click.Path(path_type=Path), help="Rows to check against (default: the job's "
              "training file).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Check the first N rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_command(job: Path | None, grader_spec: str | None, data: Path | None, limit: int, as_json: bool) -> None:
    """Check a grader before training on it: each row's reference answer should score 1, an empty
    and a random answer low, and nothing should raise an error flag.

    Every grader (and multi sub-grader) that compares an `input` with a row's `reference` is given
    the reference as the answer. Exits 1 when something looks wrong, listing what.

    \b
    rft graders check job.yaml
    rft graders check --grader grader.json --data train.jsonl --json
    """
    from ..data.loading import load_rows
    from ..graders.check import check_grader

    config: Any = load_document(grader_spec) if grader_spec is not None else None
    location: Any = data
    if job is not None:
        from ..training.job import JobError, load_job

        try:
            loaded = load_job(job)
        except JobError as error:
            raise click.ClickException(str(error)) from error
        config = config if config is not None else loaded.grader
        location = location if location is not None else loaded.training_file
    if config is None or location is None:
        raise click.UsageError("give a JOB, or --grader and --data")
    try:
        report = check_grader(config, load_rows(str(location))[:limit])
    except GraderConfigError as error:
        raise click.ClickException(f"invalid grader: {error}") from error
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        table = Table(title=f"grader check on {report.rows} rows")
        for column in ("answer", "mean reward", "flags"):
            table.add_column(column)
        for name, probe in report.probes.items():
            flags = ", ".join(f"{flag} x{count}" for flag, count in probe.flags.items()) or "-"
            table.add_row(name, "-" if probe.mean is None else f"{probe.mean:.3f}", flags)
        console = Console()
        console.print(table)
        for line in report.problems:
            console.print(f"[red]problem[/red]: {line}")
        for line in report.notes:
            console.print(f"note: {line}")
        console.print("the grader looks right" if not report.problems else f"{len(report.problems)} problem(s)")
    sys.exit(1 if report.problems else 0)


@graders.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    """List the grader types available, and the plugin providing each."""
    types = [{"type": name, "plugin": reg.plugin} for name, reg in sorted(collect("graders").items())]
    if as_json:
        click.echo(json.dumps(types, indent=2))
        return
    for entry in types:
        click.echo(f"{entry['type']:<20} {entry['plugin']}")
