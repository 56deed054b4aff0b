"""Training backends: the engines ``rft train`` can train a job with, registered as plugins.

``lightning`` (the built-in loop, ``lightning_backend``) is registered by
``rft_plugins.default_plugins.training_backends``; ``trl`` (TRL's ``GRPOTrainer``) by the TRL
adapter's plugin module. A job picks one with ``trainer.backend`` (``rft train --backend``). Every
backend reads the same job and data (``RunRequest``) and writes the same run folder and summary
(``run_outputs``); what it cannot do of a job is a ``JobError`` naming the field, when the job loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..registry import build

if TYPE_CHECKING:
    from .job import Job, ResolvedHyperparameters
    from .run_folder import RunFolderPlan
    from .run_outputs import RunResult
    from .settings import ResolvedSettings


@dataclass
class RunRequest:
    """A checked job, its data and its run folder, ready for a backend to train.

    ``folder_plan`` is None in the extra processes of a data-parallel run (the first process
    prepares the folder); ``checkpoint`` is what to resume from; ``started`` the run's start
    (``time.perf_counter``), for the summary's seconds.
    """

    job: "Job"
    plan: "ResolvedHyperparameters"
    settings: "ResolvedSettings"
    train_data: list[dict[str, Any]]
    valid_data: list[dict[str, Any]]
    folder: Path
    folder_plan: "RunFolderPlan | None"
    checkpoint: Path | None
    progress_bar: bool
    started: float


class TrainingBackend(Protocol):
    """What a backend plugin's factory returns."""

    def check(self, job: "Job") -> None:
        """Raise ``job.error(field, why)`` for a field this engine cannot honour. Called when the
        job loads, before data or models: cheap, and no heavy imports."""

    def last_checkpoint(self, folder: Path) -> Path | None:
        """The checkpoint ``--resume`` continues from in the run ``folder``, if any."""

    def run(self, request: RunRequest) -> "RunResult":
        """Train, write the run folder's outputs (``run_outputs``) and return the summary."""


def training_backend(name: str) -> TrainingBackend:
    """The backend registered as ``name`` (the job check has made sure there is one)."""
    return build("training_backends", name, field="trainer.backend")
