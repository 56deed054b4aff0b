"""Which Python a sandbox worker runs, and who may choose it.

Graders written for OpenAI import the packages of OpenAI's grader image (rdkit, scikit-bio...),
which the trainer's own environment seldom has. A worker can run another interpreter, typically a
virtual environment with ``rft-plugins[grader-image]`` installed, and keeps every layer of the
sandbox: the interpreter only changes which installation the code reads its packages from.

The interpreter itself starts *before* the sandbox is up (it runs the worker that puts it up), and
an environment's ``.pth`` files and ``sitecustomize`` run at its start. So a job file must not be
able to name any program or environment it likes: the machine's operator lists the interpreters
python graders may use in ``RFT_GRADER_PYTHON`` (paths separated by ``os.pathsep``; the first is
the default), and a grader's ``sandbox.python`` may only pick one of those, or the trainer's own.
Paths are compared as written (absolute, not resolved): every virtual environment's ``python``
links to the same base interpreter, and resolving the link would let any environment through.
"""

from __future__ import annotations

import os
import sys

GRADER_PYTHON_ENV = "RFT_GRADER_PYTHON"


class InterpreterNotAllowed(ValueError):
    """A grader asked for an interpreter the operator did not list, or one that cannot run."""


def listed_interpreters() -> list[str]:
    """The interpreters ``RFT_GRADER_PYTHON`` lists, as absolute paths, in order."""
    value = os.environ.get(GRADER_PYTHON_ENV, "")
    return [os.path.abspath(path) for path in value.split(os.pathsep) if path.strip()]


def _check_runnable(path: str, source: str) -> str:
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise InterpreterNotAllowed(f"{path} ({source}) is not an executable file")
    return path


def grader_interpreter(requested: str | None = None) -> str:
    """The interpreter a python grader runs with: ``requested`` when it is the trainer's own or
    one that ``RFT_GRADER_PYTHON`` lists, else the first listed, else the trainer's own."""
    listed = listed_interpreters()
    own = os.path.abspath(sys.executable)
    if requested is None:
        return _check_runnable(listed[0], GRADER_PYTHON_ENV) if listed else own
    wanted = os.path.abspath(os.path.expanduser(requested))
    if wanted == own:
        return own
    if wanted not in listed:
        shown = ", ".join(listed) if listed else "none"
        raise InterpreterNotAllowed(
            f"{wanted} is not an interpreter this machine allows for graders (listed in {GRADER_PYTHON_ENV}: "
            f"{shown}). It would start outside the sandbox, so only the operator can allow one: add it to "
            f"{GRADER_PYTHON_ENV}"
        )
    return _check_runnable(wanted, GRADER_PYTHON_ENV)
