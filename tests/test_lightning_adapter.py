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
