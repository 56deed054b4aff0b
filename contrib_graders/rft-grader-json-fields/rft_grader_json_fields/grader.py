"""``json_fields``: structured output scored field by field against the reference object.

The reward is the weighted mean of the fields' scores, so a model that gets four of five
fields right earns 0.8 instead of the 0 an all-or-nothing comparison gives: partial credit is
what lets RL climb toward fully correct extractions.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Union

from pydantic import Field

from rft_plugins import Grade, GraderConfigError, GradingError, Sample
from rft_plugins.graders.config import GraderConfig, parse_config
from rft_plugins.graders.templates import InputAndReference

from .comparators import COMPARATORS, Comparison, FieldRule
from .paths import FieldPath, leaves

_LISTED = 20  # names of missing, mismatched or extra fields reported in scores


class JsonFieldsConfig(GraderConfig):
    reference: str
    input: str = "{{ sample.output_text }}"
    fields: dict[str, Union[FieldRule, Comparison]] | None = None
    default: FieldRule = Field(default_factory=FieldRule)
    extra_fields: Literal["ignore", "penalize"] = "ignore"


def _object(text: str, flag: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise GradingError(flag, f"{what} is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise GradingError(flag, f"{what} is JSON but not an object ({type(value).__name__})")
    return value


class JsonFieldsGrader:
    def __init__(self, config: dict[str, Any]):
        spec = parse_config(JsonFieldsConfig, config)
        self.texts = InputAndReference(spec.input, spec.reference)
        self.default = spec.default
        self.penalize_extra = spec.extra_fields == "penalize"
        self.fields: list[tuple[FieldPath, FieldRule]] | None = None
        if spec.fields is not None:
            if not spec.fields:
                raise GraderConfigError("fields", "lists no field; leave it out to compare every field of the reference")
            self.fields = [(self._path(expression), self._rule(rule)) for expression, rule in spec.fields.items()]

    @staticmethod
    def _path(expression: str) -> FieldPath:
        try:
            return FieldPath.parse(expression)
        except ValueError as error:
            raise GraderConfigError(f"fields.{expression}", str(error)) from error

    def _rule(self, rule: FieldRule | str) -> FieldRule:
        return rule if isinstance(rule, FieldRule) else self.default.model_copy(update={"compare": rule})

    def _compared(self, reference: dict[str, Any]) -> list[tuple[FieldPath, FieldRule]]:
        if self.fields is not None:
            return self.fields
        compared = [(FieldPath.of_keys(keys), self.default) for keys in leaves(reference)]
        if not compared:
            raise GradingError("invalid_variable_error", "the reference object has no fields to compare")
        return compared

    def _extra(self, output: dict[str, Any], compared: list[tuple[FieldPath, FieldRule]]) -> list[str]:
        covered = [path.covers for path, _ in compared]
        return [
            FieldPath.of_keys(keys).expression for keys in leaves(output)
            if not any(keys[: len(prefix)] == prefix for prefix in covered if prefix)
        ]

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        text, reference_text = self.texts.render(sample, item)
        reference = _object(reference_text, "invalid_variable_error", "the reference")
        output = _object(text, "sample_parse_error", "the output")
        compared = self._compared(reference)
        scores: dict[str, float] = {}
        missing, mismatched = [], []
        weighted = total = 0.0
        for path, rule in compared:
            expected, actual = path.find(reference), path.find(output)
            if actual is None and expected is not None:
                score = 0.0
                missing.append(path.expression)
            else:
                score = COMPARATORS[rule.compare](expected, actual, rule)
                if score < 1.0:
                    mismatched.append(path.expression)
            scores[path.expression] = round(score, 4)
            weighted += rule.weight * score
            total += rule.weight
        extra = self._extra(output, compared)
        if self.penalize_extra:
            total += self.default.weight * len(extra)
        return Grade(
            reward=weighted / total,
            scores={"fields": scores, "missing": missing[:_LISTED], "mismatched": mismatched[:_LISTED], "extra": extra[:_LISTED]},
        )
