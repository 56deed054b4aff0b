"""A supervised Lightning pipeline that becomes supervised-then-RFT by adding one callback.

``LanguageModelling`` below is an ordinary supervised fine-tuning module, as a Lightning user
already has one. ``RFTCallback(train=True, ...)`` adds reinforcement fine-tuning to the same
``Trainer.fit``: from ``--switch-epoch`` on, after every training batch it runs a GRPO step (the
loop of ``rft train``: sample, grade, shape, update) on the RFT prompts, and at every validation it
grades answers to held-out prompts. The task: answers that contain the letter "a" (a random tiny
model gives a few). The reward stays flat while only supervised training runs and rises after
the switch.

    python examples/lightning_sft_then_rft.py [--epochs 6] [--switch-epoch 1]
"""

from __future__ import annotations

import argparse
import tempfile

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer

from rft_plugins.adapters.lightning import RFTCallback
from rft_plugins.tiny_model import build_tiny_model

HAS_A = {"type": "string_check", "name": "has_a", "input": "{{ sample.output_text }}", "reference": "a",
         "operation": "like"}


class LanguageModelling(pl.LightningModule):
    """Plain supervised fine-tuning: next-token loss on texts."""

    def __init__(self, path: str):
        super().__init__()
        self.model = AutoModelForCausalLM.from_pretrained(path).train()
        self.tokenizer = AutoTokenizer.from_pretrained(path)

    def _loss(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(list(texts), return_tensors="pt", padding=True).input_ids.to(self.device)
        return self.model(input_ids=ids, labels=ids).loss

    def training_step(self, batch, batch_index):
        return self._loss(batch)

    def validation_step(self, batch, batch_index):
        self.log("val_loss", self._loss(batch), batch_size=len(batch))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="local HF causal LM (default: a tiny random one)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--switch-epoch", type=int, default=1, help="the first epoch with RFT steps")
    args = parser.parse_args()
    pl.seed_everything(0, verbose=False)
    module = LanguageModelling(args.model or str(build_tiny_model(tempfile.mkdtemp(prefix="rft-sft-"))))
    rft_prompts = [{"messages": [{"role": "user", "content": word}]} for word in
                   ("hello", "say something", "x", "abc", "query", "zz", "tell me", "more")]
    held_out = [{"messages": [{"role": "user", "content": f"question {i}"}]} for i in range(8)]
    callback = RFTCallback(
        HAS_A, held_out, tokenizer=module.tokenizer, max_new_tokens=4, do_sample=True,
        train=True, train_rows=rft_prompts, start_epoch=args.switch_epoch, every_n_steps=1,
        settings={"learning_rate": 5e-3, "batch_size": 4, "num_generations": 8, "max_completion_length": 4},
    )
    texts = ["the cat sat on the mat"] * 8
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="auto", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, callbacks=[callback])
    trainer.fit(module, DataLoader(texts, batch_size=2), DataLoader(texts[:2], batch_size=2))
    for entry in callback.history:
        phase = "SFT" if entry["epoch"] < args.switch_epoch else "SFT+RFT"
        print(f"epoch {entry['epoch']} ({phase}): has_a={entry['rft/has_a_reward_mean']:.3f}")
    print(f"{callback.rft_steps} RFT steps; best held-out reward {callback.best_reward:.3f}")


if __name__ == "__main__":
    main()
