"""The built-in demo job of ``rft train --demo``: a tiny model learns a skill, graded by exact match.

The task: a digit hidden in a short string of consonants ("Which digit is in 'kq7zt'?"), answered
with that digit alone, graded by ``string_check`` ``eq`` against the row's ``answer`` (1 or 0:
there is nothing to gain but the exact answer). The tiny random-init model
(``rft_plugins.tiny_model``) first gets a supervised warm-up on the training rows' answers
(``rft_plugins.sft``, a few seconds) that stops once it samples the exact answer about 20% of the
time; 60 RFT steps then take it to about 93% exact (greedy: 84% to 94%) on 50 validation prompts
whose strings it never saw. About 25 s on an idle 2-core CPU; downloads nothing.

The same job and data are in ``examples/quickstart/`` (``job.yaml``, ``train.jsonl``,
``valid.jsonl``), where a test keeps them equal to what this module writes.

The demo folder holds the inputs, both models and, in ``run/``, the run. It is written only into
an empty or new folder, or over an earlier demo (``.rft-demo`` says which files the demo owns): a
user's ``job.yaml`` or an earlier real run is never replaced.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import yaml

QUESTION = "Which digit is in '{}'?"
CONSONANTS = "bcdfghjklmnpqrstvwxz"
TRAIN_ROWS, VALID_ROWS = 160, 50
#: the tiny model's shape: one layer finds and copies the digit reliably for every seed tried
MODEL_SHAPE = {"hidden_size": 64, "num_layers": 1, "num_heads": 4}
#: the warm-up stops at this mean probability of the exact answer on training prompts (rft_plugins.sft)
WARMUP_STOP_AT = 0.2
BASE_MODEL, WARM_MODEL = "tiny-model", "sft-model"
#: in the warm model's folder: what the warm-up did (steps, exact-answer probability, seconds, version)
WARMUP_RECORD = "warmup.json"
#: changes when the demo's task, model shape or warm-up do: models another version built are rebuilt
DEMO_VERSION = 2

GRADER: dict[str, Any] = {
    "type": "string_check",
    "name": "exact",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.answer }}",
    "operation": "eq",
}

JOB: dict[str, Any] = {
    "model": WARM_MODEL,
    "training_file": "train.jsonl",
    "validation_file": "valid.jsonl",
    "suffix": "quickstart",
    "method": {
        "type": "reinforcement",
        "reinforcement": {
            "grader": GRADER,
            "hyperparameters": {
                "n_epochs": 6,
                "batch_size": 16,
                "learning_rate_multiplier": 1.0,
                "eval_interval": 10,
                "eval_samples": 2,
                "compute_multiplier": 1.0,
                "reasoning_effort": "auto",
            },
        },
    },
    "trainer": {
        "num_generations": 8,
        "max_completion_length": 4,
        "learning_rate": 3e-3,
        # Adam's first steps move every weight by about the learning rate whatever the gradient:
        # at full rate they can wreck a model this small in one step (seen for one seed in five)
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": 10,
        "temperature": 1.0,
        "gradient_checkpointing": False,
        "output_dir": "runs/quickstart",
        "seed": 7,
    },
}


def answer_check(name: str, operation: str) -> dict[str, Any]:
    """A ``string_check`` grader of the sampled text against the row's ``answer``."""
    return {**GRADER, "name": name, "operation": operation}


