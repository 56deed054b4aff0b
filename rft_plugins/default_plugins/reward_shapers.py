"""Built-in reward shapers, registered like any plugin's."""

from __future__ import annotations

from ..contract import Register, RewardShaperFactory
from ..project import hookimpl
from ..shaping.advantages import GroupAdvantages
from ..shaping.clip import Clip
from ..shaping.length import OverlongPenalty
from ..shaping.weights import GraderWeights


@hookimpl
def rft_register_reward_shapers(register: Register[RewardShaperFactory]) -> None:
    register("grader_weights", GraderWeights)
    register("overlong_penalty", OverlongPenalty)
    register("group_advantages", GroupAdvantages)
    register("clip", Clip)
