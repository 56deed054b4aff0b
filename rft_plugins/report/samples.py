"""Which samples the report's sample browser shows: the best and worst of the last validation, and
the prompts whose reward rose most between the first validation and the last."""

from __future__ import annotations

from dataclasses import dataclass

from .run_data import Sample, Validation, mean_reward

#: samples (or prompts) per tab of the sample browser
SHOWN_PER_TAB = 10


@dataclass(frozen=True)
class PromptProgress:
    """One prompt's mean reward at the first and the last validation, with the samples behind each."""

    first: tuple[Sample, ...]
    last: tuple[Sample, ...]
    first_mean: float
    last_mean: float

    @property
    def gain(self) -> float:
        return self.last_mean - self.first_mean


def best_samples(validation: Validation | None, count: int = SHOWN_PER_TAB) -> list[Sample]:
    """The highest rewards first; samples whose reward did not apply are left out."""
    graded = [sample for sample in validation.samples if sample.reward is not None] if validation else []
    return sorted(graded, key=lambda sample: -sample.reward)[:count]  # type: ignore[operator]


def worst_samples(validation: Validation | None, count: int = SHOWN_PER_TAB) -> list[Sample]:
    """The lowest rewards first; samples whose reward did not apply are left out."""
    graded = [sample for sample in validation.samples if sample.reward is not None] if validation else []
    return sorted(graded, key=lambda sample: sample.reward)[:count]  # type: ignore[arg-type, return-value]


def most_improved(first: Validation | None, last: Validation | None, count: int = SHOWN_PER_TAB) -> list[PromptProgress]:
    """Prompts graded at both validations, by gain in mean reward (largest first).

    Empty when fewer than two validations ran: there is nothing to compare.
    """
    if first is None or last is None or first.step == last.step:
        return []
    before, after = _by_prompt(first), _by_prompt(last)
    progress = []
    for key in before.keys() & after.keys():
        first_mean, last_mean = mean_reward(before[key]), mean_reward(after[key])
        if first_mean is not None and last_mean is not None:
            progress.append(PromptProgress(tuple(before[key]), tuple(after[key]), first_mean, last_mean))
    progress.sort(key=lambda prompt: (-prompt.gain, prompt.last[0].prompt.text))
    return progress[:count]


def _by_prompt(validation: Validation) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = {}
    for sample in validation.samples:
        grouped.setdefault(sample.prompt_key, []).append(sample)
    return grouped
