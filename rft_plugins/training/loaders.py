"""The loop's data loaders. The training loader continues mid-epoch when a run is resumed.

Lightning saves ``state_dict()`` of every training loader that has ``state_dict`` and
``load_state_dict`` in each checkpoint (``_FitLoop.on_save_checkpoint``) and, when resuming, loads
it before it first iterates the loader. It counts the finished batches of the interrupted epoch
itself and expects the loader to yield only the rest; the length stays that of a whole epoch.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, cast

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def collate_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Batches stay lists of row dicts: prompts are tokenised per row by the module."""
    return list(rows)


def collate_indexed(pairs: list[tuple[int, dict[str, Any]]]) -> tuple[list[int], list[dict[str, Any]]]:
    """Validation batches keep each row's index, to drop the padding ``DistributedSampler`` adds."""
    return [index for index, _ in pairs], [row for _, row in pairs]


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` whose place in the epoch is saved in checkpoints and restored on resume.

    The order of each epoch is a function of the sampler's seed and epoch (``DistributedSampler``,
    whose ``set_epoch`` Lightning calls with the epoch it restored), so the number of batches
    already served in the current epoch is all the state there is.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batches_served = 0
        self._start_at = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        start, self._start_at = self._start_at, 0
        self.batches_served = start
        # the skipped batches are only collated (row dicts in a list): cheap
        for batch in itertools.islice(super().__iter__(), start, None):
            self.batches_served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """How far the current epoch got."""
        return {"batches_served": self.batches_served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Make the next pass start after the batches a checkpointed run had served.

        A finished epoch means the next pass is a new epoch, which starts at its beginning.
        """
        served = int(state.get("batches_served", 0))
        self._start_at = served if served < len(self) else 0


def train_loader(rows: list[dict[str, Any]], batch_size: int, seed: int, rank: int, world: int) -> ResumableDataLoader:
    """``batch_size`` prompts per step over ``world`` processes, each epoch shuffled by ``seed``.

    ``DistributedSampler`` in one process too: its order depends only on ``seed`` and the epoch,
    and Lightning leaves a loader that has one as it is under data parallelism.
    """
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must be a multiple of the number of processes ({world})")
    dataset = cast("Dataset[dict[str, Any]]", rows)  # a list is a map-style dataset (torch's stubs ask for the class)
    sampler: DistributedSampler[dict[str, Any]] = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    return ResumableDataLoader(
        dataset, batch_size=batch_size // world, sampler=sampler, collate_fn=collate_rows, generator=_private_generator(seed)
    )


def validation_loader(rows: list[dict[str, Any]], batch_size: int, rank: int, world: int) -> DataLoader:
    """Every validation row once, split over processes; batches are ``(indices, rows)``."""
    # a list is a map-style dataset (torch's stubs ask for the class)
    indexed = cast("Dataset[tuple[int, dict[str, Any]]]", list(enumerate(rows)))
    sampler: DistributedSampler[tuple[int, dict[str, Any]]] | None = (
        DistributedSampler(indexed, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
    )
    return DataLoader(
        indexed, batch_size=max(1, batch_size // world), sampler=sampler, collate_fn=collate_indexed,
        generator=_private_generator(0),
    )


def _private_generator(seed: int) -> torch.Generator:
    """A loader's own generator: without one, each ``iter(loader)`` draws a seed from the global
    generator (``_BaseDataLoaderIter._base_seed``), which sampling uses, so where an epoch starts
    would shift the completions drawn after it, and a resumed run would draw other ones."""
    return torch.Generator().manual_seed(seed)
