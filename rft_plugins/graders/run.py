"""``run_grader``: grade one sample and answer in the shape of OpenAI's graders/run endpoint."""

from __future__ import annotations

from typing import Any

from ..errors import GraderConfigError
from .build import build_grader
from .types import BOOLEAN_FLAGS, ERROR_FLAGS, Grade, Sample
from .verdicts import verdict_of


def error_flags(grade: Grade) -> dict[str, Any]:
    """Every OpenAI flag (False / None when not raised), plus any extra details the grade has."""
    flags: dict[str, Any] = {flag: (False if flag in BOOLEAN_FLAGS else None) for flag in ERROR_FLAGS}
    flags.update(grade.errors)
    return flags


def run_response(name: str, type_: str, grade: Grade) -> dict[str, Any]:
    """The run-endpoint response for one grade, plus ``passed``: the grade's pass verdict
    (``pass_threshold``, or a label model's ``passing_labels``), None when the grader gives none.

    OpenAI's run response has no verdict; its evals report one per result under that name.
    """
    return {
        "reward": grade.reward,
        "metadata": {
            "name": name,
            "type": type_,
            "errors": error_flags(grade),
            "execution_time": grade.execution_time,
            "scores": grade.scores,
            "token_usage": grade.token_usage,
            "sampled_model_name": grade.metadata.get("sampled_model_name"),
        },
        "sub_rewards": grade.sub_rewards,
        "model_grader_token_usage_per_model": grade.metadata.get("token_usage_per_model", {}),
        "passed": verdict_of(grade.scores),
    }


def run_grader(grader: dict[str, Any], model_sample: str | dict, item: dict[str, Any] | None = None) -> dict:
    """Grade ``model_sample`` (the output text, or a dict of sample fields) against ``item``.

    Config errors raise ``GraderConfigError``, except those OpenAI reports as a flag on the run
    (a ``multi`` formula that does not parse is ``formula_parse_error`` with reward 0).
    """
    try:
        loaded = build_grader(grader)
    except GraderConfigError as error:
        if error.flag is None:
            raise
        return run_response(grader.get("name", ""), grader.get("type", ""), Grade.failed(error.flag, str(error)))
    with loaded:
        grade = loaded.grade(Sample.coerce(model_sample), item or {})
    return run_response(loaded.name, loaded.type, grade)
