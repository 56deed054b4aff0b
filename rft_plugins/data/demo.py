"""The built-in demo job of ``rft train --demo``: about 20 s on an idle 2-core CPU, downloads nothing.

A tiny random-init model (``rft_plugins.tiny_model``) learns to put the right vowel in its answer.
The same files are in ``examples/quickstart/`` (``job.yaml``, ``train.jsonl``, ``valid.jsonl``),
where a test keeps them equal to what this module writes.

The demo folder holds the inputs and, in ``run/``, the run. It is written only into an empty or
new folder, or over an earlier demo (``.rft-demo`` says which files the demo owns): a user's
``job.yaml`` or an earlier real run is never replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

WORDS = {
    "a": ["apple", "amber", "anchor", "arrow", "atlas", "acorn"],
    "e": ["eagle", "ember", "echo", "elbow", "engine", "envoy"],
    "i": ["igloo", "island", "ink", "iron"],
    "o": ["olive", "orbit", "otter", "ocean"],
    "u": ["umbrella", "under", "unit", "urchin"],
}
SYSTEM = "Answer with one lowercase letter."


def answer_check(name: str, operation: str) -> dict[str, Any]:
    """A ``string_check`` grader of the sampled text against the row's ``answer``."""
    return {
        "type": "string_check",
        "name": name,
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.answer }}",
        "operation": operation,
    }


#: 0.7 for mentioning the right vowel, 0.3 more for answering with it alone
GRADER: dict[str, Any] = {
    "type": "multi",
    "name": "vowel",
    "graders": {"mentions": answer_check("mentions", "like"), "exact": answer_check("exact", "eq")},
    "calculate_output": "0.7 * mentions + 0.3 * exact",
}

JOB: dict[str, Any] = {
    "model": "tiny-model",
    "training_file": "train.jsonl",
    "validation_file": "valid.jsonl",
    "suffix": "quickstart",
    "method": {
        "type": "reinforcement",
        "reinforcement": {
            "grader": GRADER,
            "hyperparameters": {
                "n_epochs": 20,
                "batch_size": 4,
                "learning_rate_multiplier": 1.0,
                "eval_interval": 10,
                "eval_samples": 1,
                "compute_multiplier": 1.0,
                "reasoning_effort": "auto",
            },
        },
    },
    "trainer": {
        "num_generations": 8,
        "max_completion_length": 8,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "constant",
        "temperature": 1.0,
        "output_dir": "runs/quickstart",
        "seed": 7,
    },
}


def _row(word: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Which vowel does '{word}' start with?"},
        ],
        "answer": answer,
    }


def demo_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, valid) rows: every fourth word of each vowel is held out for validation."""
    train: list[dict[str, Any]] = []
    valid: list[dict[str, Any]] = []
    for answer, words in WORDS.items():
        for index, word in enumerate(words):
            (valid if index % 4 == 3 else train).append(_row(word, answer))
    return train, valid


def jsonl_text(rows: list[dict[str, Any]]) -> str:
    """Rows as JSONL text, one JSON object per line."""
    return "".join(json.dumps(row) + "\n" for row in rows)


#: the file that marks a folder as the demo's, and what the demo writes there (``run/``: the run)
DEMO_MARKER = ".rft-demo"
DEMO_FILES = (DEMO_MARKER, "job.yaml", "train.jsonl", "valid.jsonl", "tiny-model", "run")


def _check_demo_folder(folder: Path) -> None:
    """The demo writes into an empty or new folder, or over an earlier demo, nothing else."""
    from ..training.run_folder import RunError

    if folder.exists() and not folder.is_dir():
        raise RunError(f"refusing the demo folder {folder}: it is a file, not a folder")
    entries = sorted(os.listdir(folder)) if folder.is_dir() else []
    foreign = [entry for entry in entries if entry not in DEMO_FILES] if DEMO_MARKER in entries else entries
    if foreign:
        raise RunError(
            f"refusing the demo folder {folder}: it holds files that are not the demo's ({', '.join(foreign[:5])}); "
            "the demo writes into an empty or new --output-dir, or over an earlier demo"
        )


def write_demo(folder: str | Path) -> Path:
    """Write the demo job, its data and (once) its tiny model into ``folder``; returns the job file.

    The job's ``output_dir`` is ``folder/run``: a run folder never holds the job's own inputs.
    ``RunError`` when ``folder`` holds anything but an earlier demo.
    """
    from ..tiny_model import build_tiny_model

    folder = Path(folder).expanduser().resolve()
    _check_demo_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(json.dumps({"files": list(DEMO_FILES)}) + "\n", encoding="utf-8")
    train, valid = demo_rows()
    (folder / "train.jsonl").write_text(jsonl_text(train), encoding="utf-8")
    (folder / "valid.jsonl").write_text(jsonl_text(valid), encoding="utf-8")
    if not (folder / "tiny-model" / "config.json").is_file():
        build_tiny_model(folder / "tiny-model")
    job = json.loads(json.dumps(JOB))
    job["trainer"]["output_dir"] = str(folder / "run")
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path
