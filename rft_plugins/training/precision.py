"""Number formats per device: the dtype the weights are loaded in, and Lightning's ``precision``.

On a CUDA GPU with bfloat16 the defaults are bfloat16 weights (sampling and forward passes run
in the model's own dtype, at half the memory) under ``bf16-mixed`` autocast, with float32 master
weights in the optimiser so that updates are not rounded away (``optim.MasterWeightAdamW``).
Elsewhere both stay float32 (``32-true``). A job can set either explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import DTYPES, bf16_on_cuda, default_dtype, from_pretrained_kwargs, uses_cuda

__all__ = [
    "CUDA_ONLY_PRECISIONS", "DTYPES", "default_dtype", "from_pretrained_kwargs", "precision_problem",
    "resolve_precision", "uses_cuda",
]

if TYPE_CHECKING:
    from .job.schema import LightningPrecision, Precision

#: precisions that need a CUDA GPU (fp16 autocast needs a gradient scaler, which Lightning has only there)
CUDA_ONLY_PRECISIONS = ("16-mixed", "16")


def resolve_precision(precision: Precision, accelerator: str = "auto") -> LightningPrecision:
    """Lightning's precision for ``"auto"``: ``bf16-mixed`` on a CUDA GPU with bfloat16, else ``32-true``."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if bf16_on_cuda(accelerator) else "32-true"


def precision_problem(precision: str, accelerator: str) -> str | None:
    """Why ``precision`` cannot run on ``accelerator`` (None when it can); Lightning would
    silently switch fp16 autocast on a CPU to bfloat16."""
    if precision in CUDA_ONLY_PRECISIONS and not uses_cuda(accelerator):
        return (
            f"{precision!r} needs a CUDA GPU (fp16 autocast with a gradient scaler); "
            "on this device use bf16-mixed or 32-true"
        )
    return None
