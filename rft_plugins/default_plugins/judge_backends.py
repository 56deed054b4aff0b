"""Built-in judge backends for model graders: ``openai`` (HTTP) and ``transformers`` (local HF).

Registered through the same hook a third-party backend uses (``rft_register_judge_backends``).
"""

from __future__ import annotations

from ..contract import JudgeBackendFactory, Register
from ..judges.openai_backend import OpenAIBackend
from ..judges.transformers_backend import TransformersBackend
from ..project import hookimpl


@hookimpl
def rft_register_judge_backends(register: Register[JudgeBackendFactory]) -> None:
    register("openai", OpenAIBackend)
    register("transformers", TransformersBackend)
