"""Reading a run's ``metrics.csv`` (Lightning's CSV logger, one sparse row per logging call) back
as curves: for the reward plot, the run report, the demo's before/after line and the benchmarks.
Light on purpose: ``rft report`` reads a run folder without the training stack installed.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_metrics(csv_path: Path) -> dict[str, list[tuple[int, float]]]:
    """Each column of a Lightning ``metrics.csv`` as ``(step, value)`` pairs, sorted by step.

    Lightning writes one sparse row per logging call; when a resumed run logged a step twice,
    the later value wins.
    """
    series: dict[str, dict[int, float]] = {}
    with Path(csv_path).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row.get("step"):
                continue
            step = int(float(row["step"]))
            for column, text in row.items():
                if column in {"step", "epoch"} or not text:
                    continue
                try:
                    value = float(text)
                except ValueError:
                    continue
                if math.isfinite(value):
                    series.setdefault(column, {})[step] = value
    return {column: sorted(values.items()) for column, values in series.items()}
