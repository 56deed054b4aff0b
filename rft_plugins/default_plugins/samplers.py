"""Built-in rollout samplers, registered like any plugin's."""

from __future__ import annotations

from typing import Any

from ..contract import Register, SamplerFactory
from ..project import hookimpl


def transformers_sampler(tokenizer: Any, options: dict[str, Any]) -> Any:
    """The default sampler, imported on first use so that loading plugins never imports torch."""
    from ..sampling.transformers_sampler import TransformersSampler

    return TransformersSampler(tokenizer, options)


@hookimpl
def rft_register_samplers(register: Register[SamplerFactory]) -> None:
    register("transformers", transformers_sampler)
