"""Catch a broken grader before training: the reference answer should score high, an empty or a
random answer low, and nothing should raise an error flag.

OpenAI's RFT guidance is to test the grader first; a grader that gives the reference 0 (a typo in
``{{ item.answr }}``) or the empty answer 1 (``operation: like`` with an empty reference) trains
a model on noise. For each row, every (sub-)grader with an ``input`` and a ``reference`` template
is given the row's reference as the answer: its reference is rendered against the row and put
where its input template reads the sample (``sample.output_text``, or a path of
``sample.output_json``). The whole grader then grades an empty answer and a random one.
"""

from __future__ import annotations

import json
import random
import re
import string
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import GradingError
from .build import build_grader
from .runner import LoadedGrader
from .templates import Template
from .types import Grade, Sample, item_of

#: ``{{ sample.output_text }}`` or ``{{ sample.output_json.a.b }}`` alone: where an answer goes
ANSWER_SLOT = re.compile(r"^\s*\{\{\s*sample\.(output_text|output_json((?:\.\w+)*))\s*\}\}\s*$")


@dataclass
class ProbeResult:
    """The rewards one kind of answer got over the rows, and the flags it raised."""

    rewards: list[float | None] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)

    def add(self, grade: Grade) -> None:
        self.rewards.append(grade.reward)
        for flag in grade.flagged:
            self.flags[flag] = self.flags.get(flag, 0) + 1

    @property
    def mean(self) -> float | None:
        present = [reward for reward in self.rewards if reward is not None]
        return statistics.fmean(present) if present else None


@dataclass
class CheckReport:
    """Per probe (``reference: <grader>``, ``empty``, ``random``) what it scored, and the problems."""

    rows: int
    probes: dict[str, ProbeResult]
    problems: list[str]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "probes": {name: {"mean": probe.mean, "rewards": probe.rewards, "flags": probe.flags}
                       for name, probe in self.probes.items()},
            "problems": self.problems,
            "notes": self.notes,
            "ok": not self.problems,
        }


def reference_graders(config: dict[str, Any], key: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, config)`` of the grader and every ``multi`` sub-grader (nested too) that compares
    an input with a reference the row supplies."""
    name = key or str(config.get("name") or config.get("type"))
    if isinstance(config.get("graders"), dict):
        for sub_key, sub in config["graders"].items():
            if isinstance(sub, dict):
                yield from reference_graders(sub, f"{name}.{sub_key}")
    if isinstance(config.get("input"), str) and isinstance(config.get("reference"), str):
        yield name, config


def reference_sample(config: dict[str, Any], item: dict[str, Any]) -> Sample | None:
    """The sample whose answer is the row's reference for this grader, or None when its input
    template does not read the answer from one place (or the row has no reference)."""
    slot = ANSWER_SLOT.match(config["input"])
    if slot is None:
        return None
    try:
        answer = Template(config["reference"], "reference").render({}, item)
    except GradingError:  # the row lacks the reference: the grader would flag it in training too
        return None
    if slot.group(1) == "output_text":
        return Sample.from_text(answer)
    value: Any = _parsed(answer)
    for step in reversed([part for part in (slot.group(2) or "").split(".") if part]):
        value = {step: value}
    return Sample.from_text(json.dumps(value))


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def random_answer(rng: random.Random) -> str:
    """A few random words: what an untrained model might say."""
    return " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 8)))
                    for _ in range(rng.randint(1, 6)))


def check_grader(grader: dict[str, Any], rows: list[dict[str, Any]], seed: int = 0,
                 timeout: float | None = 120.0) -> CheckReport:
    """Grade each row's reference answer, an empty answer and a random one; list what looks wrong."""
    rng = random.Random(seed)
    items = [item_of(row) for row in rows]
    probes: dict[str, ProbeResult] = {}
    for name, config in reference_graders(grader):
        with build_grader(config) as loaded:
            result = probes.setdefault(f"reference: {name}", ProbeResult())
            for item in items:
                sample = reference_sample(config, item)
                if sample is not None:
                    result.add(loaded.grade(sample, item))
    with build_grader(grader) as loaded:
        for label, answer in (("empty", lambda: ""), ("random", lambda: random_answer(rng))):
            probes[label] = _grade_all(loaded, [answer() for _ in items], items, timeout)
    problems, notes = _findings(probes)
    return CheckReport(len(rows), probes, problems, notes)


def _grade_all(loaded: LoadedGrader, texts: list[str], items: list[dict[str, Any]], timeout: float | None) -> ProbeResult:
    result = ProbeResult()
    for grade in loaded.grade_batch(texts, items, timeout=timeout):
        result.add(grade)
    return result


def _findings(probes: dict[str, ProbeResult]) -> tuple[list[str], list[str]]:
    """Problems (the reference scoring below 1 or raising flags, empty or random answers scoring
    high) and notes (flags that empty or random answers raise: often the grader doing its job)."""
    problems: list[str] = []
    notes: list[str] = []
    for name, probe in probes.items():
        reference = name.startswith("reference")
        if reference and not probe.rewards:
            problems.append(f"{name}: no row has a reference this grader can be given")
        elif reference and (probe.mean is None or probe.mean < 0.999):
            low = sum(1 for reward in probe.rewards if reward is None or reward < 0.999)
            average = "nothing" if probe.mean is None else f"{probe.mean:.3f} on average"
            problems.append(f"{name}: the reference answer scores {average} ({low} of {len(probe.rewards)} rows "
                            "below 1)")
        elif not reference and probe.mean is not None and probe.mean > 0.5:
            problems.append(f"{name} answers score {probe.mean:.3f} on average: the grader rewards answers that say "
                            "nothing useful")
        for flag, count in probe.flags.items():
            (problems if reference else notes).append(f"{name}: {flag} on {count} of {len(probe.rewards)} rows")
    return problems, notes
