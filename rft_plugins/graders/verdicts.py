"""Pass or fail: OpenAI's ``pass_threshold`` (on ``text_similarity``, ``python`` and
``score_model``) turned into a verdict next to the reward.

The verdict never changes the reward (RFT trains on the reward itself); it is reported as
``scores.passed`` with ``scores.pass_threshold``, so ``run_grader`` can say whether a grade passed
and training can log a pass rate per grader. A grade that raised an error flag never passes, and
one that does not apply (reward None) gets no verdict. Any grader may report a verdict the same
way (``label_model`` does, from its ``passing_labels``).
"""

from __future__ import annotations

from typing import Any

from .types import Grade


def with_verdict(grade: Grade, pass_threshold: float | None) -> Grade:
    """``grade`` with ``scores.passed`` (and ``scores.pass_threshold``) set when there is a threshold."""
    if pass_threshold is None or grade.reward is None:
        return grade
    grade.scores["pass_threshold"] = pass_threshold
    grade.scores["passed"] = not grade.flagged and grade.reward >= pass_threshold
    return grade


def verdict_of(scores: Any) -> bool | None:
    """The pass verdict a grade's ``scores`` report, or None when the grader gives none."""
    if isinstance(scores, dict) and isinstance(scores.get("passed"), bool):
        return scores["passed"]
    return None
