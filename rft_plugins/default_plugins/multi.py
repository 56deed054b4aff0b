"""``multi``: several named sub-graders combined by a formula (OpenAI's ``calculate_output``).

Sub-graders may be any registered type (plugins included) except ``multi`` itself. A sub-grader
without ``name`` is named after its key, as OpenAI's examples expect. A sub-grader that errors
contributes reward 0 and its flags are passed up; if one is not applicable (None), the whole multi
grade is not applicable. The formula's value is not clamped. ``scores`` holds each sub-grader's
scores under its key, its pass verdict (``passed``) included when it has one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic

from ..contract import GraderFactory, Register
from ..errors import GraderConfigError, GradingError
from ..graders.build import build_grader
from ..graders.config import GraderConfig, parse_config
from ..graders.formula import Formula
from ..graders.runner import LoadedGrader
from ..graders.types import Grade, Sample
from ..project import hookimpl


class MultiConfig(GraderConfig):
    graders: dict[str, dict[str, Any]] = pydantic.Field(min_length=1)
    calculate_output: str


class MultiGrader:
    """Runs every sub-grader on the sample, then the formula over their rewards."""

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(MultiConfig, config)
        self.graders: dict[str, LoadedGrader] = {}
        try:
            for key, sub_config in spec.graders.items():
                if isinstance(sub_config, dict) and sub_config.get("type") == "multi":
                    raise GraderConfigError(f"graders.{key}.type", "a multi grader cannot contain another multi")
                try:
                    self.graders[key] = build_grader(sub_config, key)
                except GraderConfigError as error:
                    raise error.within(f"graders.{key}") from error
            self.formula = Formula(spec.calculate_output, self.graders)
        except Exception:
            self.close()
            raise

    @property
    def io_bound(self) -> bool:
        """Concurrent only when a sub-grader is (a judge, a sandbox), else graded inline."""
        return any(grader.runs_concurrently for grader in self.graders.values())

    def _combine(self, grades: dict[str, Grade]) -> Grade:
        errors: dict[str, Any] = {}
        token_usage_per_model: dict[str, dict[str, int]] = {}
        for grade in grades.values():
            errors.update({flag: value for flag, value in grade.errors.items() if value})
            for model, usage in grade.metadata.get("token_usage_per_model", {}).items():
                total = token_usage_per_model.setdefault(model, {})
                for field, count in usage.items():
                    total[field] = total.get(field, 0) + count
        sub_rewards = {key: grade.reward for key, grade in grades.items()}
        scores = {key: grade.scores for key, grade in grades.items() if grade.scores}
        metadata = {"token_usage_per_model": token_usage_per_model} if token_usage_per_model else {}
        if any(reward is None for reward in sub_rewards.values()):
            reward = None
        else:
            try:
                reward = self.formula.evaluate(sub_rewards)  # type: ignore[arg-type]
            except (ArithmeticError, ValueError, TypeError) as error:
                raise GradingError("other_error", f"calculate_output: {error}") from error
        return Grade(reward=reward, errors=errors, scores=scores, sub_rewards=sub_rewards, metadata=metadata)

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        return self._combine({key: grader.grade(sample, item) for key, grader in self.graders.items()})

    async def agrade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        keys = list(self.graders)
        grades = await asyncio.gather(*(self.graders[key].agrade(sample, item) for key in keys))
        return self._combine(dict(zip(keys, grades)))

    def close(self) -> None:
        for grader in self.graders.values():
            grader.close()


@hookimpl
def rft_register_graders(register: Register[GraderFactory]) -> None:
    register("multi", MultiGrader)
