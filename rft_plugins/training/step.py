"""One GRPO-family step as plain code: what ``RFTModule`` runs for ``rft train`` and what
``RFTCallback`` runs inside someone else's Lightning pipeline.

``PolicyStep.run`` samples G completions per prompt, grades them in the background while the model
computes what needs no grades (reference and old log-probs, the first micro-batch's forward),
shapes the grades into advantages over every process's samples, then for each of
``num_iterations`` updates accumulates the gradients of every micro-batch and asks its
``Updater`` to step. How gradients flow and optimisers step (Lightning's manual optimisation,
plain PyTorch) is the caller's, through the ``Updater``.
"""

from __future__ import annotations

import concurrent.futures
import copy
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..graders.metrics import ScoredSample
from ..graders.trainer_state import TrainerState
from ..graders.types import Grade, item_of
from ..sampling import RolloutBatch, SamplingParams, build_sampler, completion_logprobs
from ..sampling.logprobs import eval_mode
from ..sampling.prompts import encode_prompt
from ..sampling.tool_calls import build_tool_call_parser, parse_tool_calls
from ..shaping import ShapingBatch, build_shapers
from .distributed import gather, rank_and_world
from .grading import BackgroundGrader
from .losses import PolicyLoss, importance_sampling_weights, policy_loss
from .micro_batches import MicroBatch, split_rollout
from .settings import ResolvedSettings


class Updater(Protocol):
    """How a step's gradients reach the weights."""

    def zero_grad(self) -> None:
        """Clear the gradients before an update's micro-batches."""

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        """Back-propagate one micro-batch's loss (``last``: the update's last micro-batch)."""

    def step(self, counted: bool) -> None:
        """Apply the update (``counted``: the step's last one, which advances the step count)."""


class LossTotals:
    """An update's loss and token-weighted statistics added up over its micro-batches."""

    def __init__(self) -> None:
        self.loss: Any = 0.0
        self.tokens: Any = 0.0
        self.weighted: dict[str, Any] = {}

    def add(self, result: PolicyLoss, mask: torch.Tensor) -> None:
        tokens = mask.sum().float()
        self.loss = self.loss + result.loss.detach()
        self.tokens = self.tokens + tokens
        for name, value in (("kl", result.kl), ("clip_ratio", result.clip_ratio)):
            if value is not None:
                self.weighted[name] = self.weighted.get(name, 0.0) + value.detach().float() * tokens

    def mean(self, name: str) -> torch.Tensor:
        """The token-weighted mean of ``name`` over the micro-batches."""
        return self.weighted[name] / self.tokens.clamp(min=1.0)


@dataclass
class StepReport:
    """What a step did, for the logs: every process's scored samples, the updates' statistics,
    the sampler/policy mismatch and the time of each phase."""

    scored: list[ScoredSample]
    losses: list[torch.Tensor]
    clip_ratios: list[torch.Tensor]
    kls: list[torch.Tensor]
    mismatch: dict[str, list[torch.Tensor]] = field(default_factory=lambda: {"difference": [], "weights": []})
    seconds: dict[str, float] = field(default_factory=dict)

    def mismatch_metrics(self) -> dict[str, float]:
        """``sampling/logprob_difference_{mean,max}``: |policy - sampler| log-prob per counted
        token; ``sampling/importance_weight_{min,mean,max}`` when the correction is on (TRL's)."""
        metrics: dict[str, float] = {}
        for name, key in (("logprob_difference", "difference"), ("importance_weight", "weights")):
            values = torch.cat(self.mismatch[key]) if self.mismatch[key] else None
            if values is None or not values.numel():
                continue
            metrics[f"sampling/{name}_mean"] = values.float().mean().item()
            metrics[f"sampling/{name}_max"] = values.max().item()
            if key == "weights":
                metrics[f"sampling/{name}_min"] = values.min().item()
        return metrics


