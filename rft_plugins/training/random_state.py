"""Random number generator states for checkpoints, so a resumed run samples as if never stopped.

Lightning seeds once at the start (``seed_everything``) and keeps no generator state in its
checkpoints, so without this a resumed run would draw its completions from a fresh stream.
States are kept as tensors and plain numbers, so the checkpoint still loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy
import torch


def capture() -> dict[str, Any]:
    """This process's generator states: torch (CPU and CUDA), NumPy and Python's ``random``."""
    legacy = numpy.random.get_state(legacy=True)  # the default, named: NumPy's stubs type the call without it as legacy=False
    assert isinstance(legacy, tuple)  # the global generator is MT19937, whose legacy state is a tuple
    kind, keys, position, has_gauss, cached_gauss = legacy
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached_gauss),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def seed(value: int) -> None:
    """Seed torch (CPU and CUDA), NumPy and Python's ``random`` in this process."""
    random.seed(value)
    numpy.random.seed(value % 2**32)
    torch.manual_seed(value)


def restore(state: dict[str, Any]) -> None:
    """Put back what ``capture`` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached_gauss = state["numpy"]
    numpy.random.set_state((kind, keys.numpy().astype("uint32"), position, has_gauss, cached_gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
