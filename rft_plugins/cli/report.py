"""``rft report RUN_FOLDER``: (re)build a run's ``report.html`` from the files in its folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

#: exit status for a folder that holds no run
BAD_INPUT = 2


@click.command()
@click.argument("run_folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the page; default RUN_FOLDER/report.html.",
)
def report(run_folder: Path, output: Path | None) -> None:
    """Build the run report of RUN_FOLDER: one static HTML page, nothing loaded from the network.

    Train and validation reward per grader, error-flag rates, time per phase, learning rate, loss,
    and a sample browser (the last validation's best and worst samples, the prompts that improved
    most since the first validation, with grader details). It is made from metrics.csv,
    samples.jsonl, run.json and summary.json, so it works for any run folder, finished or not;
    `rft train` writes one at the end of every run. Prints the page's path.

      rft report runs/quickstart
      rft report runs/quickstart -o /tmp/quickstart.html
    """
    from ..report import ReportError, write_report

    try:
        path = write_report(run_folder, output)
    except ReportError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(BAD_INPUT)
    click.echo(str(path))
