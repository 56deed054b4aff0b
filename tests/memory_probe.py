"""Peak resident memory of this process while a block runs, sampled from a thread (psutil).

``resource``'s ``ru_maxrss`` is the peak of the whole test session, which an earlier test that
loaded a model may already hold far above anything measured here; the growth over the block's
start is what the bounds in the hostile-input tests are about.
"""

from __future__ import annotations

import threading
from typing import Any

import psutil

MIB = 1024 * 1024


class PeakRss:
    """``with PeakRss() as memory: ...`` then ``memory.growth`` (bytes above the start)."""

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._done = threading.Event()
        self.start = self.peak = 0

    def _sample(self) -> None:
        while not self._done.wait(self.interval_s):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> "PeakRss":
        self.start = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def __str__(self) -> str:
        return f"peak resident memory grew by {self.growth / MIB:.1f} MiB"