def grading_deadline(settings: ResolvedSettings, samples: int) -> float:
    """How long a step may wait for its grades: every grade is bounded by ``grader_timeout``, so a
    batch takes at most its waves of ``grader_concurrency`` grades (one wave more of slack). Past it
    something blocks the grading thread itself, and the run stops with an error instead of hanging."""
    waves = -(-samples // max(1, settings.grader_concurrency))
    return settings.grader_timeout * (waves + 1)


def clock(device: torch.device) -> float:
    """Wall time once the accelerator has finished what was queued, so each phase's time
    includes its kernels, not only their launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class PolicyStep:
    """The plugins of one run (sampler, tool-call parser, reward shapers) and the step they make.

    ``model`` is the policy: its KL reference is the base model with the LoRA adapter switched off,
    or a frozen copy taken now (``beta > 0`` without LoRA), kept in the policy's device and dtype.
    """

    def __init__(self, settings: ResolvedSettings, tokenizer: Any, model: Any):
        self.settings = settings
        self.tokenizer = tokenizer
        self.sampler = build_sampler(settings.sampler, tokenizer, settings.sampler_options)
        self.tool_call_parser = build_tool_call_parser(
            settings.tool_call_parser, tokenizer, settings.tool_call_parser_options
        )
        self.shapers = build_shapers(settings)
        uses_adapter = callable(getattr(model, "disable_adapter", None))
        self.reference = (
            copy.deepcopy(model).eval().requires_grad_(False) if settings.beta > 0 and not uses_adapter else None
        )

    # ------------------------------------------------------------------------- sampling
    def sample(self, model: Any, rows: list[dict[str, Any]], generations: int, device: torch.device) -> RolloutBatch:
        """``generations`` completions per row, tool calls parsed, tensors on ``device``."""
        settings = self.settings
        params = SamplingParams(
            num_generations=generations, max_new_tokens=settings.max_completion_length,
            temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
            response_format=settings.response_format,
        )
        prompts = [encode_prompt(self.tokenizer, row, settings.max_prompt_length) for row in rows]
        rollout = self.sampler.sample(model, prompts, params)
        rollout.validate(len(rows))
        tools = [row.get("tools") for row in rows]
        if rollout.tool_calls is None and self.tool_call_parser is not None and any(tools):
            parse_tool_calls(rollout, self.tokenizer, self.tool_call_parser, prompts, tools)
        for name in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "logprobs"):
            value = getattr(rollout, name)
            if value is not None:
                setattr(rollout, name, value.to(device))
        return rollout

    def logprobs(self, model: Any, part: MicroBatch | RolloutBatch) -> torch.Tensor:
        """The completion tokens' log-probs under ``model`` (chunked through the LM head)."""
        return completion_logprobs(
            model, part.prompt_ids, part.prompt_mask, part.completion_ids, part.completion_mask,
            self.settings.temperature, self.settings.logprob_chunk_size,
        )

    @torch.no_grad()
    def reference_logprobs(self, model: Any, part: MicroBatch | RolloutBatch) -> torch.Tensor:
        """Log-probs under the reference policy, in the policy's device and dtype (a precision
        plugin that converted the policy converts the reference too, so the KL starts at 0)."""
        if self.reference is None:
            with model.disable_adapter(), eval_mode(model):
                return self.logprobs(model, part)
        policy, current = next(model.parameters()), next(self.reference.parameters())
        if (current.device, current.dtype) != (policy.device, policy.dtype):
            self.reference.to(device=policy.device, dtype=policy.dtype)
        return self.logprobs(self.reference, part)

    def loss_mask(self, rollout: RolloutBatch) -> torch.Tensor:
        """The completion tokens the loss counts: all, or only those of completions that ended
        (``mask_truncated_completions``, as TRL)."""
        if not self.settings.mask_truncated_completions:
            return rollout.completion_mask
        ended = torch.tensor([not cut for cut in rollout.truncated], device=rollout.completion_mask.device)
        return rollout.completion_mask * ended.unsqueeze(1).to(rollout.completion_mask.dtype)

    # -------------------------------------------------------------------------- the step
    def run(
        self, model: Any, rows: list[dict[str, Any]], grading: BackgroundGrader, updater: Updater,
        device: torch.device, trainer_state: TrainerState | None = None,
    ) -> StepReport:
        """Sample, grade, shape and update (see the module docstring); ``trainer_state`` (steps
        and epochs done, the last step) reaches the graders that ask for it."""
        settings = self.settings
        started = clock(device)
        rollout = self.sample(model, rows, settings.num_generations, device)
        sampled = clock(device)
        items = [item_of(row) for row in rows for _ in range(settings.num_generations)]
        pending = grading.submit(rollout.texts, items, rollout.tool_calls, trainer_state)
        parts = split_rollout(rollout, self.loss_mask(rollout), settings.micro_batch_size)
        # Model work that needs no grades runs while the grader works: reference and old
        # log-probs, and the first micro-batch's forward (its graph waits for the advantages).
        with torch.no_grad():
            for part in parts:
                if settings.beta > 0:
                    part.ref_logprobs = self.reference_logprobs(model, part)
                if settings.num_iterations > 1:
                    part.old_logprobs = self.logprobs(model, part)
        first_logprobs = self.logprobs(model, parts[0])
        waiting = clock(device)
        deadline = grading_deadline(settings, len(rollout.texts))
        try:
            graded = pending.result(timeout=deadline)
        except concurrent.futures.TimeoutError as error:  # the builtin TimeoutError only from Python 3.11
            raise RuntimeError(
                f"grading {len(rollout.texts)} samples took over {deadline:.0f} s although each grade is bounded by "
                "grader_timeout: a grader blocks the grading thread (a synchronous call inside an async grade?)"
            ) from error
        waited = time.perf_counter() - waiting

        advantages, scored, num_tokens = self.advantages(graded.grades, rollout, device)
        report = StepReport(scored, [], [], [])
        for iteration in range(settings.num_iterations):
            updater.zero_grad()
            totals = LossTotals()
            for index, part in enumerate(parts):
                logprobs = first_logprobs if iteration == 0 and index == 0 else self.logprobs(model, part)
                old_logprobs = logprobs.detach() if part.old_logprobs is None else part.old_logprobs
                if iteration == 0:
                    self._weigh_sampler_mismatch(part, old_logprobs, report.mismatch)
                result = policy_loss(
                    logprobs, old_logprobs, advantages[part.rows], part.loss_mask,
                    loss_type=settings.loss_type, epsilon=settings.epsilon, epsilon_high=settings.epsilon_high,
                    beta=settings.beta, ref_logprobs=part.ref_logprobs,
                    max_completion_length=settings.max_completion_length, num_tokens=num_tokens,
                    num_sequences=len(rollout.texts), bias_correction_kl=settings.use_bias_correction_kl,
                    importance_weights=part.importance_weights,
                )
                updater.backward(result.loss, last=index == len(parts) - 1)
                totals.add(result, part.loss_mask)
            updater.step(counted=iteration == settings.num_iterations - 1)
            report.losses.append(totals.loss)
            report.clip_ratios.append(totals.mean("clip_ratio"))
            if settings.beta > 0:
                report.kls.append(totals.mean("kl"))
        update = getattr(self.sampler, "update_weights", None)
        if callable(update):
            update(model)
        finished = clock(device)
        report.seconds = {
            "sampling": sampled - started, "grading": graded.seconds, "grading_wait": waited,
            "training": finished - sampled - waited,  # model work, not waiting on grades
            "full_iteration": finished - started,
        }
        return report

    def _weigh_sampler_mismatch(
        self, part: MicroBatch, policy_logprobs: torch.Tensor, mismatch: dict[str, list[torch.Tensor]]
    ) -> None:
        """Keep how far the sampler's log-probs are from the policy's (on the tokens the loss
        counts) and, with ``importance_sampling_correction``, set the weights that correct for it."""
        if part.sampler_logprobs is None:
            return
        counted = part.loss_mask.bool()
        mismatch["difference"].append((policy_logprobs - part.sampler_logprobs).abs()[counted])
        settings = self.settings
        if settings.importance_sampling_correction:
            weights = importance_sampling_weights(
                policy_logprobs, part.sampler_logprobs, part.loss_mask, settings.importance_sampling_mode,
                settings.importance_sampling_clip_min, settings.importance_sampling_clip_max,
            )
            part.importance_weights = weights
            mismatch["weights"].append(weights[counted] if weights.size(1) > 1 else weights[counted.any(dim=1), 0])

    def advantages(
        self, grades: list[Grade], rollout: RolloutBatch, device: torch.device
    ) -> tuple[torch.Tensor, list[ScoredSample], float]:
        """Shape the grades of every process together; return this process's advantages, every
        process's scored samples (for metrics) and the DAPO token normaliser (TRL's: the tokens
        the loss counts over all processes, divided by the number of processes)."""
        lengths = rollout.completion_lengths
        local = [ScoredSample.from_grade(g, n, t) for g, n, t in zip(grades, lengths, rollout.truncated)]
        per_rank = gather(local)
        rank, world = rank_and_world()
        offset = sum(len(part) for part in per_rank[:rank])
        everyone = [sample for part in per_rank for sample in part]
        batch = ShapingBatch(
            rewards=[s.reward for s in everyone],
            sub_rewards=[s.sub_rewards for s in everyone],
            completion_lengths=[s.length for s in everyone],
            truncated=[s.truncated for s in everyone],
            group_size=rollout.num_generations,
            max_completion_length=self.settings.max_completion_length,
        )
        shaped = self.shapers(batch)
        mine = shaped.advantages[offset : offset + len(local)]  # type: ignore[index]
        advantages = torch.tensor(mine, dtype=torch.float64, device=device)  # the loss takes its dtype
        masked = self.settings.mask_truncated_completions
        num_tokens = sum(s.length for s in everyone if not (masked and s.truncated)) / world
        return advantages, everyone, num_tokens
