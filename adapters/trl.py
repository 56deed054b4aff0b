"""Graders as TRL reward functions, for ``GRPOTrainer`` and ``RLOOTrainer``.

>>> from rft_plugins.adapters.trl import reward_funcs
>>> trainer = GRPOTrainer(model=..., reward_funcs=reward_funcs(grader_json), train_dataset=...)

Each grader becomes one function named after the grader, so TRL logs ``rewards/<name>/mean``.
Dataset columns reach the grader as ``item``: the per-sample ones (sequences as long as the
completions, which TRL aligns with them); other keyword arguments are not columns and are left
out. ``item`` has the same keys as under ``rft train``: ``prompt`` (TRL's) and ``messages``
(OpenAI's; for a plain-text prompt, one user message). Graders that wait on I/O (model judges,
sandboxed ``python`` graders) become ``async`` functions, which TRL runs concurrently, each grade
under a timeout; the others grade in line, in the caller's thread. A conversational completion
(TRL's tool-calling rollouts) is graded as a whole: its last assistant message is
``sample.output_text``, every tool call it made is in ``sample.output_tools``. Errors never reach
TRL: a failed grade is reward 0 with its flag; TRL logs ``rewards/<name>/error_rate`` and, for
``multi``, ``rewards/<name>/<key>/mean`` (via ``log_metric``), and a ``<name>_errors`` column in
the completions table when a grade in the batch raised one (via ``log_extra``).

With TRL's own CLI (``trl grpo --reward_funcs module.attr``), a grader file becomes a reward
function through the environment: ``RFT_GRADER=grader.json trl grpo --reward_funcs
rft_plugins.adapters.trl.env_grader ...`` (several files: ``RFT_GRADER=a.json,b.json`` and
``env_grader_0``, ``env_grader_1``, ...).

TRL's ``trainer_state`` reaches graders that ask for it (a ``grade`` with a ``trainer_state``
parameter, ``rft_plugins.graders.trainer_state``) as ``{"global_step", "epoch", "max_steps"}``,
as under ``rft train``: a curriculum grader works on both engines.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..data.rows import messages_of_prompt
from ..graders.build import build_grader
from ..graders.metrics import ScoredSample, summarize
from ..graders.runner import LoadedGrader
from ..graders.trainer_state import TrainerState, trainer_state
from ..graders.types import Grade, Sample

#: how a reward function turns TRL's arguments into what its grader reads: (samples, items)
Prepare = Callable[[Sequence[Any], Sequence[Any], dict[str, Any]], tuple[list[Sample], list[dict[str, Any]]]]
#: told each batch's grades and TRL's keyword arguments (the trl backend keeps its metrics so)
OnGrades = Callable[[list[Grade], dict[str, Any]], None]

#: keyword arguments TRL adds that are not dataset columns
TRL_ARGUMENTS = frozenset({"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"})


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def completion_to_sample(completion: str | list[dict[str, Any]]) -> Sample:
    """A TRL completion (text, or conversational messages) as a grader ``Sample``.

    A conversation is graded as a whole: the last assistant message's text, and the tool calls
    of all its assistant messages, in order.
    """
    if isinstance(completion, str):
        return Sample.from_text(completion)
    assistant = [message for message in completion if message.get("role") == "assistant"]
    calls = [call for message in assistant for call in message.get("tool_calls") or []]
    return Sample.from_text(_text(assistant[-1].get("content")) if assistant else "", calls)


def _is_column(value: Any, count: int) -> bool:
    """A per-sample dataset column: a sequence (not text) with one value per completion."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == count


def _items(prompts: Sequence[Any], columns: dict[str, Any]) -> list[dict[str, Any]]:
    data = {key: value for key, value in columns.items()
            if key not in TRL_ARGUMENTS and _is_column(value, len(prompts))}
    items = []
    for index, prompt in enumerate(prompts):
        item = {key: values[index] for key, values in data.items()}
        item.setdefault("prompt", prompt)
        item.setdefault("messages", messages_of_prompt(prompt))
        items.append(item)
    return items


def from_columns(
    prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]
) -> tuple[list[Sample], list[dict[str, Any]]]:
    """The default ``Prepare``: completions as samples, the per-sample dataset columns as items."""
    return [completion_to_sample(c) for c in completions], _items(prompts, columns)


