"""Train with TRL's GRPOTrainer, rewarded by rft-plugins graders (OpenAI grader JSON, unchanged).

Runs on a CPU in about half a minute with a tiny model built on the spot; point ``--model`` at
any local Hugging Face causal LM for real use.

    python examples/trl_grpo.py [--model PATH] [--steps 4]
"""

from __future__ import annotations

import argparse
import tempfile

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from rft_plugins.adapters.trl import reward_funcs
from rft_plugins.tiny_model import build_tiny_model

GRADERS = [
    {"type": "string_check", "name": "says_yes", "input": "{{ sample.output_text }}",
     "reference": "{{ item.expected }}", "operation": "ilike"},
    {"type": "text_similarity", "name": "close_to_reference", "input": "{{ sample.output_text }}",
     "reference": "{{ item.expected }}", "evaluation_metric": "fuzzy_match"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="local HF causal LM (default: a tiny random one)")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="rft-trl-")
    model_path = args.model or build_tiny_model(f"{workdir}/model")

    # Reference columns (here `expected`) reach the graders as `item.expected`.
    rows = [{"prompt": [{"role": "user", "content": f"Answer yes to question {i}."}], "expected": "yes"}
            for i in range(8)]
    config = GRPOConfig(
        output_dir=f"{workdir}/out",
        per_device_train_batch_size=4,  # counts samples: 1 prompt x 4 generations per step
        num_generations=4,
        max_completion_length=8,
        max_steps=args.steps,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_path),
        processing_class=AutoTokenizer.from_pretrained(model_path),
        reward_funcs=reward_funcs(GRADERS),
        args=config,
        train_dataset=Dataset.from_list(rows),
    )
    trainer.train()
    for entry in trainer.state.log_history:
        if "rewards/says_yes/mean" in entry:
            print(f"step {entry['step']}: says_yes={entry['rewards/says_yes/mean']:.3f} "
                  f"close_to_reference={entry['rewards/close_to_reference/mean']:.3f}")


if __name__ == "__main__":
    main()
