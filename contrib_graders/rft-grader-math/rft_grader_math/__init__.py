"""``math_verify``: reward 1 when the model's answer equals the reference mathematically.

Uses Hugging Face's ``math-verify`` (``parse`` then ``verify(gold, answer)``, gold first), which
understands LaTeX, ``\\boxed{}``, fractions, sets and intervals. Config::

    {"type": "math_verify", "name": "answer", "reference": "{{ item.answer }}",
     "input": "{{ sample.output_text }}"}

``input`` defaults to the whole output text. math-verify's signal-based timeout works on the main
thread only; elsewhere parsing runs without it (the runner's own timeout still applies).
"""

from __future__ import annotations

import threading
from typing import Any

from rft_plugins import Grade, GradingError, Sample, hookimpl
from rft_plugins.graders.config import GraderConfig, parse_config
from rft_plugins.graders.templates import InputAndReference


class MathVerifyConfig(GraderConfig):
    reference: str
    input: str = "{{ sample.output_text }}"
    timeout_seconds: int = 5


class MathVerifyGrader:
    def __init__(self, config: dict[str, Any]):
        spec = parse_config(MathVerifyConfig, config)
        self.texts = InputAndReference(spec.input, spec.reference)
        self.timeout = spec.timeout_seconds

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        from math_verify import parse, verify

        timeout = self.timeout if threading.current_thread() is threading.main_thread() else None
        answer_text, reference = self.texts.render(sample, item)
        gold = parse(reference, parsing_timeout=timeout)
        if not gold:
            raise GradingError("invalid_variable_error", "the reference does not parse as mathematics")
        answer = parse(answer_text, parsing_timeout=timeout)
        if not answer:
            return Grade(reward=0.0, scores={"parsed_answer": None})
        passed = verify(gold, answer, timeout_seconds=timeout)
        return Grade(reward=1.0 if passed else 0.0, scores={"parsed_answer": str(answer[-1])})


@hookimpl
def rft_register_graders(register):
    register("math_verify", MathVerifyGrader)
