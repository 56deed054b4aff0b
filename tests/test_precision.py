"""16-bit weights: updates kept in float32 master weights (also across a resume), a KL reference
in the policy's own dtype, and the learning-rate schedule step by step, resumed."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from test_step_plan import AppliedGradients, fit, replay_settings
from transformers import AutoModelForCausalLM

from rft_plugins.training.optim import MasterWeightAdamW
from rft_plugins.training.precision import default_dtype, from_pretrained_kwargs, resolve_precision


@pytest.fixture(autouse=True)
def replay_plugin(fresh_plugins):
    from replay import register

    register(fresh_plugins)


def test_cpu_defaults_are_float32():
    assert default_dtype("cpu") == "float32" and resolve_precision("auto", "cpu") == "32-true"
    assert from_pretrained_kwargs({})["dtype"] is (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    assert from_pretrained_kwargs({"dtype": "auto", "attn_implementation": "sdpa"}) == {
        "dtype": "auto", "attn_implementation": "sdpa"
    }


def test_bf16_true_reference_starts_with_zero_kl(tiny_model_path):
    """Lightning's bf16-true converts the policy; the frozen reference follows it, so the KL of
    the first step is exactly 0 (a float32 reference would differ by bfloat16's rounding)."""
    settings = replay_settings(str(tiny_model_path), beta=0.1, model_init_kwargs={}, max_grad_norm=None)
    module, run = fit(settings, precision="bf16-true")
    assert next(module.model.parameters()).dtype == torch.bfloat16
    assert next(module.step.reference.parameters()).dtype == torch.bfloat16
    assert run.callback_metrics["kl"].item() == 0.0


def test_bfloat16_weights_keep_small_updates_in_master_weights(tiny_model_path):
    """lr 1e-5 on weights of ~0.02: bfloat16 cannot hold the change (its step there is ~1e-4), the
    float32 masters do, and the model's weights are their rounding. Without masters (TRL's way)
    most of the update is lost."""
    def trained(master_weights: bool):
        settings = replay_settings(
            str(tiny_model_path), model_init_kwargs={"dtype": "bfloat16"}, learning_rate=1e-5,
            master_weights=master_weights,
        )
        module, run = fit(settings)
        return module, run.optimizers[0]

    start = list(AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.bfloat16).parameters())
    total = sum(parameter.numel() for parameter in start)
    module, optimizer = trained(master_weights=True)
    assert isinstance(optimizer, MasterWeightAdamW) and optimizer.has_masters
    masters_moved = 0
    for (parameter, master), initial in zip(optimizer.pairs, start, strict=True):
        assert parameter.dtype == torch.bfloat16 and master.dtype == torch.float32
        torch.testing.assert_close(parameter, master.to(torch.bfloat16), rtol=0, atol=0)
        change = (master - initial.float()).abs()
        masters_moved += int(((change > 5e-6) & (change < 2e-5)).sum())  # Adam's first step: about lr
    assert masters_moved > 0.5 * total

    plain, optimizer = trained(master_weights=False)
    assert not optimizer.has_masters
    kept = sum(int((mine != initial).sum()) for mine, initial in zip(plain.model.parameters(), start, strict=True))
    assert kept < 0.25 * total  # rounded away


def test_master_gradients_are_clipped(tiny_model_path):
    """16-bit gradients move into the float32 masters after each micro-batch, before the clip."""
    applied = AppliedGradients()
    settings = replay_settings(
        str(tiny_model_path), model_init_kwargs={"dtype": "bfloat16"}, micro_batch_size=4, max_grad_norm=0.01
    )
    _, run = fit(settings, callbacks=[applied])
    assert run.callback_metrics["grad_norm"].item() > 0.02
    assert applied.norms[0] == pytest.approx(0.01, rel=1e-4)


def test_master_weights_survive_a_checkpoint():
    torch.manual_seed(0)
    weights = torch.nn.Parameter(torch.randn(8).to(torch.bfloat16))
    optimizer = MasterWeightAdamW([weights], lr=1e-5)
    weights.grad = torch.ones(8, dtype=torch.bfloat16)
    optimizer.step()
    state = optimizer.state_dict()
    again = torch.nn.Parameter(weights.detach().clone())
    restored = MasterWeightAdamW([again], lr=1e-5)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.pairs[0][1], optimizer.pairs[0][1], rtol=0, atol=0)
    assert not torch.equal(restored.pairs[0][1], again.detach().float())  # not the weights' 16-bit rounding
    with pytest.raises(ValueError, match="master weights"):
        MasterWeightAdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-5).load_state_dict(state)


class LearningRates(Callback):
    """The learning rate each step's update used, and a checkpoint after step ``save_at``."""

    def __init__(self, checkpoint=None, save_at: int = 0):
        self.rates: list[float] = []
        self.checkpoint, self.save_at = checkpoint, save_at

    def on_train_batch_end(self, trainer, module, *args):
        self.rates.append(trainer.callback_metrics["learning_rate"].item())
        if self.checkpoint and trainer.global_step == self.save_at:
            trainer.save_checkpoint(self.checkpoint)


def test_linear_schedule_with_warmup_by_step_and_resumed(tiny_model_path, tmp_path):
    settings = replay_settings(str(tiny_model_path), lr_scheduler_type="linear", warmup_steps=2)
    checkpoint = tmp_path / "step3.ckpt"
    whole = LearningRates(checkpoint, save_at=3)
    fit(settings, steps=6, callbacks=[whole])
    # warm-up 0 -> 1e-3 over 2 steps, then linear decay to 0 at step 6 (transformers' schedule)
    assert whole.rates == pytest.approx([0.0, 5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4])
    resumed = LearningRates()
    fit(settings, steps=6, callbacks=[resumed], ckpt_path=str(checkpoint))
    assert resumed.rates == pytest.approx(whole.rates[3:])


def test_cosine_schedule_with_warmup_ratio(tiny_model_path):
    settings = replay_settings(str(tiny_model_path), lr_scheduler_type="cosine", warmup_ratio=0.25)
    rates = LearningRates()
    fit(settings, steps=4, callbacks=[rates])
    # 1 warm-up step, then half a cosine over the 3 others
    assert rates.rates == pytest.approx([0.0, 1e-3, 0.75e-3, 0.25e-3])


def test_lora_checkpoints_hold_the_adapters_not_the_frozen_base(tiny_model_path, tmp_path):
    from rft_plugins.training.job import LoraSettings

    settings = replay_settings(str(tiny_model_path), lora=LoraSettings(r=4, lora_alpha=8), learning_rate=1e-2)
    checkpoint = tmp_path / "step1.ckpt"
    whole, run = fit(settings, steps=2, callbacks=[LearningRates(checkpoint, save_at=1)])
    saved = torch.load(checkpoint, weights_only=False)["state_dict"]
    assert saved and all("lora_" in key for key in saved)
    resumed, _ = fit(settings, steps=2, ckpt_path=str(checkpoint))
    for (name, mine), theirs in zip(resumed.model.named_parameters(), whole.model.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0, msg=name)
