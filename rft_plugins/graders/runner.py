"""Runs a built grader safely: whatever the plugin does, the caller gets a ``Grade``.

A plugin's exception, a hang past the timeout, or a non-number becomes reward 0 with an error
flag, as OpenAI does; it costs that sample, never the run. Error details longer than
``RFT_MAX_DETAILS_CHARS`` (8000) are cut to their head and tail, whatever the plugin put there.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Coroutine, Mapping, Sequence

from ..errors import GradingError
from ..scalars import real_number
from ..text_limits import max_details_chars, shorten
from .trainer_state import asks_for_trainer_state, current_trainer_state, grading_at, in_context
from .types import Grade, Sample


def _short_traceback(error: BaseException, lines: int = 6) -> str:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return "\n".join(text.strip().splitlines()[-lines:])


def _failure(error: Exception, timeout: float | None = None) -> Grade:
    """The grade a plugin's exception turns into: reward 0 and the flag that says why."""
    if isinstance(error, TimeoutError):  # asyncio's timeout, or the plugin's own
        return Grade.failed("unresponsive_reward_error", f"no grade within {timeout} s" if timeout else str(error))
    if isinstance(error, GradingError):
        return Grade.failed(error.flag, error.details)
    return Grade.failed("other_error", _short_traceback(error))


def to_grade(value: Any) -> Grade:
    """Normalise what a plugin returned: a number (NumPy's included), None (not applicable) or a
    Grade, whose error details are cut to the details limit."""
    if isinstance(value, Grade):
        grade = value
    elif value is None:
        return Grade(reward=None)
    elif (number := real_number(value)) is not None:
        grade = Grade(reward=number)
    else:
        return Grade.failed("other_error", f"grader returned {type(value).__name__}, not a number")
    if grade.reward is not None and not math.isfinite(grade.reward):
        return Grade.failed("other_error", f"grader returned {grade.reward}, not a finite number")
    _cut_details(grade)
    return grade


def _cut_details(grade: Grade) -> None:
    """Text error fields of a plugin's own ``Grade`` cut to the details limit, in place."""
    limit = max_details_chars()
    for flag, value in grade.errors.items():
        if isinstance(value, str) and len(value) > limit:
            grade.errors[flag] = shorten(value, limit)


