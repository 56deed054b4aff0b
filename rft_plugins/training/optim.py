"""The optimiser and learning-rate schedule of the loop.

16-bit weights make sampling and forward passes fast and small, but an AdamW update of 1e-5 x a
weight of ~0.02 is below bfloat16's resolution there (8 bits of mantissa: steps of ~1e-4 at
0.02), so updates applied to bfloat16 weights are mostly rounded away. ``MasterWeightAdamW``
keeps a float32 master copy of every 16-bit trainable parameter: gradients are added into
float32 master gradients after each backward pass (exact accumulation over micro-batches),
AdamW updates the masters (its state is float32 too), and the model's 16-bit weights are then
copied from them. Float32 parameters (a float32 model, LoRA adapters over a 16-bit base) are
updated in place as by plain AdamW.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch

HALF_DTYPES = (torch.bfloat16, torch.float16)
#: transformers' schedules that the loop can step once per batch (no metric-driven ones)
LR_SCHEDULER_TYPES = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
    "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay",
)


class MasterWeightAdamW(torch.optim.AdamW):
    """AdamW over float32 masters of the 16-bit parameters (see the module docstring).

    ``master_weights=False`` is plain AdamW on the parameters as they are (TRL's way with 16-bit
    weights): 8 bytes per parameter less, at the cost of the updates bfloat16 cannot hold.

    The loop calls ``collect_grads()`` after every backward pass; ``step`` collects what is left,
    updates the masters and copies them into the model. The masters travel in ``state_dict``, so a
    resumed run continues from the exact float32 weights, not from their 16-bit rounding.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], master_weights: bool = True, **kwargs: Any):
        params = list(params)
        masters = [
            parameter.detach().float().clone().requires_grad_(True)
            if master_weights and parameter.dtype in HALF_DTYPES else parameter
            for parameter in params
        ]
        super().__init__(masters, **kwargs)
        self.pairs = [(parameter, master) for parameter, master in zip(params, masters) if master is not parameter]

    @property
    def has_masters(self) -> bool:
        """Whether any parameter is 16-bit (then gradients must be collected after each backward)."""
        return bool(self.pairs)

    @torch.no_grad()
    def collect_grads(self) -> None:
        """Add the 16-bit parameters' gradients into their masters' float32 ones, and free them."""
        for parameter, master in self.pairs:
            if parameter.grad is None:
                continue
            if master.grad is None:
                master.grad = parameter.grad.float()
            else:
                master.grad.add_(parameter.grad)
            parameter.grad = None

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.collect_grads()
        super().step()
        for parameter, master in self.pairs:
            parameter.copy_(master)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none=set_to_none)
        for parameter, _ in self.pairs:
            parameter.grad = None

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["master_weights"] = [master.detach() for _, master in self.pairs]  # saved as they are, not copied
        return state

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        saved = state_dict.pop("master_weights", [])
        super().load_state_dict(state_dict)
        if len(saved) != len(self.pairs):
            raise ValueError(f"the checkpoint holds {len(saved)} master weights, this optimiser has {len(self.pairs)}")
        for (parameter, master), value in zip(self.pairs, saved):
            master.copy_(value)
            parameter.copy_(master)


def warmup_steps_for(total_steps: int, warmup_steps: int, warmup_ratio: float) -> int:
    """transformers' rule: ``warmup_steps`` when given, else ``ceil(warmup_ratio x total_steps)``."""
    return warmup_steps if warmup_steps > 0 else math.ceil(warmup_ratio * total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    kind: str,
    total_steps: int | float,
    warmup_steps: int = 0,
    warmup_ratio: float = 0.0,
    options: dict[str, Any] | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    """transformers' ``get_scheduler`` over ``total_steps`` batches; a decaying schedule needs a
    finite number of steps."""
    from transformers import get_scheduler

    if not math.isfinite(total_steps):
        if kind not in ("constant", "constant_with_warmup"):
            raise ValueError(f"lr_scheduler_type {kind!r} decays over the run: give the trainer max_steps")
        total_steps = 0
    total = int(total_steps)
    return get_scheduler(
        kind,
        optimizer,
        num_warmup_steps=warmup_steps_for(total, warmup_steps, warmup_ratio),
        num_training_steps=total,
        scheduler_specific_kwargs=dict(options or {}),
    )
