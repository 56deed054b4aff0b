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

    async def _grade(self, samples: list[Sample], items: Sequence[dict[str, Any]]) -> GradedBatch:
        started = time.perf_counter()
        grades = await self.grader.agrade_batch(samples, list(items), self.concurrency, self.timeout)
        return GradedBatch(grades, time.perf_counter() - started)

    def submit(
        self, texts: Sequence[str], items: Sequence[dict[str, Any]], tool_calls: Sequence[list[dict]] | None = None
    ) -> "Future[GradedBatch]":
        """Start grading ``texts`` (and their tool calls, if any) against their ``items``; returns immediately."""
        calls = tool_calls or [None] * len(texts)
        samples = [Sample.from_text(text, call) for text, call in zip(texts, calls)]
        return asyncio.run_coroutine_threadsafe(self._grade(samples, items), self._loop)

    def grade(
        self, texts: Sequence[str], items: Sequence[dict[str, Any]], tool_calls: Sequence[list[dict]] | None = None
    ) -> GradedBatch:
        """Grade and wait."""
        return self.submit(texts, items, tool_calls).result()

    def close(self) -> None:
        """Stop the loop thread (the grader itself stays open: its owner closes it)."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()
