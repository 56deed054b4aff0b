"""The model card (``README.md``) in ``final/`` and every ``best/step-N/`` folder: what the model
was trained from and with (the job, the grader JSON), the validation reward, and how to load it.

It is the card the Hugging Face Hub shows when the folder is pushed (``push_to_hub``), so it
starts with the Hub's metadata block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .job import Job

CARD_FILE = "README.md"


def _reward_lines(step: int | None, reward: float | None, best: dict[str, Any] | None, where: str) -> list[str]:
    lines = []
    if reward is not None:
        lines.append(f"- {where}: `valid_reward_mean` **{reward:.4f}** at step {step}")
    if best is not None:
        lines.append(f"- best of the run: `valid_reward_mean` **{best['valid_reward_mean']:.4f}** at step "
                     f"{best['step']} (`best/step-{best['step']:06d}/`)")
    return lines or ["- no validation ran (the job has no validation_file)"]


def _loading(job: "Job", name: str) -> str:
    if job.trainer.lora is not None:
        return (
            "from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n"
            f"model = AutoPeftModelForCausalLM.from_pretrained({name!r})  # the LoRA adapter over its base model\n"
            f"tokenizer = AutoTokenizer.from_pretrained({name!r})"
        )
    return (
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f"model = AutoModelForCausalLM.from_pretrained({name!r})\n"
        f"tokenizer = AutoTokenizer.from_pretrained({name!r})  # with the chat template the model was trained with"
    )


def model_card(
    job: "Job", step: int | None, reward: float | None, best: dict[str, Any] | None = None,
    where: str = "this model", load_from: str = ".",
) -> str:
    """The card's Markdown: ``reward`` is this folder's ``valid_reward_mean`` at ``step``, ``best``
    the run's best checkpoint (``checkpoints.best_checkpoints``' first), ``load_from`` the name
    the loading snippet uses (the folder, or the hub repository)."""
    grader_name = job.grader.get("name") or job.grader.get("type")
    library = "peft" if job.trainer.lora is not None else "transformers"
    header = {"library_name": library, "tags": ["rft", "reinforcement-learning", "grpo", "rft-plugins"]}
    if not Path(job.model).exists():  # a hub id: the hub links the base model
        header["base_model"] = job.model
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False).strip(), "---", "",
        f"# {job.suffix or Path(job.trainer.output_dir).name}: reinforcement fine-tuned with rft-plugins",
        "",
        f"Fine-tuned from `{job.model}` by reinforcement fine-tuning (GRPO family, the `{job.trainer.backend}` "
        f"backend of `rft train`), rewarded by the grader `{grader_name}` on `{job.training_file}`.",
        "", "## Validation reward", "",
        *_reward_lines(step, reward, best, where),
        "", "## Load it", "", "```python", _loading(job, load_from), "```",
        "", "## Grader", "", "```json", json.dumps(job.grader, indent=2), "```",
        "", "## Job", "", "```yaml", yaml.safe_dump(job.model_dump(mode="json"), sort_keys=False).strip(), "```", "",
    ]
    return "\n".join(lines)


def write_model_card(
    folder: Path, job: "Job", step: int | None, reward: float | None, best: dict[str, Any] | None = None,
    where: str = "this model", load_from: str | Path | None = None,
) -> Path:
    """``folder/README.md``; the loading snippet names ``load_from``, a folder or a hub repository
    (default ``folder``: give the destination when ``folder`` is a temporary one renamed into place
    afterwards)."""
    path = Path(folder) / CARD_FILE
    path.write_text(model_card(job, step, reward, best, where, str(load_from or folder)), encoding="utf-8")
    return path
