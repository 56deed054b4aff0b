"""The loop under Lightning's DDP strategy: two CPU processes talking over gloo.

The test runs this very file as a script (``python tests/test_ddp.py OUT MODEL``) so Lightning's
launcher starts the second process the ordinary way, by re-running the command with its rank in
the environment. Each rank writes what it saw; the test compares them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# a graded (not 0/1) reward, so every group has some spread and every step a gradient
GRADER = {
    "type": "text_similarity", "name": "letters", "input": "{{ sample.output_text }}",
    "reference": "abcdefghijklmnopqrstuvwxyz", "evaluation_metric": "fuzzy_match",
}


def run_ranks(out_dir: str, model_path: str) -> None:
    """What each process runs: 3 steps of 4 prompts (2 per rank) and a validation every 2 steps."""
    import hashlib

    import lightning
    import torch
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.strategies import DDPStrategy

    from rft_plugins.training.module import RFTModule
    from rft_plugins.training.settings import ResolvedSettings

    class Record(Callback):
        def __init__(self, checkpoint: Path | None = None):
            self.train_rewards: list[float] = []
            self.prompts: list[str] = []
            self.checkpoint = checkpoint

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.train_rewards.append(float(trainer.callback_metrics["train_reward_mean"]))
            self.prompts += [row["messages"][-1]["content"] for row in batch]

        def on_validation_end(self, trainer, module):
            if self.checkpoint is not None:  # after step 2's validation, as rft train saves
                trainer.save_checkpoint(self.checkpoint)

    torch.set_num_threads(1)
    lightning.seed_everything(0, verbose=False)
    rows = [{"messages": [{"role": "user", "content": f"prompt {n}"}]} for n in range(8)]
    settings = ResolvedSettings(
        model=model_path, grader=GRADER, batch_size=4, num_generations=2, eval_samples=1,
        max_completion_length=4, learning_rate=1e-2, beta=0.05, loss_type="dapo",
    )
    def fit(record: Record, checkpoint: Path | None = None) -> tuple[RFTModule, lightning.Trainer]:
        module = RFTModule(settings, rows, rows[:5])
        trainer = lightning.Trainer(
            accelerator="cpu", devices=2, strategy=DDPStrategy(process_group_backend="gloo"),
            max_steps=3, val_check_interval=2, check_val_every_n_epoch=None, num_sanity_val_steps=0,
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            callbacks=[record],
        )
        trainer.fit(module, ckpt_path=checkpoint)
        return module, trainer

    def weights(module: RFTModule) -> str:
        digest = hashlib.sha256()
        for parameter in module.model.parameters():
            digest.update(parameter.detach().cpu().numpy().tobytes())
        return digest.hexdigest()

    checkpoint = Path(out_dir, "step2.ckpt")
    record = Record(checkpoint)
    module, trainer = fit(record)
    # the same run resumed from its step-2 checkpoint: each process must continue its own
    # share of the data and its own random stream
    resumed = Record()
    resumed_module, _ = fit(resumed, checkpoint)
    result = {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "global_step": trainer.global_step,
        "train_rewards": record.train_rewards,
        "prompts": record.prompts,
        "valid_reward_mean": float(trainer.callback_metrics["valid_reward_mean"]),
        "validation_records": len(module.validation_records),
        "kl": float(trainer.callback_metrics["kl"]),
        "weights": weights(module),
        "resumed": {"train_rewards": resumed.train_rewards, "prompts": resumed.prompts, "weights": weights(resumed_module)},
    }
    result["sampled"] = sample_same_prompts(model_path, settings, fit_plain)
    save_gradients(out_dir, model_path, trainer.global_rank, fit_plain)
    Path(out_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(result))


def fit_plain(module, callbacks) -> None:
    """One step of ``module`` on two CPU processes (no validation)."""
    import lightning
    from lightning.pytorch.strategies import DDPStrategy

    lightning.Trainer(
        accelerator="cpu", devices=2, strategy=DDPStrategy(process_group_backend="gloo"), max_steps=1,
        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=callbacks,
    ).fit(module)


def sample_same_prompts(model_path: str, settings, fit) -> list[str]:
    """What this process sampled for 2 copies of one prompt: each process has its own seed."""
    from rft_plugins.training.module import RFTModule

    module = RFTModule(settings, [{"messages": [{"role": "user", "content": "same"}]}] * 4, [])
    sampled: list[str] = []
    sample = module.sampler.sample

    def recording(*args, **kwargs):
        rollout = sample(*args, **kwargs)
        sampled.extend(rollout.texts)
        return rollout

    module.sampler.sample = recording
    fit(module, [])
    return sampled


def save_gradients(out_dir: str, model_path: str, rank: int, fit) -> None:
    """The averaged gradient of one replayed step, whole and in micro-batches, per loss type."""
    import torch
    from lightning.pytorch.callbacks import Callback
    from replay import register
    from test_step_plan import ROWS, replay_settings

    from rft_plugins import plugins
    from rft_plugins.training.module import RFTModule

    class Gradients(Callback):
        def on_before_optimizer_step(self, trainer, module, optimizer):
            self.grads = [p.grad.detach().clone() for group in optimizer.param_groups for p in group["params"]]

    register(plugins)
    for name, overrides in GRADIENT_RUNS.items():
        gradients = Gradients()
        fit(RFTModule(replay_settings(model_path, **overrides), ROWS, []), [gradients])
        torch.save(gradients.grads, Path(out_dir, f"rank{rank}-{name}.pt"))


#: the replayed steps whose gradients the two processes save
GRADIENT_RUNS = {
    "dapo-whole": {"loss_type": "dapo"},
    "dapo-micro": {"loss_type": "dapo", "micro_batch_size": 2},
    "grpo-micro": {"loss_type": "grpo", "micro_batch_size": 4},
    "dr_grpo-micro": {"loss_type": "dr_grpo", "micro_batch_size": 3},
}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tiny_model_path) -> Path:
    """This file run as a two-process DDP script once; the folder where each rank wrote its results."""
    folder = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent), "OMP_NUM_THREADS": "1"}
    for variable in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(variable, None)
    done = subprocess.run(
        [sys.executable, __file__, str(folder), str(tiny_model_path)],
        env=env, capture_output=True, text=True, timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def test_ddp_two_cpu_processes(ddp_run):
    ranks = [json.loads((ddp_run / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for rank, result in enumerate(ranks):
        assert result["rank"] == rank and result["world_size"] == 2
        assert result["global_step"] == 3 and len(result["train_rewards"]) == 3
        assert len(result["prompts"]) == 6  # 2 prompts per rank per step
    zero, one = ranks
    # each rank trained on its own share of every batch; gradients were averaged, so weights agree
    assert set(zero["prompts"][:4]).isdisjoint(one["prompts"][:4])
    assert zero["weights"] == one["weights"]
    # rewards are shaped and reported over the whole batch: both ranks log the same numbers
    assert zero["train_rewards"] == one["train_rewards"]
    assert zero["kl"] == one["kl"] and zero["kl"] > 0
    # validation covered the 5 rows once (the sampler pads rank 1 with a repeat, dropped)
    assert zero["valid_reward_mean"] == one["valid_reward_mean"]
    assert zero["validation_records"] == one["validation_records"] == 5
    # resumed after step 2: step 3 trains on the same prompts, draws the same samples, ends the same
    for result in ranks:
        resumed = result["resumed"]
        assert resumed["prompts"] == result["prompts"][4:] and resumed["train_rewards"] == result["train_rewards"][2:]
        assert resumed["weights"] == result["weights"]
    # the same prompt on both processes: each draws its own samples
    assert len(zero["sampled"]) == len(one["sampled"]) == 4 and zero["sampled"] != one["sampled"]


def test_ddp_gradients_equal_one_process_whole_batch(tmp_path, tiny_model_path, fresh_plugins, ddp_run):
    """Each process takes its share of the step's rows and its own slice of the advantages; the
    averaged gradient is the one-process, whole-batch, hand-written one (in float64)."""
    import torch
    from replay import register
    from test_step_plan import hand_gradient, replay_settings

    register(fresh_plugins)
    for name, overrides in GRADIENT_RUNS.items():
        expected = hand_gradient(replay_settings(str(tiny_model_path), **overrides))
        for rank in (0, 1):
            found = torch.load(ddp_run / f"rank{rank}-{name}.pt")
            for mine, wanted in zip(found, expected, strict=True):
                torch.testing.assert_close(mine, wanted, rtol=1e-6, atol=1e-10)


if __name__ == "__main__":
    run_ranks(sys.argv[1], sys.argv[2])
