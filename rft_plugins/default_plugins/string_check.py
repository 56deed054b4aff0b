"""``string_check``: exact or substring comparison of two templates, reward 1 or 0 (OpenAI's)."""

from __future__ import annotations

from typing import Any, Literal

from ..contract import GraderFactory, Register
from ..graders.config import GraderConfig, parse_config
from ..graders.templates import InputAndReference
from ..graders.types import Grade, Sample
from ..project import hookimpl

OPERATIONS = {
    "eq": lambda value, reference: value == reference,
    "ne": lambda value, reference: value != reference,
    "like": lambda value, reference: reference in value,
    "ilike": lambda value, reference: reference.casefold() in value.casefold(),
}


class StringCheckConfig(GraderConfig):
    input: str
    reference: str
    operation: Literal["eq", "ne", "like", "ilike"]


class StringCheckGrader:
    """eq / ne: case-sensitive equality; like: input contains reference; ilike: same, any case."""

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(StringCheckConfig, config)
        self.texts = InputAndReference(spec.input, spec.reference)
        self.operation = spec.operation
        self._compare = OPERATIONS[spec.operation]

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        value, reference = self.texts.render(sample, item)
        passed = self._compare(value, reference)
        return Grade(reward=1.0 if passed else 0.0, scores={"operation": self.operation})


@hookimpl
def rft_register_graders(register: Register[GraderFactory]) -> None:
    register("string_check", StringCheckGrader)
