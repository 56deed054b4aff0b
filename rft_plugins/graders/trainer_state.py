"""Where training is, for graders that change with it (curricula, schedules): the optional
``trainer_state`` keyword of the grader protocol.

A plugin grader whose ``grade`` (or ``agrade``) names a ``trainer_state`` parameter gets
``{"global_step": int, "epoch": float, "max_steps": int | None}`` while training, and ``None``
outside it (``rft graders run``, ``rft eval``); a grader that does not name it is called as
before. Both engines fill it the same way: ``global_step`` counts the optimisation steps done
before the grades' step (0 while the first step samples), ``epoch`` the passes over the training
data done so far as a fraction (TRL's meaning), ``max_steps`` the run's last step.

The state travels in a context variable, so graders nested in a ``multi`` see it too, and it
crosses into the threads the runner grades in.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from typing import Any, Callable, Iterator, Mapping, TypedDict


class TrainerState(TypedDict):
    """What a grader learns of the run: steps done, epochs done (fractional), the last step."""

    global_step: int
    epoch: float
    max_steps: int | None


#: the state of the step being graded; None outside training
_current: contextvars.ContextVar[TrainerState | None] = contextvars.ContextVar("rft_trainer_state", default=None)

PARAMETER = "trainer_state"


def current_trainer_state() -> TrainerState | None:
    """The state of the step whose samples are being graded, or None outside training."""
    return _current.get()


@contextlib.contextmanager
def grading_at(state: Mapping[str, Any] | None) -> Iterator[None]:
    """Grades inside the block see ``state`` (unchanged when None: an enclosing state stays)."""
    if state is None:
        yield
        return
    token = _current.set(trainer_state(state))
    try:
        yield
    finally:
        _current.reset(token)


def trainer_state(state: Any) -> TrainerState:
    """A ``TrainerState`` from a mapping or an object with the same attributes (TRL's and
    transformers' ``TrainerState``); a missing epoch is 0, a missing or unset max_steps None."""
    def field(name: str) -> Any:
        return state.get(name) if isinstance(state, Mapping) else getattr(state, name, None)

    max_steps = field("max_steps")
    return TrainerState(
        global_step=int(field("global_step") or 0),
        epoch=float(field("epoch") or 0.0),
        max_steps=int(max_steps) if max_steps is not None and max_steps > 0 else None,
    )


def asks_for_trainer_state(function: Callable[..., Any] | None) -> bool:
    """Whether ``function`` names a ``trainer_state`` parameter it can take by keyword (a plain
    ``**kwargs`` does not count: such graders are left as they were)."""
    if function is None:
        return False
    try:
        parameter = inspect.signature(function).parameters.get(PARAMETER)
    except (TypeError, ValueError):  # a builtin or C function without a signature
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    )


def in_context(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` bound to the caller's context variables, for a thread that has its own."""
    context = contextvars.copy_context()
    return lambda *args: context.run(function, *args)
