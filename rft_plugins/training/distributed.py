"""The few collective operations the loop needs, written so they cost nothing in one process."""

from __future__ import annotations

from typing import Any

import torch


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (``(0, 1)`` without data parallelism)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather(local: Any) -> list[Any]:
    """Every process's ``local`` object, in rank order (just ``[local]`` in one process)."""
    _, world = rank_and_world()
    if world == 1:
        return [local]
    gathered: list[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, local)
    return gathered
