"""RFTCallback inside a real Lightning run of a tiny causal LM."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from rft_plugins.adapters.lightning import RFTCallback

ITEMS = [{"messages": [{"role": "user", "content": f"q{i}"}], "answer": "a"} for i in range(4)]
GRADER = {
    "type": "multi",
    "name": "quality",
    "graders": {
        "nonempty": {"type": "string_check", "name": "n", "input": "{{ sample.output_text }}", "reference": "",
                     "operation": "like"},
        "has_answer": {"type": "string_check", "name": "h", "input": "{{ sample.output_text }}",
                       "reference": "{{ item.answer }}", "operation": "ilike"},
    },
    "calculate_output": "nonempty",
}


class LanguageModelling(pl.LightningModule):
    """A supervised fine-tuning module as a user would already have one."""

    def __init__(self, path):
        super().__init__()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = AutoModelForCausalLM.from_pretrained(path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)

    def _loss(self, batch):
        ids = self.tokenizer(list(batch), return_tensors="pt", padding=True).input_ids
        return self.model(input_ids=ids, labels=ids).loss

    def training_step(self, batch, batch_index):
        return self._loss(batch)

    def validation_step(self, batch, batch_index):
        self.log("val_loss", self._loss(batch), batch_size=len(batch))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def test_callback_grades_and_logs_during_validation(tiny_model_path, tmp_path):
    module = LanguageModelling(tiny_model_path)
    callback = RFTCallback(GRADER, ITEMS, tokenizer=module.tokenizer, max_new_tokens=4)
    texts = ["hello world"] * 8
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        default_root_dir=tmp_path, num_sanity_val_steps=1, callbacks=[callback],
    )
    trainer.fit(module, DataLoader(texts, batch_size=4), DataLoader(texts[:4], batch_size=4))
    assert [entry["epoch"] for entry in callback.history] == [0, 1]  # the sanity check is not graded
    metrics = trainer.callback_metrics
    assert metrics["rft/quality_reward_mean"].item() == 1.0  # every text contains ""
    assert metrics["rft/quality/nonempty_reward_mean"].item() == 1.0
    assert 0.0 <= metrics["rft/quality/has_answer_reward_mean"].item() <= 1.0
    assert metrics["rft/quality_error_rate"].item() == 0.0
    assert len(callback.last_samples) == 4
    assert all(isinstance(sample["completion"], str) for sample in callback.last_samples)


def test_custom_generate_is_used_and_history_round_trips(tiny_model_path, tmp_path):
    calls = []

    def generate(pl_module, conversations):
        calls.append(len(conversations))
        return ["the answer is A"] * len(conversations)

    module = LanguageModelling(tiny_model_path)
    callback = RFTCallback(GRADER, ITEMS, generate=generate)
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        default_root_dir=tmp_path, num_sanity_val_steps=0, callbacks=[callback],
    )
    texts = ["hello world"] * 4
    trainer.fit(module, DataLoader(texts, batch_size=4), DataLoader(texts, batch_size=4))
    assert calls == [4]
    assert trainer.callback_metrics["rft/quality/has_answer_reward_mean"].item() == 1.0
    restored = RFTCallback(GRADER, ITEMS, generate=generate)
    restored.load_state_dict(callback.state_dict())
    assert restored.history == callback.history and len(restored.history) == 1


def test_needs_a_tokenizer_or_generate():
    with pytest.raises(ValueError, match="tokenizer"):
        RFTCallback(GRADER, ITEMS)


HAS_A = {"type": "string_check", "name": "has_a", "input": "{{ sample.output_text }}", "reference": "a",
         "operation": "like"}
RFT_ROWS = [{"messages": [{"role": "user", "content": word}]} for word in ("hello", "say", "x", "abc", "query", "zz")]


def sft_then_rft(path, epochs, checkpoint=None, save_after_epoch=None, folder=None, optimizer="own"):
    """A supervised run with RFT steps after every batch from epoch 1; the weights' digest."""
    import hashlib

    from lightning.pytorch.callbacks import Callback

    class Save(Callback):
        def on_train_epoch_end(self, trainer, module):
            if trainer.current_epoch == save_after_epoch:
                trainer.save_checkpoint(folder / "checkpoint.ckpt")

    pl.seed_everything(0, verbose=False)
    module = LanguageModelling(path)
    callback = RFTCallback(
        HAS_A, ITEMS, tokenizer=module.tokenizer, max_new_tokens=4, train=True, train_rows=RFT_ROWS, start_epoch=1,
        every_n_steps=1, optimizer=optimizer,
        settings={"learning_rate": 5e-3, "num_generations": 4, "batch_size": 2, "max_completion_length": 4},
    )
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        num_sanity_val_steps=0, callbacks=[callback] + ([Save()] if save_after_epoch is not None else []),
    )
    texts = ["the cat sat on the mat"] * 4
    trainer.fit(module, DataLoader(texts, batch_size=2), DataLoader(texts[:2], batch_size=2), ckpt_path=checkpoint)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in module.model.parameters())).hexdigest()
    return callback, trainer, digest


def test_rft_steps_run_from_the_start_epoch_and_train_the_model(tiny_model_path, tmp_path):
    """Epoch 0 is supervised only; from epoch 1 each batch is followed by a GRPO step, logged."""
    callback, trainer, trained = sft_then_rft(tiny_model_path, epochs=2)
    assert callback.rft_steps == 2 and callback.rows_served == 2 * 2  # 2 batches in epoch 1, 2 prompts each
    assert "rft/train_reward_mean" in trainer.callback_metrics and "rft/loss" in trainer.callback_metrics
    assert trainer.callback_metrics["rft/steps"].item() == 2
    _, _, supervised_only = sft_then_rft(tiny_model_path, epochs=1)
    assert trained != supervised_only and callback.best_reward is not None


def test_a_resumed_run_continues_the_rft_steps_exactly(tiny_model_path, tmp_path):
    """Checkpointed after epoch 1 and resumed: the same RFT steps, place in the data, optimiser
    and random state as the uninterrupted run, and the same final weights."""
    whole, _, uninterrupted = sft_then_rft(tiny_model_path, epochs=3, save_after_epoch=1, folder=tmp_path)
    resumed, _, continued = sft_then_rft(tiny_model_path, epochs=3, checkpoint=str(tmp_path / "checkpoint.ckpt"))
    assert (resumed.rft_steps, resumed.rows_served) == (whole.rft_steps, whole.rows_served) == (4, 8)
    assert continued == uninterrupted


def test_train_mode_needs_rows_and_a_known_optimizer():
    with pytest.raises(ValueError, match="train_rows"):
        RFTCallback(GRADER, ITEMS, tokenizer=object(), train=True)
    with pytest.raises(ValueError, match="'own'"):
        RFTCallback(GRADER, ITEMS, tokenizer=object(), train=True, train_rows=RFT_ROWS, optimizer="sgd")


def test_rft_steps_can_use_the_modules_optimizer(tiny_model_path):
    callback, trainer, _ = sft_then_rft(tiny_model_path, epochs=2, optimizer="module")
    assert callback._optimizer is trainer.optimizers[0] and callback.rft_steps == 2
    assert "optimizer" not in callback.state_dict()  # Lightning checkpoints the module's optimiser itself
