"""Run one grader config over many samples, as a training step would, for tests and checks."""

from __future__ import annotations

from typing import Any, Sequence

from ..graders.build import build_grader
from ..graders.run import run_response
from ..graders.types import Sample


def _rows(items: dict[str, Any] | Sequence[dict[str, Any]] | None, count: int) -> list[dict[str, Any]]:
    if items is None or isinstance(items, dict):
        return [dict(items or {}) for _ in range(count)]
    rows = list(items)
    if len(rows) != count:
        raise ValueError(f"{count} samples but {len(rows)} items")
    return rows


def grade_samples(
    grader: dict[str, Any],
    samples: Sequence[str | dict[str, Any] | Sample],
    items: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Grade every sample with ``grader`` and answer one ``run_grader``-shaped dict per sample.

    Goes through the batch path that ``rft train`` and the TRL adapter use (``agrade`` and
    concurrency where the grader offers them), so a test sees what training will see. ``items``
    is one row for all samples or one row per sample. A bad config raises ``GraderConfigError``.
    """
    rows = _rows(items, len(samples))
    with build_grader(grader) as loaded:
        grades = loaded.grade_batch(list(samples), rows, timeout=timeout)
    return [run_response(loaded.name, loaded.type, grade) for grade in grades]
