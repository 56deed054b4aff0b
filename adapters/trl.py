"""Graders as TRL reward functions, for ``GRPOTrainer`` and ``RLOOTrainer``.

>>> from rft_plugins.adapters.trl import reward_funcs
>>> trainer = GRPOTrainer(model=..., reward_funcs=reward_funcs(grader_json), train_dataset=...)

Each grader becomes one function named after the grader, so TRL logs ``rewards/<name>/mean``.
Dataset columns reach the grader as ``item`` (TRL passes them aligned with the completions);
the prompt is there too as ``item.prompt``. Graders that wait on I/O (model judges, sandboxed
``python`` graders) become ``async`` functions, which TRL runs concurrently. Errors never reach
TRL: a failed grade is reward 0 with its flag, and the flags show as ``<name>/error_rate``
(via ``log_metric``) and a ``<name>_errors`` column in the completions table (via ``log_extra``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..graders.build import build_grader
from ..graders.runner import LoadedGrader
from ..graders.types import Grade, Sample

#: keyword arguments TRL adds that are not dataset columns
TRL_ARGUMENTS = frozenset({"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"})


def completion_to_sample(completion: str | list[dict[str, Any]]) -> Sample:
    """A TRL completion (text, or conversational messages) as a grader ``Sample``.

    For conversations the last assistant message is graded, with its tool calls.
    """
    if isinstance(completion, str):
        return Sample.from_text(completion)
    assistant = [message for message in completion if message.get("role") == "assistant"]
    message = assistant[-1] if assistant else {"content": ""}
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return Sample.from_text(content, message.get("tool_calls"))


def _items(prompts: Sequence[Any], columns: dict[str, Any]) -> list[dict[str, Any]]:
    data = {key: value for key, value in columns.items() if key not in TRL_ARGUMENTS}
    return [{"prompt": prompt, **{key: values[index] for key, values in data.items()}} for index, prompt in enumerate(prompts)]


def _report(grader: LoadedGrader, grades: list[Grade], columns: dict[str, Any]) -> list[float | None]:
    log_metric: Callable[[str, float], None] | None = columns.get("log_metric")
    log_extra: Callable[[str, list], None] | None = columns.get("log_extra")
    if log_metric is not None:
        log_metric(f"{grader.name}/error_rate", sum(1 for grade in grades if grade.flagged) / len(grades))
        for key in grades[0].sub_rewards if grades else ():
            values = [grade.sub_rewards.get(key) for grade in grades]
            present = [value for value in values if value is not None]
            if present:
                log_metric(f"{grader.name}/{key}/mean", sum(present) / len(present))
    if log_extra is not None:
        log_extra(f"{grader.name}_errors", [", ".join(grade.flagged) for grade in grades])
    return [grade.reward for grade in grades]


def _check_length(grader: LoadedGrader, rewards: list, completions: Sequence[Any]) -> list:
    if len(rewards) != len(completions):  # TRL would silently broadcast a wrong length
        raise RuntimeError(f"grader {grader.name!r} returned {len(rewards)} rewards for {len(completions)} completions")
    return rewards


def reward_func(grader: dict[str, Any] | LoadedGrader, timeout: float | None = 120.0, max_concurrency: int = 32):
    """One TRL reward function for one grader config (built and validated now)."""
    loaded = grader if isinstance(grader, LoadedGrader) else build_grader(grader)

    if loaded.runs_concurrently:

        async def reward(prompts, completions, **columns) -> list[float | None]:
            grades = await loaded.agrade_batch(
                [completion_to_sample(c) for c in completions], _items(prompts, columns), max_concurrency, timeout
            )
            return _check_length(loaded, _report(loaded, grades, columns), completions)

    else:

        def reward(prompts, completions, **columns) -> list[float | None]:  # type: ignore[misc]
            grades = loaded.grade_batch(
                [completion_to_sample(c) for c in completions], _items(prompts, columns), max_concurrency, timeout
            )
            return _check_length(loaded, _report(loaded, grades, columns), completions)

    reward.__name__ = reward.__qualname__ = loaded.name
    reward.grader = loaded  # type: ignore[attr-defined]
    return reward


def reward_funcs(graders: dict[str, Any] | Sequence[dict[str, Any]], **options: Any) -> list[Callable[..., Any]]:
    """One TRL reward function per grader (a grader dict or a list of them), named after it."""
    configs = [graders] if isinstance(graders, dict) else list(graders)
    return [reward_func(config, **options) for config in configs]
