"""One training step's arithmetic, checked against a GRPO step written out by hand.

The replay sampler (``tests/replay.py``) makes the rollout independent of the model and of random
streams, and the model runs in float64, so the loop's gradient can be compared with a plain
full-logits computation to 1e-6: whatever the loop does to save memory (micro-batches, chunked
log-probs, trimmed padding) must not change it, and dropping the temperature, the loss type's
normaliser or the clip would.
"""

from __future__ import annotations

import lightning
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from replay import LENGTH_GRADER, register
from transformers import AutoModelForCausalLM

from rft_plugins.sampling.logprobs import position_ids_from_mask
from rft_plugins.training.module import RFTModule
from rft_plugins.training.settings import ResolvedSettings

ROWS = [{"messages": [{"role": "user", "content": text}]} for text in ("one", "second prompt", "3", "the fourth")]
FLOAT64 = {"dtype": "float64"}


class Gradients(Callback):
    """The gradients of each update as the optimiser receives them (before clipping)."""

    def __init__(self) -> None:
        self.updates: list[list[torch.Tensor]] = []

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.updates.append([p.grad.detach().clone() for group in optimizer.param_groups for p in group["params"]])


def fit(
    settings: ResolvedSettings, steps: int = 1, callbacks=(), ckpt_path: str | None = None, **trainer
) -> tuple[RFTModule, lightning.Trainer]:
    """One ``Trainer.fit`` of ``steps`` batches of the four rows on the CPU, no validation."""
    module = RFTModule(settings, ROWS, [])
    options = dict(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
    )
    options.update(trainer)
    run = lightning.Trainer(callbacks=list(callbacks), **options)
    run.fit(module, ckpt_path=ckpt_path)
    return module, run


def replay_settings(model: str, **overrides) -> ResolvedSettings:
    values = dict(
        model=model, grader=LENGTH_GRADER, sampler="replay", batch_size=4, num_generations=3,
        max_completion_length=5, learning_rate=1e-3, temperature=0.7, model_init_kwargs=FLOAT64, seed=0,
    )
    values.update(overrides)
    return ResolvedSettings(**values)


def hand_gradient(settings: ResolvedSettings) -> list[torch.Tensor]:
    """One on-policy GRPO step written out plainly: full logits, group-normalised rewards, the
    loss type's own reduction over the whole batch, one backward pass."""
    module = RFTModule(settings, ROWS, [])  # for its prompt encoding and replay sampler only
    rollout = module.step.sample(module.model, ROWS, settings.num_generations, module.device)
    rewards = torch.tensor([(len(text) % 5) / 4 for text in rollout.texts], dtype=torch.float64)
    groups = rewards.view(len(ROWS), settings.num_generations)
    advantages = ((groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-4)).flatten()

    model = AutoModelForCausalLM.from_pretrained(settings.model, dtype=torch.float64)
    ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], dim=1)
    attention = torch.cat([rollout.prompt_mask, rollout.completion_mask], dim=1)
    logits = model(input_ids=ids, attention_mask=attention, position_ids=position_ids_from_mask(attention)).logits
    completion = rollout.completion_ids.size(1)
    logits = logits[:, -completion - 1 : -1] / settings.temperature
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, rollout.completion_ids.unsqueeze(-1)).squeeze(-1)
    mask = rollout.completion_mask.double()
    if settings.mask_truncated_completions:
        mask = mask * torch.tensor([0.0 if cut else 1.0 for cut in rollout.truncated]).double().unsqueeze(1)
    per_token = -torch.exp(logprobs - logprobs.detach()) * advantages.unsqueeze(1)
    if settings.importance_sampling_correction:  # token_truncate against the replay sampler's constant
        sampler = settings.sampler_options["logprob"]
        per_token = per_token * torch.exp(logprobs.detach() - sampler).clamp(max=settings.importance_sampling_clip_max)
    if settings.loss_type == "grpo":
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    elif settings.loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / (len(per_token) * settings.max_completion_length)
    else:
        loss = (per_token * mask).sum() / mask.sum()
    loss.backward()
    return [parameter.grad for parameter in model.parameters()]


@pytest.fixture(autouse=True)
def replay_plugin(fresh_plugins):
    register(fresh_plugins)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("micro_batch_size", [12, 5, None], ids=["whole", "micro5", "auto"])
def test_the_loop_gradient_is_the_hand_written_one(tiny_model_path, loss_type, micro_batch_size):
    """12 samples all at once, in micro-batches of 5 (5 + 5 + 2, each trimmed of its own padding),
    or of "auto" (8 + 4)."""
    settings = replay_settings(str(tiny_model_path), loss_type=loss_type, micro_batch_size=micro_batch_size)
    gradients = Gradients()
    fit(settings, callbacks=[gradients])
    expected = hand_gradient(settings)
    assert any(grad.abs().sum() > 0 for grad in expected)
    for found, wanted in zip(gradients.updates[0], expected, strict=True):
        torch.testing.assert_close(found, wanted, rtol=1e-6, atol=1e-10)


