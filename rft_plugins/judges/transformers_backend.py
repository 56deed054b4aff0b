"""The ``transformers`` judge backend: a local Hugging Face causal LM, given by path.

``model: "hf:/path/to/model"`` (or ``judge.backend: transformers`` with ``model`` a path). The
model is loaded on the first judge call, not when the grader is built (``validate_grader`` stays
cheap), and shared by every grader that names the same path, device and dtype. Each model has one
worker thread: generation runs off the event loop, one call at a time, so graders on many loops
can share it without fighting over the CPU or GPU.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic

from ..errors import GraderConfigError, GradingError
from ..graders.config import parse_config
from .base import JudgeReply, JudgeRequest
from .messages import text_only

DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_TEMPERATURE = 1.0  # OpenAI's default for chat completions


class TransformersBackendOptions(pydantic.BaseModel):
    """The ``judge`` section for ``backend: transformers`` (every field optional).

    ``timeout`` caps one generation in seconds (``generate(max_time=...)``): a reply cut short
    usually fails to parse. ``max_new_tokens`` applies when ``sampling_params`` has no
    ``max_completions_tokens``.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    timeout: float | None = pydantic.Field(None, gt=0)
    max_new_tokens: int = pydantic.Field(DEFAULT_MAX_NEW_TOKENS, ge=1)


@dataclass
class SharedModel:
    """A loaded model and tokenizer, the thread that runs its generations, and its users."""

    path: str
    device: str
    dtype: str
    users: int = 0
    model: Any = None
    tokenizer: Any = None
    worker: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="rft-judge"))
    load_lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """Load once, on first use (from the worker thread)."""
        with self.load_lock:
            if self.model is not None:
                return
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.path)
            if not getattr(tokenizer, "chat_template", None):
                raise GradingError("model_grader_server_error", f"the tokenizer at {self.path} has no chat template")
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype)
            self.model, self.tokenizer = model.to(self.device).eval(), tokenizer


_shared: dict[tuple[str, str, str], SharedModel] = {}
_shared_lock = threading.Lock()


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def acquire_model(path: str, device: str, dtype: str) -> SharedModel:
    """The shared entry for this model, counted as one more user."""
    key = (path, device, dtype)
    with _shared_lock:
        shared = _shared.get(key)
        if shared is None:
            shared = _shared[key] = SharedModel(path, device, dtype)
        shared.users += 1
        return shared


def release_model(shared: SharedModel) -> None:
    """One user fewer; the last one frees the model and its thread."""
    with _shared_lock:
        shared.users -= 1
        if shared.users > 0:
            return
        _shared.pop((shared.path, shared.device, shared.dtype), None)
    shared.worker.shutdown(wait=False, cancel_futures=True)
    shared.model = shared.tokenizer = None


def loaded_models() -> list[str]:
    """Paths of the models loaded right now (for tests and diagnostics)."""
    with _shared_lock:
        return [shared.path for shared in _shared.values() if shared.model is not None]


class TransformersBackend:
    """Chat template, ``generate``, decode: one reply per judge call, with token counts."""

    def __init__(self, model: str, options: dict[str, Any]):
        spec = parse_config(TransformersBackendOptions, options)
        path = Path(model).expanduser()
        if not (path / "config.json").is_file():
            raise GraderConfigError("model", f"no Hugging Face model (config.json) in {str(path)!r}")
        self.path = str(path.resolve())
        self.timeout = spec.timeout
        self.max_new_tokens = spec.max_new_tokens
        self.shared = acquire_model(self.path, _resolve_device(spec.device), spec.dtype)
        self._closed = False

    def render_prompt(self, messages: list[dict[str, Any]], sampling: dict[str, Any]) -> str:
        """The prompt text the model sees: the messages through the tokenizer's chat template."""
        try:
            flat = text_only(messages)
        except ValueError as error:
            raise GradingError("model_grader_server_error", str(error)) from None
        extra = {"reasoning_effort": sampling["reasoning_effort"]} if "reasoning_effort" in sampling else {}
        return self.shared.tokenizer.apply_chat_template(flat, tokenize=False, add_generation_prompt=True, **extra)

    def generation_kwargs(self, sampling: dict[str, Any]) -> dict[str, Any]:
        """``generate`` arguments from OpenAI's sampling params (temperature 0 means greedy)."""
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.get("max_completions_tokens", self.max_new_tokens)}
        temperature = sampling.get("temperature", DEFAULT_TEMPERATURE)
        if temperature == 0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=temperature, top_p=sampling.get("top_p", 1.0), top_k=None)
        if self.timeout is not None:
            kwargs["max_time"] = self.timeout
        return kwargs

    def generate(self, request: JudgeRequest) -> JudgeReply:
        """One judge call, blocking: runs on the model's worker thread."""
        import torch

        shared = self.shared
        shared.load()
        tokenizer, model = shared.tokenizer, shared.model
        prompt = self.render_prompt(request.messages, request.sampling)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(shared.device)
        kwargs = self.generation_kwargs(request.sampling)
        seed = request.sampling.get("seed")
        # A seed must not reset the RNG of the training that shares this process: fork it.
        devices = [torch.device(shared.device)] if shared.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None), torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            output = model.generate(
                **inputs, **kwargs, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id
            )
        prompt_tokens = inputs["input_ids"].shape[1]
        new_tokens = output[0, prompt_tokens:]
        stopped = len(new_tokens) > 0 and int(new_tokens[-1]) == tokenizer.eos_token_id
        return JudgeReply(
            text=tokenizer.decode(new_tokens, skip_special_tokens=True),
            finish_reason="stop" if stopped else "length",
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(new_tokens),
                "total_tokens": prompt_tokens + len(new_tokens),
            },
            model=self.path,
        )

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        if self._closed:
            raise GradingError("model_grader_server_error", "the judge backend was closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.shared.worker, self.generate, request)
        except GradingError:
            raise
        except Exception as error:  # a failed load or generate costs the sample, never the run
            raise GradingError("model_grader_server_error", f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            release_model(self.shared)
