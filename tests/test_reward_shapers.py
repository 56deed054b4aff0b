"""Reward shapers: exact advantages (None handling included), weights, length penalty, clipping,
the order checks, and a plugin adding its own shaper."""

from __future__ import annotations

import math

import pytest

from rft_plugins import hookimpl
from rft_plugins.shaping import ShaperConfigError, ShapingBatch, build_shapers
from rft_plugins.training.settings import ResolvedSettings

GRADER = {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}", "reference": "x", "operation": "eq"}
MULTI = {
    "type": "multi",
    "name": "combined",
    "graders": {"accuracy": GRADER, "format": {**GRADER, "name": "format"}},
    "calculate_output": "accuracy",
}
EPS = 1e-4


def settings(*shapers: dict, **overrides) -> ResolvedSettings:
    return ResolvedSettings(model="unused", grader=overrides.pop("grader", GRADER), reward_shapers=shapers, **overrides)


def batch(rewards, group_size, lengths=None, subs=None, max_length=10) -> ShapingBatch:
    n = len(rewards)
    return ShapingBatch(
        rewards=list(rewards),
        sub_rewards=subs or [{} for _ in range(n)],
        completion_lengths=lengths or [1] * n,
        truncated=[False] * n,
        group_size=group_size,
        max_completion_length=max_length,
    )


def shape(rewards, group_size, *shapers, **kwargs):
    lengths = kwargs.pop("lengths", None)
    subs = kwargs.pop("subs", None)
    return build_shapers(settings(*shapers, **kwargs))(batch(rewards, group_size, lengths, subs))


def test_default_pipeline_is_group_advantages():
    assert build_shapers(settings()).names == ["group_advantages"]


def test_grpo_group_advantages_exact():
    # mean 0.5, sample std sqrt(4 * 0.25 / 3) = sqrt(1/3)
    shaped = shape([1, 0, 0, 1], 4)
    a = 0.5 / (math.sqrt(1 / 3) + EPS)
    assert shaped.advantages == pytest.approx([a, -a, -a, a])


def test_none_rewards_are_left_out_and_get_zero_advantage():
    # scored [1, 0, 0]: mean 1/3, deviations 2/3, -1/3, -1/3, sample variance (4/9 + 1/9 + 1/9) / 2 = 1/3
    shaped = shape([1, None, 0, 0], 4)
    s = math.sqrt(1 / 3) + EPS
    assert shaped.advantages == pytest.approx([(2 / 3) / s, 0.0, (-1 / 3) / s, (-1 / 3) / s])
    # a group with one scored sample has no std: advantage 0, like one that is all None
    assert shape([1, None, None, None], 2).advantages == [0.0, 0.0, 0.0, 0.0]


def test_equal_rewards_give_zero_advantage():
    assert shape([0.7, 0.7, 0.2, 0.2], 2).advantages == pytest.approx([0, 0, 0, 0])


def test_dr_grpo_has_no_std():
    shaped = shape([1, None, 0, 0], 4, {"type": "group_advantages", "scale_rewards": "none"})
    assert shaped.advantages == pytest.approx([2 / 3, 0.0, -1 / 3, -1 / 3])
    # the job-wide trainer.scale_rewards is the default
    assert shape([1, 0], 2, scale_rewards="none").advantages == pytest.approx([0.5, -0.5])


def test_batch_scaling_uses_group_mean_and_batch_std():
    # group means 0.5 and 1; std of [1, 0, 1, 1] = sqrt((3 * 0.0625 + 0.5625) / 3) = 0.5
    shaped = shape([1, 0, 1, 1], 2, scale_rewards="batch")
    assert shaped.advantages == pytest.approx([0.5 / (0.5 + EPS), -0.5 / (0.5 + EPS), 0.0, 0.0])


def test_grader_weights_on_multi_sub_rewards():
    subs = [{"accuracy": 1.0, "format": 0.5}, {"accuracy": 0.0, "format": None}, {"accuracy": None, "format": None}]
    weights = {"type": "grader_weights", "weights": {"accuracy": 0.7, "format": 0.3}}
    pipeline = build_shapers(settings(weights, {"type": "group_advantages", "scale_rewards": "none"}, grader=MULTI))
    shaped = pipeline(batch([9.0, 9.0, 9.0], 3, subs=subs))
    # 0.7 + 0.15 = 0.85; 0.0 (format not applicable, skipped); None (nothing applies)
    assert shaped.rewards == pytest.approx([0.85, 0.0, None])
    assert shaped.advantages == pytest.approx([0.425, -0.425, 0.0])


