"""What a judge backend receives and returns, and how a grader config picks its backend.

A backend factory is registered with ``rft_register_judge_backends``::

    @hookimpl
    def rft_register_judge_backends(register):
        register("my_backend", MyBackend)   # MyBackend(model: str, options: dict)

``options`` is the grader's ``judge`` object without ``backend`` and ``format_instruction``;
the backend validates it (``parse_config`` with its own pydantic model). The object has
``async complete(request) -> JudgeReply`` and may have ``close()``. It raises
``GradingError("model_grader_server_error", details)`` when it gets no usable answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import GraderConfigError
from ..registry import Registration, build

#: ``model: "hf:/path/to/model"`` selects the local ``transformers`` backend.
LOCAL_MODEL_PREFIX = "hf:"
DEFAULT_BACKEND = "openai"


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call: chat messages (chat-completions shape), the result's JSON schema, sampling.

    ``sampling`` holds only the ``sampling_params`` the grader set (OpenAI's names, e.g.
    ``max_completions_tokens``); each backend maps them to its own.
    """

    model: str
    messages: list[dict[str, Any]]
    schema_name: str
    json_schema: dict[str, Any]
    sampling: dict[str, Any] = field(default_factory=dict)


@dataclass
class JudgeReply:
    """The judge's answer: its text, or its refusal, plus what it cost.

    ``usage`` holds integer token counts (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``, and more when the server reports them); ``model`` is the model that
    answered, as the server names it.
    """

    text: str | None
    refusal: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    model: str | None = None


class JudgeBackend(Protocol):
    """A judge: one chat completion per request, without blocking the event loop."""

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        """The judge's reply; ``GradingError("model_grader_server_error", ...)`` if there is none."""
        ...

    def close(self) -> None:
        """Release what the backend holds (a model, connections); optional."""
        ...


def build_backend(model: str, judge: dict[str, Any] | None) -> tuple[str, JudgeBackend]:
    """The name of the backend a grader config asks for, and the backend, built for ``model``.

    ``judge.backend`` names it; ``model: "hf:<path>"`` means ``transformers``; otherwise the
    OpenAI-compatible default. Option errors are reported under ``judge.``.
    """
    options = dict(judge or {})
    name = options.pop("backend", None)
    if model.startswith(LOCAL_MODEL_PREFIX):
        if name not in (None, "transformers"):
            raise GraderConfigError("judge.backend", f"model {model!r} is a local model (hf:), but backend is {name!r}")
        name, model = "transformers", model[len(LOCAL_MODEL_PREFIX) :]
    name = name or DEFAULT_BACKEND
    if not isinstance(name, str):
        raise GraderConfigError("judge.backend", "must be a string")
    backend = build("judge_backends", name, model, options, field="judge.backend", error=GraderConfigError,
                    rejected=_rejected)
    return name, backend


def _rejected(error: Exception, registration: Registration) -> GraderConfigError | None:
    """A backend's option errors are about the grader's ``judge`` object (``model`` is the
    grader's own field); anything else it raises propagates."""
    if not isinstance(error, GraderConfigError):
        return None
    return error if error.field == "model" else error.within("judge")
