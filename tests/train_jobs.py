"""Helpers the ``rft train`` tests share: job folders on disk, the CLI, the metrics file."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

RFT = str(Path(sys.executable).with_name("rft"))


def chat(text: str, system: str | None = None) -> list[dict[str, str]]:
    """A chat ending with the user's ``text``, after an optional system message."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_job(
    folder: Path,
    model: Path,
    grader: dict[str, Any],
    train: list[dict[str, Any]],
    valid: list[dict[str, Any]],
    hyperparameters: dict[str, Any],
    **trainer: Any,
) -> Path:
    """``train.jsonl``, ``valid.jsonl`` and ``job.yaml`` in ``folder``; the run goes to ``folder/run``."""
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "valid.jsonl", valid)
    job = {
        "model": str(model),
        "training_file": "train.jsonl",
        "validation_file": "valid.jsonl",
        "method": {"type": "reinforcement", "reinforcement": {"grader": grader, "hyperparameters": hyperparameters}},
        "trainer": {"output_dir": str(folder / "run"), **trainer},
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of ``path`` containing ``text``."""
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def run_rft(*args: Any, timeout: float = 240) -> subprocess.CompletedProcess:
    """``rft train ARGS`` in a subprocess, output captured."""
    return subprocess.run([RFT, "train", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def metric_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a run's ``metrics.csv``."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def steps_with(rows: list[dict[str, str]], column: str) -> list[int]:
    """The steps whose row has a value in ``column``."""
    return [int(row["step"]) for row in rows if row.get(column)]