def _in_daemon_thread(function: Callable[..., Any], *args: Any) -> asyncio.Future:
    """Run ``function`` in a fresh daemon thread and await its result.

    Not ``asyncio.to_thread``: ``asyncio.run`` joins the default executor when it ends, so one
    hung grader would hold up the whole batch past its timeout, and the process at exit.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    function = in_context(function)  # the thread sees the caller's trainer state

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def target() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (function(*args), None)
        except BaseException as error:  # handed to the awaiting coroutine
            outcome = (None, error)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop is gone: the caller already gave up (timeout)
            pass

    threading.Thread(target=target, name="rft-grader", daemon=True).start()
    return future


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine from sync code, even when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(in_context(asyncio.run), coroutine).result()


class LoadedGrader:
    """A grader built from its config, with the plugin's object inside.

    Attributes a plugin object may set: ``io_bound = True`` when ``grade`` waits on I/O or a
    subprocess, so that batches run it in threads (``False`` keeps an async grader inline);
    ``thread_safe = False`` to never run two of its ``grade`` calls at once.

    A ``grade`` / ``agrade`` that names a ``trainer_state`` parameter is given the training state
    (``trainer_state.py``); the others are called with ``(sample, item)`` alone.
    """

    def __init__(self, config: dict[str, Any], impl: Any, plugin: str):
        self.config = config
        self.impl = impl
        self.plugin = plugin
        self.name: str = config["name"]
        self.type: str = config["type"]
        self._lock = None if getattr(impl, "thread_safe", True) else threading.Lock()
        self._grade_takes_state = asks_for_trainer_state(getattr(impl, "grade", None))
        self._agrade_takes_state = asks_for_trainer_state(getattr(impl, "agrade", None))

    @property
    def is_async(self) -> bool:
        return hasattr(self.impl, "agrade")

    @property
    def runs_concurrently(self) -> bool:
        """Whether batches gain from running this grader's calls at once.

        An async grader does unless it says ``io_bound = False`` (a ``multi`` of cheap graders).
        """
        return bool(getattr(self.impl, "io_bound", self.is_async))

    @staticmethod
    def _state(asked: bool) -> dict[str, Any]:
        """The ``trainer_state`` keyword for a plugin method that asks for it."""
        return {"trainer_state": current_trainer_state()} if asked else {}

    def _call_sync(self, sample: Sample, item: dict[str, Any]) -> Any:
        if not hasattr(self.impl, "grade"):
            return _run_coroutine(self.impl.agrade(sample, item, **self._state(self._agrade_takes_state)))
        state = self._state(self._grade_takes_state)
        if self._lock is None:
            return self.impl.grade(sample, item, **state)
        with self._lock:
            return self.impl.grade(sample, item, **state)

    def grade(
        self, sample: Sample | str | dict, item: dict[str, Any] | None = None,
        trainer_state: Mapping[str, Any] | None = None,
    ) -> Grade:
        """Grade one sample; never raises for what the plugin does. ``trainer_state`` (the
        training step's, ``trainer_state.TrainerState``) reaches graders that ask for it."""
        started = time.perf_counter()
        try:
            with grading_at(trainer_state):
                grade = to_grade(self._call_sync(Sample.coerce(sample), item or {}))
        except Exception as error:
            grade = _failure(error)
        grade.execution_time = time.perf_counter() - started
        return grade

    async def agrade(
        self, sample: Sample | str | dict, item: dict[str, Any] | None = None, timeout: float | None = None,
        trainer_state: Mapping[str, Any] | None = None,
    ) -> Grade:
        """Grade one sample without blocking the event loop; a timeout flags it unresponsive."""
        started = time.perf_counter()
        sample, item = Sample.coerce(sample), item or {}
        try:
            with grading_at(trainer_state):
                if self.is_async and self.runs_concurrently:
                    call = self.impl.agrade(sample, item, **self._state(self._agrade_takes_state))
                    value = await asyncio.wait_for(call, timeout)
                elif self.runs_concurrently or timeout is not None:
                    value = await asyncio.wait_for(_in_daemon_thread(self._call_sync, sample, item), timeout)
                else:  # cheap CPU-bound grader: a thread would only add overhead
                    value = self._call_sync(sample, item)
            grade = to_grade(value)
        except Exception as error:
            grade = _failure(error, timeout)
        grade.execution_time = time.perf_counter() - started
        return grade

    async def agrade_batch(
        self,
        samples: Sequence[Sample | str | dict],
        items: Sequence[dict[str, Any]],
        max_concurrency: int = 32,
        timeout: float | None = None,
        trainer_state: Mapping[str, Any] | None = None,
    ) -> list[Grade]:
        """Grade many samples, concurrently where the grader allows it (``max_concurrency`` >= 1:
        a gate that admits nobody would wait for ever)."""
        if len(samples) != len(items):
            raise ValueError(f"{len(samples)} samples but {len(items)} items")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        with grading_at(trainer_state):  # the tasks below copy it
            if not self.runs_concurrently and timeout is None:
                return [self.grade(sample, item) for sample, item in zip(samples, items)]
            gate = asyncio.Semaphore(max_concurrency)

            async def one(sample: Any, item: dict[str, Any]) -> Grade:
                async with gate:
                    return await self.agrade(sample, item, timeout)

            return list(await asyncio.gather(*(one(s, i) for s, i in zip(samples, items))))

    def grade_batch(
        self,
        samples: Sequence[Sample | str | dict],
        items: Sequence[dict[str, Any]],
        max_concurrency: int = 32,
        timeout: float | None = None,
        trainer_state: Mapping[str, Any] | None = None,
    ) -> list[Grade]:
        """Sync form of ``agrade_batch`` for code without an event loop."""
        return _run_coroutine(self.agrade_batch(samples, items, max_concurrency, timeout, trainer_state))

    def close(self) -> None:
        """Release what the plugin holds (worker processes, HTTP clients), if anything."""
        close = getattr(self.impl, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> "LoadedGrader":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LoadedGrader {self.name!r} type={self.type!r} plugin={self.plugin!r}>"
