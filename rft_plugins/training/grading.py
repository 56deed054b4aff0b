"""Grading in the background, so graders (CPU, subprocesses, HTTP judges) overlap model work.

One event loop lives in a daemon thread for the whole run; ``submit`` hands it a batch and
returns at once with a future. The loop computes reference / old log-probs meanwhile and only
then waits for the grades.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Sequence

from ..graders.runner import LoadedGrader
from ..graders.trainer_state import TrainerState
from ..graders.types import Grade, Sample


@dataclass
class GradedBatch:
    """The grades of one batch, in sample order, and the wall time grading took."""

    grades: list[Grade]
    seconds: float


class BackgroundGrader:
    """Runs ``LoadedGrader.agrade_batch`` on a private event loop thread."""

    def __init__(self, grader: LoadedGrader, concurrency: int = 32, timeout: float | None = None):
        self.grader = grader
        self.concurrency = concurrency
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rft-grading", daemon=True)
        self._thread.start()

    async def _grade(
        self, samples: list[Sample], items: Sequence[dict[str, Any]], trainer_state: TrainerState | None
    ) -> GradedBatch:
        started = time.perf_counter()
        grades = await self.grader.agrade_batch(samples, list(items), self.concurrency, self.timeout, trainer_state)
        return GradedBatch(grades, time.perf_counter() - started)

    def submit(
        self, texts: Sequence[str], items: Sequence[dict[str, Any]], tool_calls: Sequence[list[dict]] | None = None,
        trainer_state: TrainerState | None = None,
    ) -> "Future[GradedBatch]":
        """Start grading ``texts`` (and their tool calls, if any) against their ``items``; returns
        immediately. ``trainer_state`` reaches the graders that ask for it."""
        calls: Sequence[list[dict] | None] = tool_calls if tool_calls else [None] * len(texts)
        samples = [Sample.from_text(text, call) for text, call in zip(texts, calls)]
        return asyncio.run_coroutine_threadsafe(self._grade(samples, items, trainer_state), self._loop)

    def grade(
        self, texts: Sequence[str], items: Sequence[dict[str, Any]], tool_calls: Sequence[list[dict]] | None = None,
        trainer_state: TrainerState | None = None,
    ) -> GradedBatch:
        """Grade and wait."""
        return self.submit(texts, items, tool_calls, trainer_state).result()

    def close(self) -> None:
        """Stop the loop thread (the grader itself stays open: its owner closes it)."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()


def lightning_trainer_state(trainer: Any) -> TrainerState:
    """The grader-facing state of a Lightning ``Trainer`` during a step: steps done, epochs done
    as a fraction (a step is a batch, so ``steps / batches per epoch``, as TRL counts), last step."""
    batches = trainer.num_training_batches
    per_epoch = batches if isinstance(batches, int) and batches > 0 else None  # inf for an unsized loader
    return TrainerState(
        global_step=int(trainer.global_step),
        epoch=trainer.global_step / per_epoch if per_epoch else float(trainer.current_epoch),
        max_steps=trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None,
    )