def test_masked_truncated_completions_leave_the_loss(tiny_model_path):
    settings = replay_settings(str(tiny_model_path), mask_truncated_completions=True, micro_batch_size=4)
    gradients = Gradients()
    module, _ = fit(settings, callbacks=[gradients])
    rollout = module.step.sample(module.model, ROWS, settings.num_generations, module.device)
    assert 0 < sum(rollout.truncated) < len(rollout.truncated)  # both kinds are in the batch
    for found, wanted in zip(gradients.updates[0], hand_gradient(settings), strict=True):
        torch.testing.assert_close(found, wanted, rtol=1e-6, atol=1e-10)
    unmasked = Gradients()
    fit(replay_settings(str(tiny_model_path), micro_batch_size=4), callbacks=[unmasked])
    assert not torch.allclose(unmasked.updates[0][0], gradients.updates[0][0])


@pytest.mark.parametrize("setting", [{"temperature": 1.0}, {"loss_type": "grpo"}], ids=["temperature", "loss_type"])
def test_each_setting_changes_the_update(tiny_model_path, setting):
    """The comparison above is sensitive: another temperature or loss type gives another gradient."""
    base = Gradients()
    fit(replay_settings(str(tiny_model_path)), callbacks=[base])
    changed = Gradients()
    fit(replay_settings(str(tiny_model_path), **setting), callbacks=[changed])
    difference = max((a - b).abs().max().item() for a, b in zip(base.updates[0], changed.updates[0]))
    assert difference > 1e-4


class AppliedGradients(Callback):
    """The gradients the optimiser actually applied (after clipping), read right after each update."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_start(self, trainer, module) -> None:
        def record(optimizer, args, kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            self.norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())

        trainer.optimizers[0].register_step_post_hook(record)


def test_max_grad_norm_bounds_the_applied_gradient(tiny_model_path):
    free = AppliedGradients()
    _, run = fit(replay_settings(str(tiny_model_path), max_grad_norm=None), callbacks=[free])
    true_norm = free.norms[0]
    assert run.callback_metrics["grad_norm"].item() == pytest.approx(true_norm)
    assert true_norm > 0.02
    clipped = AppliedGradients()
    _, run = fit(replay_settings(str(tiny_model_path), max_grad_norm=0.01), callbacks=[clipped])
    assert clipped.norms[0] == pytest.approx(0.01, rel=1e-5)
    assert run.callback_metrics["grad_norm"].item() == pytest.approx(true_norm)  # the norm before the clip


def test_fp16_clipping_sees_the_unscaled_norm(tiny_model_path):
    """16-mixed with a gradient scaler (forced on the CPU): the clip acts on the true gradient, so
    the applied norm is ``max_grad_norm``, not ``max_grad_norm / scale``."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**6)
    applied = AppliedGradients()
    settings = replay_settings(str(tiny_model_path), max_grad_norm=0.01, model_init_kwargs={"dtype": "float32"})
    fit(settings, callbacks=[applied], plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    assert applied.norms and applied.norms[0] == pytest.approx(0.01, rel=1e-3)


def test_importance_weights_correct_for_a_sampler_whose_logprobs_differ(tiny_model_path):
    """A sampler reporting log-probs of -5 for every token (the policy's are about -4.6 +- 0.5):
    the gap is measured, and with the correction each token's surrogate is weighed by
    ``min(pi / pi_sampler, 1.3)``, as the hand-written step does."""
    settings = replay_settings(
        str(tiny_model_path), sampler_options={"logprob": -5.0}, importance_sampling_correction=True,
        importance_sampling_mode="token_truncate", importance_sampling_clip_max=1.3, micro_batch_size=5,
    )
    gradients = Gradients()
    _, run = fit(settings, callbacks=[gradients])
    for found, wanted in zip(gradients.updates[0], hand_gradient(settings), strict=True):
        torch.testing.assert_close(found, wanted, rtol=1e-6, atol=1e-10)
    metrics = {name: value.item() for name, value in run.callback_metrics.items()}
    assert 0 < metrics["sampling/logprob_difference_mean"] < metrics["sampling/logprob_difference_max"]
    assert 0 < metrics["sampling/importance_weight_min"] < metrics["sampling/importance_weight_max"] == pytest.approx(1.3)
    uncorrected = Gradients()
    fit(replay_settings(str(tiny_model_path), sampler_options={"logprob": -5.0}, micro_batch_size=5),
        callbacks=[uncorrected])
    assert not torch.allclose(uncorrected.updates[0][0], gradients.updates[0][0])


def test_a_grader_that_blocks_the_grading_thread_stops_the_step_instead_of_hanging(tiny_model_path, fresh_plugins):
    """Per-grade timeouts cannot fire when a grader blocks the event loop itself; the step's own
    deadline (waves of grades x grader_timeout, plus one) still ends the wait."""
    import time as clock

    from rft_plugins import hookimpl

    class Blocking:
        def __init__(self, config):
            self.name = config["name"]

        async def agrade(self, sample, item):
            clock.sleep(3)  # blocks the loop: no timeout of the event loop can interrupt it
            return 1.0

    class Plugin:
        @hookimpl
        def rft_register_graders(self, register):
            register("blocking", Blocking)

    fresh_plugins.get_plugin_manager().register(Plugin(), name="blocking")
    settings = replay_settings(str(tiny_model_path), grader={"type": "blocking", "name": "b"}, grader_timeout=0.2,
                               batch_size=1, num_generations=2)
    started = clock.perf_counter()
    with pytest.raises(RuntimeError, match="blocks the grading thread"):
        fit(settings)
    assert clock.perf_counter() - started < 30
