"""The built-in training backend, registered like any plugin's: ``lightning``, the loop of ``rft train``."""

from __future__ import annotations

from typing import Any

from ..contract import Register, TrainingBackendFactory
from ..project import hookimpl


def lightning_backend() -> Any:
    """The Lightning loop, imported on first use so that loading plugins never imports the training stack."""
    from ..training.lightning_backend import LightningBackend

    return LightningBackend()


@hookimpl
def rft_register_training_backends(register: Register[TrainingBackendFactory]) -> None:
    register("lightning", lightning_backend)
