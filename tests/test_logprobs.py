"""Completion log-probs: chunked through the LM head they equal the model's own full logits (values
and gradients), never build a ``tokens x vocabulary`` tensor larger than a chunk, count positions
from the first real token, and fall back to the full logits for a model whose head is not plain."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import AutoModelForCausalLM

from rft_plugins.sampling.logprobs import completion_logprobs, lm_head_of, position_ids_from_mask


def full_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature=1.0):
    """The plain computation: every logit of prompt + completion, a log-softmax, a gather."""
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    mask = torch.cat([prompt_mask, completion_mask], dim=1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
    logits = logits[:, -completion_ids.size(1) - 1 : -1].float() / temperature
    chosen = torch.log_softmax(logits, dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    return chosen * completion_mask


def batch(vocabulary: int, rows: int = 4, prompt: int = 6, completion: int = 7, seed: int = 0):
    """Left-padded prompts and right-padded completions of different lengths."""
    generator = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(3, vocabulary, (rows, prompt), generator=generator)
    completion_ids = torch.randint(3, vocabulary, (rows, completion), generator=generator)
    prompt_mask, completion_mask = torch.ones_like(prompt_ids), torch.ones_like(completion_ids)
    for row in range(rows):
        prompt_mask[row, : row % 3] = 0
        completion_mask[row, completion - row :] = 0
    return prompt_ids, prompt_mask, completion_ids, completion_mask


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_path).train()


def gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_chunked_equals_full_values_and_gradients(model, chunk_size):
    inputs = batch(model.config.vocab_size)
    chunked = completion_logprobs(model, *inputs, temperature=0.7, chunk_size=chunk_size)
    full = full_logprobs(model, *inputs, temperature=0.7)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-6)
    assert (chunked[inputs[3] == 0] == 0).all() and (chunked[inputs[3] == 1] < 0).all()
    weights = torch.linspace(-1, 1, chunked.numel()).view_as(chunked)  # a loss that weighs tokens differently
    for mine, theirs in zip(gradients(model, (chunked * weights).sum()), gradients(model, (full * weights).sum())):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


class LargestVocabularyTensor(TorchDispatchMode):
    """The largest tensor with the vocabulary as its last dimension that any operation produced."""

    def __init__(self, vocabulary: int):
        super().__init__()
        self.vocabulary = vocabulary
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[-1] == self.vocabulary:
                self.largest = max(self.largest, value.numel())
        return result


def test_memory_grows_with_the_chunk_not_with_the_batch(model):
    vocabulary = model.config.vocab_size
    inputs = batch(vocabulary, rows=8, prompt=10, completion=30)
    tokens = int(inputs[3].sum())
    with LargestVocabularyTensor(vocabulary) as chunked:
        completion_logprobs(model, *inputs, chunk_size=40).sum().backward()
    with LargestVocabularyTensor(vocabulary) as full:
        full_logprobs(model, *inputs).sum().backward()
    assert chunked.largest <= 40 * vocabulary  # a chunk of logits (or the head's weight: 32 x vocabulary)
    assert full.largest >= tokens * vocabulary > 4 * 40 * vocabulary  # every token's logits at once


def test_positions_count_from_the_first_real_token():
    """GPT-2 has absolute position embeddings: a left-padded row must score as the row unpadded."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2)).eval()
    prompt, completion = torch.tensor([[5, 6, 7]]), torch.tensor([[8, 9, 10, 11]])
    ones = torch.ones_like(completion)
    alone = completion_logprobs(gpt2, prompt, torch.ones_like(prompt), completion, ones)
    padded_prompt = torch.cat([torch.zeros(1, 3, dtype=torch.long), prompt], dim=1)
    padded_mask = torch.tensor([[0, 0, 0, 1, 1, 1]])
    padded = completion_logprobs(gpt2, padded_prompt, padded_mask, completion, ones)
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-6)
    # without the positions the padding shifts every position embedding: the test would see it
    logits = gpt2(input_ids=torch.cat([padded_prompt, completion], 1), attention_mask=torch.cat([padded_mask, ones], 1)).logits
    shifted = torch.log_softmax(logits[:, -5:-1], -1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    assert (shifted - alone).abs().max() > 1e-3


def test_soft_capped_logits_are_reproduced():
    """Gemma 2 caps its logits after the head (``final_logit_softcapping``); the chunks do too."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, final_logit_softcapping=2.0, max_position_embeddings=64,
    )
    gemma = Gemma2ForCausalLM(config).eval()
    assert lm_head_of(gemma).softcap == 2.0
    inputs = batch(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the chunked path, not the fallback to the full logits
        chunked = completion_logprobs(gemma, *inputs, chunk_size=3)
    torch.testing.assert_close(chunked, full_logprobs(gemma, *inputs))


def test_a_model_with_other_logits_falls_back_to_them(tiny_model_path):
    """A model that changes its logits after the head in a way the config does not say is noticed
    (once, with a warning) and scored through its own forward."""
    from transformers import Olmo2ForCausalLM

    class DoubledLogits(Olmo2ForCausalLM):
        def forward(self, *args, **kwargs):
            output = super().forward(*args, **kwargs)
            output.logits = output.logits * 2
            return output

    doubled = DoubledLogits.from_pretrained(tiny_model_path).eval()
    inputs = batch(doubled.config.vocab_size)
    with pytest.warns(UserWarning, match="not its LM head's output"):
        found = completion_logprobs(doubled, *inputs)
    torch.testing.assert_close(found, full_logprobs(doubled, *inputs))


def test_lora_model_is_scored_through_its_adapters(tiny_model_path):
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    inputs = batch(base.config.vocab_size)
    chunked = completion_logprobs(lora, *inputs, chunk_size=4)
    full = full_logprobs(lora, *inputs)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(gradients(lora, chunked.sum()), gradients(lora, full.sum())):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)
    with lora.disable_adapter():  # the KL reference: the base model, through the same path
        torch.testing.assert_close(completion_logprobs(lora, *inputs), full_logprobs(base, *inputs))
