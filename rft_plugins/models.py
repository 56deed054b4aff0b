"""Loading the Hugging Face causal LMs that are trained, evaluated or judged: the weights' dtype
per device, and ``model_init_kwargs`` as ``from_pretrained`` takes them.

On a CUDA GPU that has bfloat16 the weights load in bfloat16 (sampling and forward passes run in
the model's own dtype, at half the memory); elsewhere in float32. A job can name the dtype.
"""

from __future__ import annotations

from typing import Any

import torch

#: ``trainer.model_init_kwargs.dtype`` values; ``auto`` is Hugging Face's (the checkpoint's own dtype)
DTYPES = ("auto", "bfloat16", "float16", "float32")


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


def from_pretrained_kwargs(model_init_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``model_init_kwargs`` as ``from_pretrained`` takes them: ``dtype`` as a torch dtype (or ``"auto"``)."""
    kwargs = dict(model_init_kwargs)
    dtype = kwargs.get("dtype") or default_dtype()
    kwargs["dtype"] = dtype if dtype == "auto" else getattr(torch, dtype)
    return kwargs


def load_causal_lm(path: str, model_init_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The model (in eval mode) and its tokenizer, from a local folder or a hub id in the cache.

    A LoRA adapter folder (what ``rft train`` saves in ``best/`` and ``final/`` with ``lora``)
    loads with its base model, named in its ``adapter_config.json``.
    """
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = from_pretrained_kwargs(model_init_kwargs or {})
    if (Path(path) / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(path, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model.eval(), AutoTokenizer.from_pretrained(path)
