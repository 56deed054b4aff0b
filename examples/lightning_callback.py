"""Watch an existing Lightning fine-tuning run with RFT graders (``RFTCallback``).

A plain supervised module trains on text; at each validation the callback samples answers to
held-out prompts, grades them and logs ``rft/<grader>_reward_mean`` beside ``val_loss``, so the
run can be checkpointed or stopped on the reward an RFT job would use.

    python examples/lightning_callback.py [--model PATH] [--epochs 2]
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

GRADER = {"type": "text_similarity", "name": "answer_similarity", "input": "{{ sample.output_text }}",
          "reference": "{{ item.answer }}", "evaluation_metric": "fuzzy_match"}


class SupervisedFineTuning(pl.LightningModule):
    def __init__(self, path: str):
        super().__init__()
        self.model = AutoModelForCausalLM.from_pretrained(path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)

    def _loss(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(texts, return_tensors="pt", padding=True).input_ids.to(self.device)
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
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    model_path = args.model or build_tiny_model(tempfile.mkdtemp(prefix="rft-lightning-"))
    module = SupervisedFineTuning(model_path)
    held_out = [{"messages": [{"role": "user", "content": f"What is {i}+{i}?"}], "answer": str(2 * i)}
                for i in range(4)]
    callback = RFTCallback(GRADER, held_out, tokenizer=module.tokenizer, max_new_tokens=8)
    texts = [f"{i}+{i}={2 * i}" for i in range(16)]
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="auto", logger=False, enable_checkpointing=False,
                         callbacks=[callback], num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(texts, batch_size=4, shuffle=True), DataLoader(texts[:4], batch_size=4))
    for entry in callback.history:
        print(f"epoch {entry['epoch']}: answer_similarity={entry['rft/answer_similarity_reward_mean']:.3f}")


if __name__ == "__main__":
    main()
