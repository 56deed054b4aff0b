"""Checks of a job's model folder that must pass before a run folder is touched.

``from_pretrained`` reports a folder without weights, a truncated ``.safetensors`` file or a
tokenizer without a chat template as a traceback, and the last only once training samples its
first prompt. Found here first, each is one line naming the folder and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

#: weight files ``AutoModelForCausalLM.from_pretrained`` loads (whole, sharded, or a LoRA adapter)
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "adapter_model.bin")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _shards_missing(folder: Path) -> list[str]:
    """Shard files a sharded checkpoint's index names that are not in the folder."""
    missing: set[str] = set()
    for index_name in SHARD_INDEXES:
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            except (ValueError, AttributeError):
                return [f"{index_name} (not a JSON index)"]
            missing.update(name for name in set(weight_map.values()) if not (folder / name).is_file())
    return sorted(missing)


def _safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable safetensors file (its header and size are checked, not the
    tensors: it is memory-mapped, never loaded), or None."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy"):
            return None
    except (SafetensorError, OSError) as error:
        return f"{path.name} is not a readable safetensors file ({error})"


def weights_problem(folder: Path) -> str | None:
    """Why the model folder cannot give ``from_pretrained`` its weights, or None."""
    files = sorted({path for pattern in WEIGHT_PATTERNS for path in folder.glob(pattern) if path.is_file()})
    if not files:
        return (
            f"{folder} holds no model weights (no *.safetensors or pytorch_model*.bin); "
            "save the model with save_pretrained"
        )
    missing = _shards_missing(folder)
    if missing:
        return f"{folder} is a sharded checkpoint missing {', '.join(missing[:3])}"
    for path in files:
        if path.suffix == ".safetensors":
            problem = _safetensors_problem(path)
            if problem:
                return f"{folder}: {problem}"
    return None


def chat_template_problem(folder: str) -> str | None:
    """Why the model's tokenizer cannot render chat prompts (none loads, or it has no chat
    template: RFT rows are chats), or None."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"the tokenizer in {folder} does not load: {first}"
    if not getattr(tokenizer, "chat_template", None):
        return (
            f"the tokenizer in {folder} has no chat template, and RFT prompts are chats; add one "
            "(tokenizer.chat_template = ...; tokenizer.save_pretrained(folder)) or use an instruct model"
        )
    return None
