"""The GRPO-family loss against values worked out by hand (see the comments for the arithmetic)."""

from __future__ import annotations

import math

import pytest
import torch

from rft_plugins.training.losses import (
    aggregate,
    clipped_surrogate,
    importance_sampling_weights,
    k3_kl,
    policy_loss,
)

# Two sequences of up to 3 tokens; the second has 2 real tokens. Ratios pi/pi_old chosen directly.
RATIOS = torch.tensor([[1.0, 1.5, 0.7], [1.0, 0.7, 1.3]])
OLD = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -1.2, -0.9]])
NEW = OLD + torch.log(RATIOS)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -2.0])
# Per-token -min(r A, clip(r, 0.8, 1.2) A):
#   seq 0 (A=+1): r=1 -> -1;  r=1.5 -> -min(1.5, 1.2) = -1.2 (clipped high);  r=0.7 -> -min(0.7, 0.8) = -0.7
#   seq 1 (A=-2): r=1 -> 2;   r=0.7 -> -min(-1.4, -1.6) = 1.6 (clipped low);   third token masked
PER_TOKEN = [[-1.0, -1.2, -0.7], [2.0, 1.6]]


def _loss(loss_type: str, **kwargs):
    return policy_loss(NEW, OLD, ADV, MASK, loss_type=loss_type, epsilon=0.2, max_completion_length=4, **kwargs)


def test_clipped_surrogate_per_token():
    per_token = clipped_surrogate(RATIOS, ADV, 0.2, 0.2)
    assert per_token[0].tolist() == pytest.approx(PER_TOKEN[0])
    assert per_token[1, :2].tolist() == pytest.approx(PER_TOKEN[1])


def test_grpo_is_mean_of_sequence_means():
    # seq 0: -2.9 / 3; seq 1: 3.6 / 2 = 1.8; mean of the two
    assert _loss("grpo").loss.item() == pytest.approx((-2.9 / 3 + 1.8) / 2, abs=1e-6)


def test_dr_grpo_divides_by_sequences_times_max_length():
    # sum over real tokens 0.7, / (2 sequences x max_completion_length 4)
    assert _loss("dr_grpo").loss.item() == pytest.approx(0.7 / 8, abs=1e-6)


def test_dapo_is_token_mean_or_given_normaliser():
    assert _loss("dapo").loss.item() == pytest.approx(0.7 / 5, abs=1e-6)
    assert _loss("dapo", num_tokens=10).loss.item() == pytest.approx(0.07, abs=1e-6)


def test_clip_ratios_count_both_sides():
    result = _loss("dapo")
    assert result.clip_ratio.item() == pytest.approx(2 / 5)
    assert result.clip_ratio_low.item() == pytest.approx(1 / 5)
    assert result.clip_ratio_high.item() == pytest.approx(1 / 5)


def test_epsilon_high_widens_only_the_upper_side():
    # eps_high 0.6: seq 0's r=1.5 is no longer clipped -> -1.5; the low clip of seq 1 still applies
    result = policy_loss(NEW, OLD, ADV, MASK, loss_type="dapo", epsilon=0.2, epsilon_high=0.6)
    assert result.loss.item() == pytest.approx((-1 - 1.5 - 0.7 + 2 + 1.6) / 5, abs=1e-6)
    assert result.clip_ratio_high.item() == 0.0
    assert result.clip_ratio_low.item() == pytest.approx(1 / 5)
    # a wider lower range (eps 0.35) frees seq 1's r=0.7 instead: 1.4 in place of 1.6
    lower = policy_loss(NEW, OLD, ADV, MASK, loss_type="dapo", epsilon=0.35, epsilon_high=0.2)
    assert lower.loss.item() == pytest.approx((-1 - 1.2 - 0.7 + 2 + 1.4) / 5, abs=1e-6)


def test_clipped_tokens_get_no_gradient():
    new = NEW.clone().requires_grad_(True)
    policy_loss(new, OLD, ADV, MASK, loss_type="dapo", epsilon=0.2).loss.backward()
    grad = new.grad
    assert grad[0, 1].item() == 0.0 and grad[1, 1].item() == 0.0  # both clipped tokens
    assert grad[1, 2].item() == 0.0  # padding
    # unclipped: d/dlogp of -r A / 5 = -r A / 5
    assert grad[0, 0].item() == pytest.approx(-1.0 / 5)
    assert grad[0, 2].item() == pytest.approx(-0.7 / 5)
    assert grad[1, 0].item() == pytest.approx(2.0 / 5)


def test_on_policy_gradient_is_advantage_weighted():
    # ratio 1 everywhere (old = current, detached): the grpo gradient is -A / (tokens in the sequence) / 2
    current = OLD.clone().requires_grad_(True)
    policy_loss(current, current.detach(), ADV, MASK, loss_type="grpo", epsilon=0.2).loss.backward()
    assert current.grad[0].tolist() == pytest.approx([-1 / 3 / 2] * 3)
    assert current.grad[1].tolist() == pytest.approx([2 / 2 / 2, 2 / 2 / 2, 0.0])