def test_grader_weights_single_grader_and_unknown_key():
    shaped = build_shapers(settings({"type": "grader_weights", "weights": {"exact": 2.0}}))(batch([1, 0], 2))
    assert shaped.rewards == [2.0, 0.0]
    with pytest.raises(ShaperConfigError) as error:
        build_shapers(settings({"type": "grader_weights", "weights": {"acuracy": 1}}, grader=MULTI))
    assert error.value.field == "trainer.reward_shapers[0].weights.acuracy"


def test_soft_overlong_penalty():
    # max 10, cache 4: <= 6 free, 8 -> (6 - 8) / 4 = -0.5, 10 (cut off) -> -1; factor 0.5 halves them
    penalty = {"type": "overlong_penalty", "cache": 4, "factor": 0.5}
    shaped = shape([1, 1, 1, None], 4, penalty, lengths=[6, 8, 10, 10], max_completion_length=10)
    assert shaped.rewards == pytest.approx([1.0, 0.75, 0.5, None])
    with pytest.raises(ShaperConfigError, match="cache"):
        build_shapers(settings({"type": "overlong_penalty", "cache": 20}, max_completion_length=10))


def test_clip_rewards_and_advantages():
    clip_rewards = {"type": "clip", "target": "rewards", "min": 0, "max": 1}
    shaped = shape([2.0, -1.0, None, 0.5], 4, clip_rewards, scale_rewards="none")
    assert shaped.rewards == [1.0, 0.0, None, 0.5]
    clip_adv = {"type": "clip", "min": -0.5, "max": 0.5}
    shaped = shape([1, 0, 0, 1], 4, clip_adv)
    assert shaped.advantages == [0.5, -0.5, -0.5, 0.5]


def test_default_advantages_go_before_the_first_advantage_shaper():
    pipeline = build_shapers(settings({"type": "overlong_penalty", "cache": 2}, {"type": "clip", "max": 1}))
    assert pipeline.names == ["overlong_penalty", "group_advantages", "clip"]


def test_order_and_config_errors_name_the_entry():
    cases = [
        ([{"type": "group_advantages"}, {"type": "overlong_penalty", "cache": 2}], "reward_shapers[1]", "move it earlier"),
        ([{"type": "group_advantages"}, {"type": "group_advantages"}], "reward_shapers[1]", "again"),
        ([{"type": "clip", "min": 0, "typo": 1}], "reward_shapers[0].typo", "unknown field"),
        ([{"type": "clip"}], "reward_shapers[0].min", "set min, max"),
        ([{"type": "overlong_penalty"}], "reward_shapers[0].cache", "required"),
        ([{"type": "nope"}], "reward_shapers[0].type", "unknown reward shaper 'nope'"),
    ]
    for shapers, field, message in cases:
        with pytest.raises(ShaperConfigError, match=message) as error:
            build_shapers(settings(*shapers))
        assert error.value.field.endswith(field)


class RankBonus:
    """A third-party shaper: +0.1 for the shortest completion of each group."""

    stage = "rewards"
    produces_advantages = False

    def __init__(self, config, settings):
        self.bonus = config.get("bonus", 0.1)

    def shape(self, batch: ShapingBatch) -> ShapingBatch:
        rewards = list(batch.rewards)
        for group in batch.groups():
            lengths = batch.completion_lengths[group]
            rewards[group.start + lengths.index(min(lengths))] += self.bonus
        return batch.replace(rewards=rewards)


class RankBonusPlugin:
    @hookimpl
    def rft_register_reward_shapers(self, register):
        register("rank_bonus", RankBonus)


def test_a_plugin_adds_its_own_shaper(fresh_plugins):
    fresh_plugins.get_plugin_manager().register(RankBonusPlugin(), name="rank-bonus")
    shaped = shape([0, 0, 1, 1], 2, {"type": "rank_bonus", "bonus": 1.0}, lengths=[5, 3, 2, 4], scale_rewards="none")
    assert shaped.rewards == [0.0, 1.0, 2.0, 1.0]
    assert shaped.advantages == pytest.approx([-0.5, 0.5, 0.5, -0.5])
