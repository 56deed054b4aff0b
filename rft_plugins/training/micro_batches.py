"""A step's samples in micro-batches: what one forward/backward pass sees.

``trainer.micro_batch_size`` bounds the samples per pass, so memory no longer grows with the
whole step's ``batch_size x num_generations``. Each micro-batch drops the columns that are
padding in all its rows (left of its longest prompt, right of its longest completion), so a
micro-batch of short answers costs a short pass. The loss stays that of the whole step: every
micro-batch's loss is divided by the whole step's normaliser (``losses.aggregate``) and the
gradients add up.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..sampling import RolloutBatch

#: samples per pass when the job says ``auto`` (TRL's default ``per_device_train_batch_size``)
AUTO_MICRO_BATCH_SIZE = 8


@dataclass
class MicroBatch:
    """Rows ``rows`` of a rollout, trimmed of all-padding columns.

    ``completion_mask`` is the attention mask of the completion tokens (1 up to and including
    EOS); ``loss_mask`` the tokens the loss counts (the same, unless truncated completions are
    masked out); ``sampler_logprobs`` what the sampler reported, if anything. The log-probs under
    the reference and the rollout's policy, and the importance weights that correct for a sampler
    whose log-probs differ from the policy's, are filled in once per step when the loss needs them.
    """

    rows: slice
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    loss_mask: torch.Tensor
    sampler_logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    old_logprobs: torch.Tensor | None = None
    importance_weights: torch.Tensor | None = None


def row_slices(total: int, size: int) -> list[slice]:
    """``range(total)`` as consecutive slices of at most ``size`` rows."""
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def split_rollout(rollout: RolloutBatch, loss_mask: torch.Tensor, size: int | None) -> list[MicroBatch]:
    """The rollout's rows in micro-batches of at most ``size`` samples (None: ``AUTO_MICRO_BATCH_SIZE``)."""
    parts = []
    for rows in row_slices(rollout.completion_ids.size(0), size or AUTO_MICRO_BATCH_SIZE):
        prompt_mask = rollout.prompt_mask[rows]
        real_columns = prompt_mask.any(dim=0).nonzero()
        first = int(real_columns[0]) if real_columns.numel() else prompt_mask.size(1)
        width = max(1, int(rollout.completion_mask[rows].sum(dim=1).max()))
        parts.append(
            MicroBatch(
                rows=rows,
                prompt_ids=rollout.prompt_ids[rows, first:],
                prompt_mask=prompt_mask[:, first:],
                completion_ids=rollout.completion_ids[rows, :width],
                completion_mask=rollout.completion_mask[rows, :width],
                loss_mask=loss_mask[rows, :width],
                sampler_logprobs=None if rollout.logprobs is None else rollout.logprobs[rows, :width],
            )
        )
    return parts
