"""The ``transformers`` judge backend: a local Hugging Face causal LM, given by path.

``model: "hf:/path/to/model"`` (or ``judge.backend: transformers`` with ``model`` a path). The
model is loaded on the first judge call, not when the grader is built (``validate_grader`` stays
cheap, torch is not even imported), and shared by every grader that names the same path, device
and dtype. Each model has one worker thread, so graders on many loops share it without fighting
over the CPU or GPU: generation runs off the event loop, and the calls that queue up while the
model is busy run together, as one left-padded ``generate`` per group of calls with the same
generation settings (up to ``max_batch_size``). A call with a ``seed`` runs alone, so that the
seed reproduces its reply whatever else is queued.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic

from ..errors import GraderConfigError, GradingError
from ..extras import missing_libraries
from ..graders.config import parse_config
from .base import JudgeReply, JudgeRequest
from .messages import text_only

DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_TEMPERATURE = 1.0  # OpenAI's default for chat completions
DEFAULT_MAX_BATCH_SIZE = 8
SERVER_ERROR = "model_grader_server_error"


class TransformersBackendOptions(pydantic.BaseModel):
    """The ``judge`` section for ``backend: transformers`` (every field optional).

    ``timeout`` caps one generation in seconds (``generate(max_time=...)``): a reply cut short
    usually fails to parse. ``max_new_tokens`` applies when ``sampling_params`` has no
    ``max_completions_tokens``. ``max_batch_size`` bounds how many queued calls share one
    ``generate`` (1 runs them one at a time).
    """

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)

    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    timeout: float | None = pydantic.Field(None, gt=0)
    max_new_tokens: int = pydantic.Field(DEFAULT_MAX_NEW_TOKENS, ge=1)
    max_batch_size: int = pydantic.Field(DEFAULT_MAX_BATCH_SIZE, ge=1)


@dataclass
class _Call:
    """One queued judge call: who asked, what for, and where the reply goes."""

    backend: "TransformersBackend"
    request: JudgeRequest
    future: Future = field(default_factory=Future)

    def batch_key(self) -> Any:
        """Calls with equal keys may share a ``generate``; a seeded call shares with no one."""
        if "seed" in self.request.sampling:
            return id(self)
        kwargs = self.backend.generation_kwargs(self.request.sampling)
        return self.backend.max_batch_size, tuple(sorted(kwargs.items()))


@dataclass
class SharedModel:
    """A loaded model and tokenizer, the thread that runs its generations, its queue and users."""

    path: str
    device: str  # "auto" until loaded
    dtype: str
    users: int = 0
    model: Any = None
    tokenizer: Any = None
    worker: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="rft-judge"))
    load_lock: threading.Lock = field(default_factory=threading.Lock)
    queue: list[_Call] = field(default_factory=list)
    queue_lock: threading.Lock = field(default_factory=threading.Lock)
    released: bool = False  # the last user closed: nothing may load the model again

    @property
    def key(self) -> tuple[str, str, str]:
        return self.path, self.device, self.dtype

    def load(self) -> None:
        """Load once, on first use (from the worker thread)."""
        with self.load_lock:
            if self.model is not None:
                return
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.path)
            if not getattr(tokenizer, "chat_template", None):
                raise GradingError(SERVER_ERROR, f"the tokenizer at {self.path} has no chat template")
            tokenizer.padding_side = "left"  # batched prompts end where generation starts
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype)
            model = model.to(self.resolved_device)  # type: ignore[arg-type]  # typeshed's functools.wraps type leaves self unbound
            self.model, self.tokenizer = model.eval(), tokenizer

    @property
    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def submit(self, backend: "TransformersBackend", request: JudgeRequest) -> Future:
        """Queue one call; the worker thread runs it with whatever else is queued by then."""
        call = _Call(backend, request)
        with self.queue_lock:
            self.queue.append(call)
        self.worker.submit(self._drain)
        return call.future

    def _drain(self) -> None:
        """Worker thread: take every queued call, run them in batches of alike calls.

        One ``_drain`` is submitted per call; those after the first usually find the queue empty.
        """
        with self.queue_lock:
            calls, self.queue = self.queue, []
        groups: dict[Any, list[_Call]] = {}
        for call in calls:
            groups.setdefault(call.batch_key(), []).append(call)
        for group in groups.values():
            size = group[0].backend.max_batch_size
            for start in range(0, len(group), size):
                self._run(group[start : start + size])

    def _run(self, queued: list[_Call]) -> None:
        """One ``generate`` for the calls still wanted; a prompt that cannot be built fails alone."""
        calls = [call for call in queued if call.future.set_running_or_notify_cancel()]  # not given up
        if not calls:
            return
        try:
            if self.released:
                raise GradingError(SERVER_ERROR, "the judge backend was closed")
            self.load()
        except Exception as error:
            for call in calls:
                call.future.set_exception(_server_error(error))
            return
        ready, prompts = [], []
        for call in calls:
            try:
                prompts.append(call.backend.render_prompt(call.request.messages, call.request.sampling))
                ready.append(call)
            except Exception as error:
                call.future.set_exception(_server_error(error))
        if not ready:
            return
        first = ready[0]
        try:
            replies = self.generate(
                prompts, first.backend.generation_kwargs(first.request.sampling), first.request.sampling.get("seed")
            )
        except Exception as error:  # a failed generate costs these samples, never the run
            for call in ready:
                call.future.set_exception(_server_error(error))
            return
        for call, reply in zip(ready, replies):
            call.future.set_result(reply)

    def generate(self, prompts: list[str], kwargs: dict[str, Any], seed: int | None) -> list[JudgeReply]:
        """Replies to ``prompts``, generated together (left-padded) with the same settings."""
        import torch

        tokenizer, model = self.tokenizer, self.model
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        # A seed must not reset the RNG of the training that shares this process: fork it.
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None), torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            output = model.generate(**inputs, **kwargs, pad_token_id=tokenizer.pad_token_id)
        width = inputs["input_ids"].shape[1]
        replies = []
        for row, mask in zip(output, inputs["attention_mask"]):
            prompt_tokens = int(mask.sum())
            new_tokens = row[width:].tolist()
            stopped = tokenizer.eos_token_id in new_tokens
            if stopped:  # what follows the end of this reply is padding, while longer ones went on
                new_tokens = new_tokens[: new_tokens.index(tokenizer.eos_token_id) + 1]
            replies.append(
                JudgeReply(
                    text=tokenizer.decode(new_tokens, skip_special_tokens=True),
                    finish_reason="stop" if stopped else "length",
                    usage={
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(new_tokens),
                        "total_tokens": prompt_tokens + len(new_tokens),
                    },
                    model=self.path,
                )
            )
        return replies

    def fail_queued(self, reason: str) -> None:
        """Answer every queued call with a server error (the model is going away)."""
        with self.queue_lock:
            calls, self.queue = self.queue, []
        for call in calls:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(GradingError(SERVER_ERROR, reason))


def _server_error(error: Exception) -> GradingError:
    if isinstance(error, GradingError):
        return error
    return GradingError(SERVER_ERROR, f"{type(error).__name__}: {error}")


_shared: dict[tuple[str, str, str], SharedModel] = {}
_shared_lock = threading.Lock()


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
        _shared.pop(shared.key, None)
    shared.released = True
    shared.worker.shutdown(wait=False, cancel_futures=True)
    shared.fail_queued("the judge backend was closed")
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
        if missing := missing_libraries("local-judge"):  # torch and transformers are an extra
            raise GraderConfigError("model", f"a local judge needs {', '.join(missing)}: pip install 'rft-plugins[local-judge]'")
        self.path = str(path.resolve())
        self.timeout = spec.timeout
        self.max_new_tokens = spec.max_new_tokens
        self.max_batch_size = spec.max_batch_size
        self.shared = acquire_model(self.path, spec.device, spec.dtype)
        self._closed = False

    def render_prompt(self, messages: list[dict[str, Any]], sampling: dict[str, Any]) -> str:
        """The prompt text the model sees: the messages through the tokenizer's chat template."""
        try:
            flat = text_only(messages)
        except ValueError as error:
            raise GradingError(SERVER_ERROR, str(error)) from None
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

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        """Queue the call on the model's thread; a failed load or generate costs the sample only."""
        if self._closed:
            raise GradingError(SERVER_ERROR, "the judge backend was closed")
        return await asyncio.wrap_future(self.shared.submit(self, request))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            release_model(self.shared)
