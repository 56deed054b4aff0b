"""The ``rft`` command line. Each sub-command lives in its own module."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import RFTError
from .eval import eval_command
from .graders import graders
from .new_grader import new_grader
from .plugins import plugins
from .report import report
from .train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rft")
def cli() -> None:
    """Reinforcement fine-tuning of local Hugging Face models, OpenAI RFT style.

    Graders score model answers in [0, 1]; `rft train` optimises a model toward higher reward.
    Grader types, data sources, samplers and reward shapers come from plugins
    (see `rft plugins`).
    """


cli.add_command(eval_command)
cli.add_command(graders)
cli.add_command(new_grader)
cli.add_command(plugins)
cli.add_command(report)
cli.add_command(train)


def main() -> None:
    """Console-script entry point: our own errors print as one line, not a traceback."""
    try:
        cli()
    except RFTError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
