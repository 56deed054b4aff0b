"""The built-in training backend, ``lightning``: ``RFTModule`` under a ``lightning.Trainer``.

Loading it is cheap (the job check builds it); the loop itself is imported when a run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .backends import RunRequest
from .run_folder import lightning_checkpoint

if TYPE_CHECKING:
    from .job import Job
    from .run_outputs import RunResult


class LightningBackend:
    """The built-in loop (``run.fit_with_lightning``); registered by ``default_plugins.training_backends``."""

    def check(self, job: Job) -> None:
        """Everything a job can say, the loop does."""

    def last_checkpoint(self, folder: Path) -> Path | None:
        return lightning_checkpoint(folder)

    def run(self, request: RunRequest) -> RunResult:
        from .run import fit_with_lightning

        return fit_with_lightning(request)
