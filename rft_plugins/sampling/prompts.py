"""Dataset rows as the token ids a sampler continues: the chat template, then the length limit."""

from __future__ import annotations

from typing import Any


def encode_prompt(tokenizer: Any, row: dict[str, Any], max_prompt_length: int | None = None) -> list[int]:
    """The row's ``messages`` (and ``tools``) through the tokenizer's chat template with the
    generation prompt, cut to ``max_prompt_length`` tokens from the left (the latest turns stay)."""
    text = tokenizer.apply_chat_template(row["messages"], tools=row.get("tools"), add_generation_prompt=True,
                                         tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[-max_prompt_length:] if max_prompt_length is not None and len(ids) > max_prompt_length else ids
