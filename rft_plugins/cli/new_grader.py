"""``rft new-grader NAME``: start a grader plugin package that works before you change a line."""

from __future__ import annotations

from pathlib import Path

import click

from ..scaffold import GraderPackageNames, write_grader_package


@click.command("new-grader")
@click.argument("name")
@click.option(
    "--directory", "-d", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
    help="Where to create the package folder (rft-grader-NAME).",
)
def new_grader(name: str, directory: Path) -> None:
    """Create rft-grader-NAME/: a pip-installable package registering grader type NAME.

    It holds pyproject.toml (the `rft_plugins` entry point), the grader (exact match up to
    whitespace and case, to replace with yours), a pytest suite that passes as generated and a
    README. Walk-through, from here to PyPI: docs/writing-a-grader-plugin.md.

    \b
    rft new-grader my_grader
    cd rft-grader-my-grader && pip install -e '.[test]' && pytest
    rft plugins                          # my_grader, from rft-grader-my-grader
    """
    names = GraderPackageNames.from_name(name)
    folder = write_grader_package(name, directory)
    click.echo(f"Created {folder}/ for grader type {names.grader_type!r}. Next:")
    click.echo(f"  cd {folder} && pip install -e '.[test]' && pytest")
    click.echo(f"  rft graders run '{{\"type\": \"{names.grader_type}\", \"name\": \"check\", "
               f"\"reference\": \"{{{{ item.answer }}}}\"}}' --sample 'Paris' --item '{{\"answer\": \"paris\"}}'")
