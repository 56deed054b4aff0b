"""A short supervised fine-tuning on rows' reference answers: the demo's warm-up, the benchmarks' SFT arm.

RFT reinforces what a model already does sometimes: a random-init model never samples the right
answer, so it gets no reward signal. A few supervised steps on the training rows' exact answers
(the prompt through the chat template, as the loop's sampler encodes it; loss on the answer and the
end-of-turn token only) bring it to where sampling finds the answer part of the time. With
``stop_at`` the warm-up ends as soon as the model gives the exact answer with that probability on
average over training prompts (never the validation rows), so the place RFT starts from does not
depend on how fast one seed happens to learn.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

#: steps between checks of the exact-answer probability when ``stop_at`` is set
CHECK_EVERY = 5


@dataclass(frozen=True)
class SFTResult:
    """Where the fine-tuned model went, how many steps it took and its mean exact-answer probability."""

    path: Path
    steps: int
    exact_probability: float
    seconds: float


def _encode(tokenizer: Any, rows: Sequence[dict[str, Any]], answer_key: str):
    """Padded input ids, attention mask and labels (-100 everywhere but the answer and end of turn)."""
    import torch

    from .sampling.prompts import encode_prompt

    prompts = [encode_prompt(tokenizer, row) for row in rows]
    answers = [tokenizer(str(row[answer_key]) + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
               for row in rows]
    width = max(len(prompt) + len(answer) for prompt, answer in zip(prompts, answers))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, (prompt, answer) in enumerate(zip(prompts, answers)):
        length = len(prompt) + len(answer)
        ids[index, :length] = torch.tensor(prompt + answer)
        labels[index, len(prompt):length] = torch.tensor(answer)
        mask[index, :length] = 1
    return ids, mask, labels


def _answer_logits(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], answer_key: str):
    """Logits at each position and the token that should come next there (-100: not the answer)."""
    import torch

    ids, mask, labels = _encode(tokenizer, rows, answer_key)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    model.train(was_training)
    return logits, labels[:, 1:]


def exact_probability(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], answer_key: str = "answer") -> float:
    """Mean probability that sampling at temperature 1 gives exactly the row's answer, then stops."""
    import torch

    logits, targets = _answer_logits(model, tokenizer, rows, answer_key)
    chosen = torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return float((chosen * (targets != -100)).sum(-1).exp().mean())


def greedy_exact_rate(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], answer_key: str = "answer") -> float:
    """Share of rows whose most likely answer, token by token, is exactly the row's answer then a stop."""
    logits, targets = _answer_logits(model, tokenizer, rows, answer_key)
    return float(((logits.argmax(-1) == targets) | (targets == -100)).all(-1).float().mean())


def supervised_finetune(
    model_path: str | Path,
    rows: Sequence[dict[str, Any]],
    output_path: str | Path,
    *,
    answer_key: str = "answer",
    learning_rate: float = 3e-3,
    batch_size: int = 16,
    max_steps: int = 400,
    warmup_steps: int = 0,
    stop_at: float | None = None,
    seed: int = 0,
) -> SFTResult:
    """Fine-tune ``model_path`` on ``rows`` (chat ``messages`` + the exact answer under ``answer_key``).

    AdamW (torch's defaults otherwise) at a constant ``learning_rate`` after ``warmup_steps`` of
    linear warm-up (a model that already knows something loses it to Adam's first full-size
    steps), ``batch_size`` rows drawn at random per step, at most ``max_steps`` steps; with
    ``stop_at``, fewer once the exact-answer probability on (up to 64 of) the rows reaches it.
    Saves model and tokenizer to ``output_path`` as a Hugging Face folder.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_constant_schedule_with_warmup

    started = time.perf_counter()
    torch.manual_seed(seed)
    draw = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    schedule = get_constant_schedule_with_warmup(optimizer, warmup_steps)  # what lr_scheduler_type names in a job
    check_rows = list(rows[:64])
    steps, probability = 0, None
    while steps < max_steps:
        ids, mask, labels = _encode(tokenizer, draw.sample(list(rows), min(batch_size, len(rows))), answer_key)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        steps += 1
        if stop_at is not None and steps % CHECK_EVERY == 0:
            probability = exact_probability(model, tokenizer, check_rows, answer_key)
            if probability >= stop_at:
                break
    if probability is None or steps % CHECK_EVERY:
        probability = exact_probability(model, tokenizer, check_rows, answer_key)
    output_path = Path(output_path)
    model.save_pretrained(output_path)
    tokenizer.save_pretrained(output_path)
    return SFTResult(output_path, steps, probability, time.perf_counter() - started)
