"""``rft train --backend trl``: the same job through TRL's ``GRPOTrainer``, the same run folder.

This module is the TRL adapter's plugin (entry point group ``rft_plugins``, name ``trl``): it
registers the ``trl`` training backend, and imports nothing heavy until a run starts. The run
(``trl_run.py``) maps the job onto ``GRPOConfig`` (``trl_config.py``), grades with the job's
grader through the adapter's reward function, and writes what the built-in loop writes:
``metrics.csv`` with the loop's metric names (``trl_metrics.py``), the loggers of ``report_to``,
``best/`` and ``final/`` with model cards, ``samples.jsonl``, the run report, ``summary.json``.
``--resume`` continues from TRL's last checkpoint in ``checkpoints/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rft_plugins.contract import Register, TrainingBackendFactory

from ..project import hookimpl

if TYPE_CHECKING:
    from rft_plugins.training.backends import RunRequest
    from rft_plugins.training.job import Job
    from rft_plugins.training.run_outputs import RunResult


class TRLBackend:
    """The ``trl`` training backend (``rft_plugins.training.backends.TrainingBackend``)."""

    def check(self, job: "Job") -> None:
        from .trl_config import check

        check(job)

    def last_checkpoint(self, folder: Path) -> Path | None:
        """TRL's latest ``checkpoints/checkpoint-N`` folder."""
        found = [path for path in (Path(folder) / "checkpoints").glob("checkpoint-*")
                 if path.is_dir() and path.name.removeprefix("checkpoint-").isdigit()]
        return max(found, key=lambda path: int(path.name.removeprefix("checkpoint-")), default=None)

    def run(self, request: "RunRequest") -> "RunResult":
        from .trl_run import run

        return run(request)


def trl_backend() -> Any:
    return TRLBackend()


@hookimpl
def rft_register_training_backends(register: Register[TrainingBackendFactory]) -> None:
    register("trl", trl_backend)
