"""A request-rate limit that holds across event loops and threads.

Requests are spaced evenly, ``60 / per_minute`` seconds apart, with no bursts: Azure OpenAI
enforces its requests-per-minute quotas over short windows (1 or 10 s) the same way, so an
endpoint behind a similar gateway never sees more than its share in any window. Each caller
reserves the next free slot under a thread lock, then sleeps until it comes, so the limiter is
bound to no event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time


class RateLimiter:
    """At most ``per_minute`` requests a minute, evenly spaced."""

    def __init__(self, per_minute: float):
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._next_slot = float("-inf")
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds to wait for it."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
            return slot - now

    async def wait(self) -> None:
        """Wait for this request's slot without blocking the event loop."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
