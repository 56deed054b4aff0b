"""Built-in rollout samplers, registered like any plugin's."""

from __future__ import annotations

from ..project import hookimpl
from ..sampling.transformers_sampler import TransformersSampler


@hookimpl
def rft_register_samplers(register):
    register("transformers", TransformersSampler)