def _state_of(columns: dict[str, Any]) -> TrainerState | None:
    """TRL's ``trainer_state`` argument as the graders' ``TrainerState`` (None when TRL gave none)."""
    state = columns.get("trainer_state")
    return None if state is None else trainer_state(state)


def _report(grader: LoadedGrader, grades: list[Grade], columns: dict[str, Any]) -> list[float | None]:
    log_metric: Callable[[str, float], None] | None = columns.get("log_metric")
    log_extra: Callable[[str, list], None] | None = columns.get("log_extra")
    flagged = [", ".join(grade.flagged) for grade in grades]
    if log_metric is not None and grades:
        summary = summarize([ScoredSample.from_grade(grade) for grade in grades])
        log_metric(f"rewards/{grader.name}/error_rate", summary.error_rate)
        for key, mean in summary.sub_reward_means.items():
            if mean is not None:
                log_metric(f"rewards/{grader.name}/{key}/mean", mean)
    if log_extra is not None and any(flagged):
        log_extra(f"{grader.name}_errors", flagged)
    return [grade.reward for grade in grades]


def _check_length(grader: LoadedGrader, rewards: list, completions: Sequence[Any]) -> list:
    if len(rewards) != len(completions):  # TRL would silently broadcast a wrong length
        raise RuntimeError(f"grader {grader.name!r} returned {len(rewards)} rewards for {len(completions)} completions")
    return rewards


def reward_func(
    grader: dict[str, Any] | LoadedGrader, timeout: float | None = 120.0, max_concurrency: int = 32,
    prepare: Prepare = from_columns, on_grades: OnGrades | None = None,
):
    """One TRL reward function for one grader config (built and validated now).

    ``prepare`` and ``on_grades`` are for engines built on this adapter: how TRL's arguments
    become samples and items, and who is told each batch's grades.
    """
    loaded = grader if isinstance(grader, LoadedGrader) else build_grader(grader)

    def finish(grades: list[Grade], completions: Sequence[Any], columns: dict[str, Any]) -> list[float | None]:
        if on_grades is not None:
            on_grades(grades, {"completions": completions, **columns})
        return _check_length(loaded, _report(loaded, grades, columns), completions)

    if loaded.runs_concurrently:

        async def reward(prompts, completions, **columns) -> list[float | None]:
            samples, items = prepare(prompts, completions, columns)
            grades = await loaded.agrade_batch(samples, items, max_concurrency, timeout, _state_of(columns))
            return finish(grades, completions, {"prompts": prompts, **columns})

    else:

        def reward(prompts, completions, **columns) -> list[float | None]:  # type: ignore[misc]
            # in line, no timeout: a thread per grade would cost more than string_check itself
            samples, items = prepare(prompts, completions, columns)
            grades = loaded.grade_batch(samples, items, max_concurrency, None, _state_of(columns))
            return finish(grades, completions, {"prompts": prompts, **columns})

    reward.__name__ = reward.__qualname__ = loaded.name
    reward.grader = loaded  # type: ignore[attr-defined]
    return reward


def reward_funcs(graders: dict[str, Any] | Sequence[dict[str, Any]], **options: Any) -> list[Callable[..., Any]]:
    """One TRL reward function per grader (a grader dict or a list of them), named after it."""
    configs = [graders] if isinstance(graders, dict) else list(graders)
    return [reward_func(config, **options) for config in configs]


def _env_graders() -> list[Callable[..., Any]]:
    """The reward functions of the grader files named in ``RFT_GRADER`` (comma-separated)."""
    import json
    import os
    from pathlib import Path

    names = [name.strip() for name in os.environ.get("RFT_GRADER", "").split(",") if name.strip()]
    if not names:
        raise AttributeError("env_grader needs RFT_GRADER=grader.json (or a comma-separated list) in the environment")
    return [reward_func(json.loads(Path(name).read_text(encoding="utf-8"))) for name in names]


def __getattr__(name: str) -> Any:
    """``env_grader`` / ``env_grader_N``: reward functions for TRL's CLI, from ``RFT_GRADER``."""
    if name == "env_grader":
        return _env_graders()[0]
    if name.startswith("env_grader_") and name.removeprefix("env_grader_").isdigit():
        return _env_graders()[int(name.removeprefix("env_grader_"))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
