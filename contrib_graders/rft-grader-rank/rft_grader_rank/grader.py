"""``rank``: reward by the position of the correct answer(s) in the model's ranked list.

OpenAI's RFT demonstration ranked candidate genes for a patient: the reward is higher the nearer
the top the right gene is. The reference is one answer, or a JSON array of answers (each a string
or an array of aliases); the curve says what each rank is worth.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from rft_plugins import Grade, GraderConfigError, GradingError, Sample
from rft_plugins.graders.config import GraderConfig, parse_config
from rft_plugins.graders.templates import InputAndReference

from .curves import Curve, curve_function
from .match import Matching, distinct, matcher, normalise, ranks
from .parse import UnparseableList, parse_ranked_list


class RankConfig(GraderConfig):
    reference: str
    input: str = "{{ sample.output_text }}"
    curve: Curve = "reciprocal"
    k: int | None = Field(None, ge=1)
    match: Matching = "exact"
    fuzzy_threshold: float = Field(0.9, gt=0, le=1)
    multiple_answers: Literal["all", "any"] = "all"
    max_items: int | None = Field(None, ge=1)
    max_item_words: int = Field(12, ge=1)


def reference_answers(text: str) -> list[list[str]]:
    """Answers, each a list of normalised aliases: a JSON array of strings or of alias arrays, or
    else the whole text as one answer."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    entries = value if isinstance(value, list) else [value]
    answers = []
    for entry in entries:
        aliases = entry if isinstance(entry, list) else [entry]
        if not aliases or not all(isinstance(alias, (str, int, float)) and not isinstance(alias, bool) for alias in aliases):
            raise GradingError("invalid_variable_error", f"reference entry {entry!r} is not an answer or a list of aliases")
        answers.append([normalise(str(alias)) for alias in aliases])
    if not answers:
        raise GradingError("invalid_variable_error", "the reference lists no answer")
    return answers


class RankGrader:
    def __init__(self, config: dict[str, Any]):
        spec = parse_config(RankConfig, config)
        if spec.curve != "reciprocal" and spec.k is None:
            raise GraderConfigError("k", f"required for curve {spec.curve!r}")
        self.spec = spec
        self.texts = InputAndReference(spec.input, spec.reference)
        self.value = curve_function(spec.curve, spec.k)
        self.matches = matcher(spec.match, spec.fuzzy_threshold)

    def reward(self, found: list[int | None]) -> float:
        """``all``: the answers' values over those of the ideal list (every answer on top), so
        1 only when the answers lead the list; ``any``: the value of the best-placed answer."""
        values = [self.value(rank) if rank is not None else 0.0 for rank in found]
        if self.spec.multiple_answers == "any":
            return max(values)
        ideal = sum(self.value(rank) for rank in range(1, len(found) + 1))
        return sum(values) / ideal if ideal else 0.0

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        text, reference = self.texts.render(sample, item)
        answers = reference_answers(reference)
        try:
            parsed = parse_ranked_list(text, self.spec.max_item_words)
        except UnparseableList as error:
            raise GradingError("sample_parse_error", str(error)) from error
        items, repeats = distinct(parsed)
        items = items[: self.spec.max_items]
        found = ranks(items, answers, self.matches)
        return Grade(
            reward=self.reward(found),
            scores={
                "ranks": found,
                "listed": len(items),
                "repeats": repeats,
                "top": [item.head for item in items[:5]],
            },
        )