def test_k3_kl_values():
    logprobs = torch.log(torch.tensor([0.5, 0.5, 0.3]))
    ref = torch.log(torch.tensor([0.25, 1.0, 0.3]))
    # d = log ref - log p: ln 0.5 -> 0.5 + ln 2 - 1; ln 2 -> 2 - ln 2 - 1; 0 -> 0
    expected = [0.5 + math.log(2) - 1, 2 - math.log(2) - 1, 0.0]
    assert k3_kl(logprobs, ref).tolist() == pytest.approx(expected, abs=1e-6)


def test_kl_term_is_added_per_token_times_beta():
    ref = NEW + torch.log(torch.tensor(2.0))  # d = ln 2 on every token: k3 = 1 - ln 2
    kl = 1 - math.log(2)
    result = policy_loss(NEW, OLD, ADV, MASK, loss_type="dapo", epsilon=0.2, beta=0.1, ref_logprobs=ref)
    assert result.kl.item() == pytest.approx(kl, abs=1e-6)
    assert result.loss.item() == pytest.approx(0.7 / 5 + 0.1 * kl, abs=1e-6)
    grpo = policy_loss(NEW, OLD, ADV, MASK, loss_type="grpo", epsilon=0.2, beta=0.1, ref_logprobs=ref)
    assert grpo.loss.item() == pytest.approx((-2.9 / 3 + 1.8) / 2 + 0.1 * kl, abs=1e-6)
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(NEW, OLD, ADV, MASK, loss_type="dapo", epsilon=0.2, beta=0.1)


def test_aggregate_rejects_unknown_type_and_missing_length():
    with pytest.raises(ValueError, match="unknown loss_type"):
        aggregate(RATIOS, MASK, "ppo")
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate(RATIOS, MASK, "dr_grpo")


def test_bias_corrected_kl_has_the_unbiased_reverse_kl_gradient():
    """TRL's use_bias_correction_kl: the KL term times the (differentiable) ratio. On-policy the
    value is unchanged, the gradient becomes ``(r - 1) + ... = 1 - e^d`` x ratio' terms: per
    token d/dlogp [r k3] = k3 + (1 - e^d) with r = 1, against (1 - e^d) without it."""
    ref = NEW.detach() + torch.log(torch.tensor(2.0))  # d = ln 2: k3 = 1 - ln 2, 1 - e^d = -1
    plain = NEW.clone().requires_grad_(True)
    corrected = NEW.clone().requires_grad_(True)
    kwargs = dict(loss_type="dapo", epsilon=0.2, beta=1.0, ref_logprobs=ref)
    zero = torch.zeros(2)  # no policy term: the gradient is the KL term's alone
    a = policy_loss(plain, plain.detach(), zero, MASK, **kwargs)
    b = policy_loss(corrected, corrected.detach(), zero, MASK, bias_correction_kl=True, **kwargs)
    assert a.loss.item() == pytest.approx(b.loss.item()) and a.kl.item() == pytest.approx(b.kl.item())
    a.loss.backward()
    b.loss.backward()
    k3 = 1 - math.log(2)
    real = MASK.bool()
    assert plain.grad[real].tolist() == pytest.approx([-1 / 5] * 5)
    assert corrected.grad[real].tolist() == pytest.approx([(k3 - 1) / 5] * 5)


def test_importance_sampling_weights_per_mode():
    # policy - sampler log-prob gaps: row 0 (+ln 2, -ln 2, +ln 4), row 1 (+ln 8, padding)
    gaps = torch.log(torch.tensor([[2.0, 0.5, 4.0], [8.0, 1.0, 1.0]]))
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    sampler = torch.zeros(2, 3)
    def weights(mode, **kw):
        return importance_sampling_weights(gaps, sampler, mask, mode, **kw)

    def close(found, expected):
        torch.testing.assert_close(found, torch.tensor(expected), rtol=1e-5, atol=1e-6)

    close(weights("token_truncate"), [[2.0, 0.5, 3.0], [3.0, 1.0, 1.0]])
    close(weights("token_truncate", clip_min=1.0), [[2.0, 1.0, 3.0], [3.0, 1.0, 1.0]])
    close(weights("token_mask"), [[2.0, 0.5, 0.0], [0.0, 1.0, 1.0]])
    # sequences: products 2 * 0.5 * 4 = 4 and 8 (padding ignored)
    close(weights("sequence_truncate", clip_max=5.0), [[4.0], [5.0]])
    close(weights("sequence_mask", clip_max=5.0), [[4.0], [0.0]])
    with pytest.raises(ValueError, match="unknown importance sampling mode"):
        weights("everything")


def test_importance_weights_scale_the_surrogate_not_the_kl():
    ref = NEW + torch.log(torch.tensor(2.0))
    weights = torch.tensor([[2.0], [0.0]])  # sequence 1 masked out
    plain = policy_loss(NEW, OLD, ADV, MASK, loss_type="dapo", epsilon=0.2, beta=0.1, ref_logprobs=ref)
    weighted = policy_loss(NEW, OLD, ADV, MASK, loss_type="dapo", epsilon=0.2, beta=0.1, ref_logprobs=ref,
                           importance_weights=weights)
    kl = 1 - math.log(2)
    assert plain.loss.item() == pytest.approx(0.7 / 5 + 0.1 * kl, abs=1e-6)
    assert weighted.loss.item() == pytest.approx(2 * (-2.9) / 5 + 0.1 * kl, abs=1e-6)