def _row(text: str, answer: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": QUESTION.format(text)}], "answer": answer}


def demo_rows(seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, valid) rows: distinct strings of 3-6 consonants with one digit; no string in both."""
    draw = random.Random(seed)
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < TRAIN_ROWS + VALID_ROWS:
        letters = [draw.choice(CONSONANTS) for _ in range(draw.randint(3, 6))]
        digit = draw.choice("0123456789")
        letters.insert(draw.randint(0, len(letters)), digit)
        text = "".join(letters)
        if text not in seen:
            seen.add(text)
            rows.append(_row(text, digit))
    return rows[:TRAIN_ROWS], rows[TRAIN_ROWS:]


def build_demo_models(folder: str | Path, seed: int = 0) -> Path:
    """The random-init tiny model and its supervised warm-up, once each, in ``folder``; returns the warm one.

    The warm-up trains on the demo's training rows only: validation stays held out.
    """
    from ..sft import supervised_finetune
    from ..tiny_model import build_tiny_model

    folder = Path(folder)
    base, warm = folder / BASE_MODEL, folder / WARM_MODEL
    if _built_version(warm) != DEMO_VERSION:  # another version's models (another task or shape): rebuilt
        for path in (base, warm):
            shutil.rmtree(path, ignore_errors=True)
    if not (base / "config.json").is_file():
        build_tiny_model(base, seed=seed, **MODEL_SHAPE)
    if not (warm / "config.json").is_file():
        train, _ = demo_rows()
        result = supervised_finetune(base, train, warm, stop_at=WARMUP_STOP_AT, seed=seed)
        record = {"steps": result.steps, "exact_probability": result.exact_probability, "seconds": result.seconds,
                  "version": DEMO_VERSION}
        (warm / WARMUP_RECORD).write_text(json.dumps(record) + "\n", encoding="utf-8")
    return warm


def _built_version(warm: Path) -> int | None:
    """The demo version whose warm-up made ``warm``; None when there is none."""
    try:
        return json.loads((warm / WARMUP_RECORD).read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None


def warmup_record(folder: str | Path) -> dict[str, Any]:
    """What the warm-up in ``folder`` did: ``steps``, ``exact_probability`` (training prompts), ``seconds``."""
    return json.loads((Path(folder) / WARM_MODEL / WARMUP_RECORD).read_text(encoding="utf-8"))


def validation_before_after(run_folder: str | Path) -> tuple[tuple[int, float], tuple[int, float]]:
    """``(step, valid_reward_mean)`` of the run's first and last validation, from its ``metrics.csv``."""
    from ..metrics_csv import read_metrics

    valid = read_metrics(Path(run_folder) / "metrics.csv")["valid_reward_mean"]
    return valid[0], valid[-1]


def warmup_line(folder: str | Path) -> str:
    """One line on the warm-up for the terminal."""
    record = warmup_record(folder)
    return (f"supervised warm-up ({WARM_MODEL}/): {record['steps']} steps in {record['seconds']:.0f} s, "
            f"exact answer sampled with probability {record['exact_probability']:.2f} on training prompts")


def before_after_line(run_folder: str | Path) -> str:
    """The held-out exact-match reward before RFT (step 0) and after (the last validation), one line."""
    (first, before), (last, after) = validation_before_after(run_folder)
    return (f"Held-out validation reward (exact match, {VALID_ROWS} prompts): {before:.2f} at step {first} "
            f"(before RFT) -> {after:.2f} at step {last}")


def jsonl_text(rows: list[dict[str, Any]]) -> str:
    """Rows as JSONL text, one JSON object per line."""
    return "".join(json.dumps(row) + "\n" for row in rows)


#: the file that marks a folder as the demo's, and what the demo writes there (``run/``: the run)
DEMO_MARKER = ".rft-demo"
DEMO_FILES = (DEMO_MARKER, "job.yaml", "train.jsonl", "valid.jsonl", BASE_MODEL, WARM_MODEL, "run")


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
    """Write the demo job, its data and (once) its models into ``folder``; returns the job file.

    The job's ``output_dir`` is ``folder/run``: a run folder never holds the job's own inputs.
    ``RunError`` when ``folder`` holds anything but an earlier demo.
    """
    folder = Path(folder).expanduser().resolve()
    _check_demo_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(json.dumps({"files": list(DEMO_FILES)}) + "\n", encoding="utf-8")
    train, valid = demo_rows()
    (folder / "train.jsonl").write_text(jsonl_text(train), encoding="utf-8")
    (folder / "valid.jsonl").write_text(jsonl_text(valid), encoding="utf-8")
    build_demo_models(folder)
    job = json.loads(json.dumps(JOB))
    job["trainer"]["output_dir"] = str(folder / "run")
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path
