"""Sample a model on rows and grade every sample: the baseline before training, a checkpoint after.

OpenAI's RFT guidance is to check the grader and the base model's score before training; this is
that check, with the same sampler, tool-call parsing and graders ``rft train`` uses (no Lightning).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from ..errors import RFTError
from ..graders.build import build_grader
from ..graders.metrics import ScoredSample, flags_of, reward_metrics
from ..graders.types import Sample, item_of
from ..sampling import SamplingParams, build_sampler
from ..sampling.prompts import encode_prompt
from ..sampling.tool_calls import build_tool_call_parser, parse_tool_calls

#: share of the reward range each histogram bin covers (10 bins over [0, 1])
HISTOGRAM_BINS = 10


class ModelLoadError(RFTError, ValueError):
    """The model to evaluate cannot be loaded (a missing folder, a hub id not in the cache offline)."""


@dataclass(frozen=True)
class EvalSettings:
    """What to sample and how; the defaults are ``rft train``'s."""

    model: str
    grader: dict[str, Any]
    samples: int = 4
    max_new_tokens: int = 256
    max_prompt_length: int | None = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    response_format: dict[str, Any] | None = None
    model_init_kwargs: dict[str, Any] = field(default_factory=dict)
    sampler: str = "transformers"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    tool_call_parser: str = "auto"
    prompts_per_call: int = 8
    pass_threshold: float | None = None
    grader_timeout: float = 120.0
    grader_concurrency: int = 32
    seed: int = 42

    @property
    def threshold(self) -> float:
        """A sample passes at this reward: the setting, else the grader's ``pass_threshold``, else 1."""
        if self.pass_threshold is not None:
            return self.pass_threshold
        return float(self.grader.get("pass_threshold", 1.0))


@dataclass
class EvalResult:
    """Every graded sample (in row order, ``samples`` per row) and the figures drawn from them."""

    settings: EvalSettings
    records: list[dict[str, Any]]
    metrics: dict[str, float]
    seconds: dict[str, float]

    @property
    def rewards(self) -> list[float]:
        """The rewards that apply (not None)."""
        return [record["reward"] for record in self.records if record["reward"] is not None]

    def summary(self) -> dict[str, Any]:
        """Reward mean and spread, pass rate, histogram, per-grader means and error rates."""
        rewards = self.rewards
        threshold = self.settings.threshold
        counts = [0] * HISTOGRAM_BINS
        for reward in rewards:
            counts[min(HISTOGRAM_BINS - 1, max(0, int(reward * HISTOGRAM_BINS)))] += 1
        return {
            "samples": len(self.records),
            "rows": len({record["index"] for record in self.records}),
            "graded": len(rewards),
            "reward_mean": statistics.fmean(rewards) if rewards else 0.0,
            "reward_std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
            "pass_threshold": threshold,
            "pass_rate": sum(reward >= threshold for reward in rewards) / len(rewards) if rewards else 0.0,
            "histogram": {f"{bin / HISTOGRAM_BINS:.1f}-{(bin + 1) / HISTOGRAM_BINS:.1f}": count
                          for bin, count in enumerate(counts)},
            "graders": {key.removeprefix("eval/").removesuffix("_reward_mean"): value
                        for key, value in self.metrics.items() if key.endswith("_reward_mean") and "/" in key},
            "error_rates": {key.removeprefix("eval/").removesuffix("_rate"): value
                            for key, value in self.metrics.items()
                            if key.endswith("_rate") and not key.endswith("_pass_rate") and value > 0},
            "seconds": self.seconds,
        }

    def extremes(self, count: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ``count`` best and worst graded samples."""
        graded = sorted((record for record in self.records if record["reward"] is not None),
                        key=lambda record: record["reward"])
        return graded[::-1][:count], graded[:count]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings), "summary": self.summary(), "records": self.records}


def evaluate(
    settings: EvalSettings, rows: list[dict[str, Any]], progress: Callable[[int, int], None] | None = None
) -> EvalResult:
    """Sample ``settings.samples`` answers per row and grade them; ``progress(done, total)`` after
    each batch of prompts."""
    import torch

    from ..models import load_causal_lm

    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    started = time.perf_counter()
    try:
        model, tokenizer = load_causal_lm(settings.model, settings.model_init_kwargs)
    except (OSError, ValueError) as error:  # no such folder, not in the cache offline, no weights
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"model {settings.model!r} cannot be loaded: {first}") from error
    if torch.cuda.is_available():
        model.to("cuda")
    sampler = build_sampler(settings.sampler, tokenizer, settings.sampler_options)
    parser = build_tool_call_parser(settings.tool_call_parser, tokenizer)
    params = SamplingParams(
        num_generations=settings.samples, max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
        top_p=settings.top_p, top_k=settings.top_k, response_format=settings.response_format,
    )
    loaded = time.perf_counter()
    records: list[dict[str, Any]] = []
    scored: list[ScoredSample] = []
    sampling = grading = 0.0
    with build_grader(settings.grader) as grader:
        for start in range(0, len(rows), settings.prompts_per_call):
            batch = rows[start : start + settings.prompts_per_call]
            before = time.perf_counter()
            prompts = [encode_prompt(tokenizer, row, settings.max_prompt_length) for row in batch]
            rollout = sampler.sample(model, prompts, params).validate(len(batch))
            tools = [row.get("tools") for row in batch]
            if rollout.tool_calls is None and parser is not None and any(tools):
                parse_tool_calls(rollout, tokenizer, parser, prompts, tools)
            calls: Sequence[list[dict[str, Any]] | None] = rollout.tool_calls if rollout.tool_calls else [None] * len(rollout.texts)
            sampled = time.perf_counter()
            items = [item_of(row) for row in batch for _ in range(settings.samples)]
            samples = [Sample.from_text(text, call) for text, call in zip(rollout.texts, calls)]
            grades = grader.grade_batch(samples, items, settings.grader_concurrency, settings.grader_timeout)
            sampling, grading = sampling + sampled - before, grading + time.perf_counter() - sampled
            for position, grade in enumerate(grades):
                row = batch[position // settings.samples]
                records.append({
                    "index": start + position // settings.samples, "sample": position % settings.samples,
                    "prompt": row["messages"][-1].get("content"), "completion": rollout.texts[position],
                    "tool_calls": calls[position] or [], "reward": grade.reward,
                    "sub_rewards": dict(grade.sub_rewards), "errors": flags_of(grade),
                    "truncated": rollout.truncated[position],
                })
                scored.append(ScoredSample.from_grade(grade, rollout.completion_lengths[position],
                                                      rollout.truncated[position]))
            if progress is not None:
                progress(min(start + len(batch), len(rows)), len(rows))
    close = getattr(sampler, "close", None)
    if callable(close):
        close()
    metrics = reward_metrics(scored, "eval", str(settings.grader.get("name", settings.grader.get("type"))))
    seconds = {"load": loaded - started, "sampling": sampling, "grading": grading,
               "total": time.perf_counter() - started}
    return EvalResult(settings, records, metrics, seconds)
