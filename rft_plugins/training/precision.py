"""Number formats per device: the dtype the weights are loaded in, and Lightning's ``precision``.

On a CUDA GPU with bfloat16 the defaults are bfloat16 weights (sampling and forward passes run
in the model's own dtype, at half the memory) under ``bf16-mixed`` autocast, with float32 master
weights in the optimiser so that updates are not rounded away (``optim.MasterWeightAdamW``).
Elsewhere both stay float32 (``32-true``). A job can set either explicitly.
"""

from __future__ import annotations

from typing import Any

import torch

#: ``trainer.model_init_kwargs.dtype`` values; ``auto`` is Hugging Face's (the checkpoint's own dtype)
DTYPES = ("auto", "bfloat16", "float16", "float32")
#: precisions that need a CUDA GPU (fp16 autocast needs a gradient scaler, which Lightning has only there)
CUDA_ONLY_PRECISIONS = ("16-mixed", "16")


def uses_cuda(accelerator: str) -> bool:
    """Whether Lightning's ``accelerator`` setting ends up on a CUDA GPU."""
    if accelerator in ("cuda", "gpu"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def bf16_on_cuda(accelerator: str) -> bool:
    """A CUDA GPU that computes in bfloat16 (Ampere and later)."""
    return uses_cuda(accelerator) and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def default_dtype(accelerator: str = "auto") -> str:
    """The weights' dtype when the job names none: bfloat16 on a CUDA GPU that has it, else float32."""
    return "bfloat16" if bf16_on_cuda(accelerator) else "float32"


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
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


def from_pretrained_kwargs(model_init_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``model_init_kwargs`` as ``from_pretrained`` takes them: ``dtype`` as a torch dtype (or ``"auto"``)."""
    kwargs = dict(model_init_kwargs)
    dtype = kwargs.get("dtype") or default_dtype()
    kwargs["dtype"] = dtype if dtype == "auto" else getattr(torch, dtype)
    return kwargs
