"""A run folder read into plain data for the report: metrics, the first and last validation's
samples, the run record and the summary.

Everything is read from the files ``rft train`` leaves (never from a live run), so a report can be
rebuilt for any run folder, finished, stopped or still running. A file that is missing or
unreadable is not an error: the report says what it could not read (``RunData.notes``) and shows
the rest. Texts are cut to ``MAX_TEXT_CHARS`` while reading, so a run with huge completions costs
the report little memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..documents import DocumentLimits, json_lines
from ..errors import RFTError
from ..metrics_csv import read_metrics  # the loop's own reader: the same steps and values

METRICS_FILE = "metrics.csv"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
RUN_RECORD_FILE = "run.json"
RUN_FILES = (METRICS_FILE, SAMPLES_FILE, SUMMARY_FILE, RUN_RECORD_FILE)
#: characters of a prompt, completion or error detail kept per sample (the rest is counted)
MAX_TEXT_CHARS = 4000

#: a metric column: ``(step, value)`` pairs sorted by step, finite values only
Points = list[tuple[int, float]]


class ReportError(RFTError):
    """The folder cannot be reported on (it is not a run folder)."""


@dataclass(frozen=True)
class Text:
    """A text cut to ``MAX_TEXT_CHARS``; ``omitted`` counts the characters left out."""

    text: str
    omitted: int = 0

    @classmethod
    def of(cls, value: Any) -> "Text":
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        return cls(text[:MAX_TEXT_CHARS], max(0, len(text) - MAX_TEXT_CHARS))


@dataclass(frozen=True)
class Sample:
    """One graded validation sample, as the report shows it."""

    step: int
    prompt: Text
    prompt_key: str  # a digest of the whole prompt: the same prompt at another validation
    completion: Text
    tool_calls: tuple[Text, ...]
    reward: float | None  # None: the grader's reward did not apply
    sub_rewards: dict[str, float | None]
    errors: dict[str, Text]  # raised flag -> its details (empty when the flag carries none)


@dataclass(frozen=True)
class Validation:
    """The samples of one validation."""

    step: int
    samples: tuple[Sample, ...]

    @property
    def reward_mean(self) -> float | None:
        return mean_reward(self.samples)


def mean_reward(samples: Iterable[Sample]) -> float | None:
    """The mean over the samples whose reward applies (as ``valid_reward_mean``); None if none does."""
    rewards = [sample.reward for sample in samples if sample.reward is not None]
    return sum(rewards) / len(rewards) if rewards else None


@dataclass
class RunData:
    """What the report is made of. ``first_validation`` is None when no validation ran; it is the
    same as ``last_validation`` when only one did."""

    folder: Path
    metrics: dict[str, Points] = field(default_factory=dict)
    first_validation: Validation | None = None
    last_validation: Validation | None = None
    validation_count: int = 0
    record: dict[str, Any] = field(default_factory=dict)  # run.json: the job as run, its plan and settings
    summary: dict[str, Any] = field(default_factory=dict)  # summary.json: written when the run has ended
    notes: list[str] = field(default_factory=list)  # files that were missing or could not be read


def read_run(folder: str | Path) -> RunData:
    """Read ``folder``; ``ReportError`` when it holds none of a run's files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder")
    if not any((folder / name).is_file() for name in RUN_FILES):
        raise ReportError(f"{folder} is not a run folder: it holds none of {', '.join(RUN_FILES)}")
    run = RunData(folder=folder)
    run.metrics = _read_metrics(folder / METRICS_FILE, run.notes)
    run.record = _read_json_object(folder / RUN_RECORD_FILE, run.notes)
    # no summary yet is normal: a running run, and the report rft train writes just before it
    run.summary = _read_json_object(folder / SUMMARY_FILE, run.notes, expected=False)
    _read_validations(folder / SAMPLES_FILE, run)
    return run


def _read_metrics(path: Path, notes: list[str]) -> dict[str, Points]:
    if not path.is_file():
        notes.append(f"{METRICS_FILE} is missing: no curves")
        return {}
    try:
        return read_metrics(path)
    except (OSError, ValueError, TypeError, csv.Error) as error:
        notes.append(f"{METRICS_FILE} could not be read ({type(error).__name__}: {error}): no curves")
        return {}


def _read_json_object(path: Path, notes: list[str], expected: bool = True) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` with a note when it is damaged, or missing though ``expected``."""
    if not path.is_file():
        if expected:
            notes.append(f"{path.name} is missing")
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        notes.append(f"{path.name} could not be read ({type(error).__name__}: {error})")
        return {}
    if not isinstance(value, dict):
        notes.append(f"{path.name} does not hold a JSON object")
        return {}
    return value


def _read_validations(path: Path, run: RunData) -> None:
    """The first and last validation's samples, in one pass over a file that may be large."""
    if not path.is_file():
        run.notes.append(f"{SAMPLES_FILE} is missing: no samples")
        return
    kept: dict[int, list[Sample]] = {}  # the samples of the lowest and highest step seen so far
    steps: set[int] = set()
    skipped = 0
    for _, record in json_lines(path, DocumentLimits.from_environment(), skip_bad=True):
        sample = _sample(record)
        if sample is None:
            skipped += 1
            continue
        steps.add(sample.step)
        first, last = min([sample.step, *kept]), max([sample.step, *kept])
        if sample.step in (first, last):
            kept.setdefault(sample.step, []).append(sample)
            kept = {step: samples for step, samples in kept.items() if step in (first, last)}
    if skipped:
        run.notes.append(f"{SAMPLES_FILE}: {skipped} lines are not validation records and were skipped")
    if kept:
        run.first_validation = Validation(min(kept), tuple(kept[min(kept)]))
        run.last_validation = Validation(max(kept), tuple(kept[max(kept)]))
        run.validation_count = len(steps)


def _sample(record: Any) -> Sample | None:
    """A validation record (``outputs.write_samples``) as a ``Sample``; None when it is not one."""
    if not isinstance(record, dict):
        return None
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
        return None
    prompt = _prompt_text(record.get("prompt", ""))
    errors = record.get("errors")
    if not isinstance(errors, dict):
        errors = {}
    return Sample(
        step=int(step),
        prompt=Text.of(prompt),
        prompt_key=hashlib.sha256(prompt.encode("utf-8", "replace")).hexdigest(),
        completion=Text.of(record.get("completion", "")),
        tool_calls=tuple(Text.of(_call_text(call)) for call in _listed(record.get("tool_calls"))),
        reward=_number(record.get("reward")),
        sub_rewards={str(name): _number(value) for name, value in _items(record.get("sub_rewards"))},
        errors={str(flag): Text.of("" if value is True else value) for flag, value in errors.items() if value},
    )


def _prompt_text(prompt: Any) -> str:
    """The prompt as text: the loop records the last message's text; chat messages as ``role: content``."""
    if isinstance(prompt, list) and all(isinstance(message, dict) for message in prompt):
        return "\n".join(f"{message.get('role', '?')}: {message.get('content', '')}" for message in prompt)
    return prompt if isinstance(prompt, str) else json.dumps(prompt, default=str, ensure_ascii=False)


def _call_text(call: Any) -> Any:
    """An OpenAI tool call as ``name(arguments)``; anything else as it is."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return call
    arguments = function.get("arguments", "")
    arguments = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str, ensure_ascii=False)
    return f"{function.get('name', '')}({arguments})"


def _number(value: Any) -> float | None:
    """A finite reward, else None (not applicable, or not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _listed(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else []


def _items(value: Any) -> Iterable[tuple[Any, Any]]:
    return value.items() if isinstance(value, dict) else []
