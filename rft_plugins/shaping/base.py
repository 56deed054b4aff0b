"""The shaper protocol, the batch shapers pass along, and the pipeline that runs them in order.

A shaper plugin registers ``factory(config: dict, settings: ResolvedSettings) -> RewardShaper``
through ``rft_register_reward_shapers``; ``config`` is one entry of the job's
``trainer.reward_shapers`` list (``{"type": "clip", ...}``). Shapers run in the listed order.
Each says which ``stage`` it works on: ``"rewards"`` (before advantages exist), ``"advantages"``
(after), or it ``produces_advantages`` from the rewards. When no listed shaper produces
advantages, ``group_advantages`` (GRPO, ``scale_rewards`` from the settings) is appended.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import pydantic

from ..errors import ShaperConfigError
from ..options import first_problem  # noqa: F401  (imported from here before it was shared)
from ..options import parse_options as _parse_options
from ..registry import Registration, build

if TYPE_CHECKING:
    from ..training.settings import ResolvedSettings

DEFAULT_ADVANTAGE_SHAPER = "group_advantages"
#: where in a step a shaper acts: on the rewards, or on the advantages made from them
Stage = Literal["rewards", "advantages"]
ConfigT = TypeVar("ConfigT", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class ShapingBatch:
    """One optimisation step's samples as shapers see them, grouped by prompt.

    Samples ``i*G .. i*G+G-1`` answer prompt ``i`` (``G = group_size``). ``rewards`` start as the
    grader's rewards; None means "not applicable" and stays excluded from means (advantage 0).
    ``sub_rewards`` are a ``multi`` grader's per-key rewards (or ``{grader name: reward}``).
    ``advantages`` is None until an advantage shaper has run.
    """

    rewards: list[float | None]
    sub_rewards: list[dict[str, float | None]]
    completion_lengths: list[int]
    truncated: list[bool]
    group_size: int
    max_completion_length: int
    advantages: list[float] | None = None

    def __post_init__(self) -> None:
        sizes = {len(self.rewards), len(self.sub_rewards), len(self.completion_lengths), len(self.truncated)}
        if len(sizes) != 1 or (self.advantages is not None and len(self.advantages) not in sizes):
            raise ValueError("every per-sample list of a ShapingBatch must have the same length")
        if self.group_size < 1 or len(self.rewards) % self.group_size:
            raise ValueError(f"{len(self.rewards)} samples do not split into groups of {self.group_size}")

    def replace(self, **changes: Any) -> "ShapingBatch":
        """A copy with some fields changed (shapers return new batches, never mutate)."""
        return dataclasses.replace(self, **changes)

    def groups(self) -> list[slice]:
        """The slice of each prompt's group of samples."""
        size = self.group_size
        return [slice(start, start + size) for start in range(0, len(self.rewards), size)]


class RewardShaper(Protocol):
    """One shaping step. ``stage`` is ``"rewards"`` or ``"advantages"``; set
    ``produces_advantages = True`` on the one that turns rewards into advantages."""

    @property
    def stage(self) -> Stage: ...

    @property
    def produces_advantages(self) -> bool: ...

    def shape(self, batch: ShapingBatch) -> ShapingBatch:
        """Return the shaped batch."""
        ...


def parse_options(model: type[ConfigT], config: dict[str, Any], where: str) -> ConfigT:
    """Validate a shaper's config (without its ``type``); the first problem becomes a
    ``ShaperConfigError`` at ``where`` (a problem with the whole config: at ``type``)."""
    options = {key: value for key, value in config.items() if key != "type"}
    return _parse_options(model, options, ShaperConfigError, within=where, whole="type")


class ShapingPipeline:
    """The shapers of a job, in order, checked for a sensible order once at build time."""

    def __init__(self, shapers: list[tuple[str, RewardShaper]]):
        self.shapers = shapers

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.shapers]

    def __call__(self, batch: ShapingBatch) -> ShapingBatch:
        for name, shaper in self.shapers:
            batch = shaper.shape(batch)
            if not isinstance(batch, ShapingBatch):
                raise TypeError(f"reward shaper {name!r} returned {type(batch).__name__}, not a ShapingBatch")
        if batch.advantages is None:
            raise RuntimeError("no reward shaper produced advantages")
        return batch


def _instantiate(index: int, config: Any, settings: "ResolvedSettings") -> tuple[str, RewardShaper]:
    where = f"trainer.reward_shapers[{index}]"
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise ShaperConfigError(f"{where}.type", "each reward shaper is an object with a 'type'")

    def rejected(error: Exception, registration: Registration) -> ShaperConfigError | None:
        """A shaper's own error, located in the job; a ``ValueError``/``TypeError`` naming the plugin."""
        if isinstance(error, ShaperConfigError):
            return error.within(where)
        if isinstance(error, (ValueError, TypeError)):
            return ShaperConfigError(where, f"{registration.name} (plugin {registration.plugin}): {error}")
        return None

    shaper = build("reward_shapers", config["type"], config, settings, field=f"{where}.type",
                   error=ShaperConfigError, rejected=rejected)
    return config["type"], shaper


def build_shapers(settings: "ResolvedSettings") -> ShapingPipeline:
    """The job's reward shapers in order, with the default advantage shaper added if none is listed.

    The default goes right before the first advantage-stage shaper (or last). Order errors are
    reported at build time, not after the first rollout: a reward-stage shaper placed after
    advantages exist would do nothing, an advantage-stage one before them could not run.
    """
    shapers = [_instantiate(index, config, settings) for index, config in enumerate(settings.reward_shapers)]
    wheres = [f"trainer.reward_shapers[{index}]" for index in range(len(shapers))]
    if not any(getattr(shaper, "produces_advantages", False) for _, shaper in shapers):
        stages = [getattr(shaper, "stage", None) for _, shaper in shapers]
        position = stages.index("advantages") if "advantages" in stages else len(shapers)
        default = _instantiate(len(shapers), {"type": DEFAULT_ADVANTAGE_SHAPER}, settings)
        shapers.insert(position, default)
        wheres.insert(position, f"the default {DEFAULT_ADVANTAGE_SHAPER}")
    producer: str | None = None
    for where, (name, shaper) in zip(wheres, shapers):
        stage = getattr(shaper, "stage", None)
        if getattr(shaper, "produces_advantages", False):
            if producer is not None:
                raise ShaperConfigError(where, f"{name} computes advantages again after {producer}")
            producer = where
        elif stage == "rewards" and producer is not None:
            raise ShaperConfigError(where, f"{name} changes rewards after advantages were computed; move it earlier")
        elif stage not in ("rewards", "advantages"):
            raise ShaperConfigError(where, f"{name} declares no stage ('rewards' or 'advantages')")
    return ShapingPipeline(shapers)
