"""A deterministic sampler and grader for tests of the loop's arithmetic.

The replay sampler's completions depend only on the prompt's tokens and the sample's index, not
on the model or a random stream, so a step's rollout is the same in one process, in several, and
in a test's own hand-written GRPO step: gradients can be compared exactly. Some completions end
with EOS, others are cut at ``max_new_tokens`` (truncated), and their lengths differ.
"""

from __future__ import annotations

from typing import Any

import torch

from rft_plugins import hookimpl
from rft_plugins.sampling import RolloutBatch, SamplingParams
from rft_plugins.sampling.transformers_sampler import completion_mask_for, left_pad

#: graded by how many characters the answer has: rewards differ within every group
LENGTH_GRADER = {"type": "answer_length", "name": "length"}


def replay_completion(prompt: list[int], index: int, max_new_tokens: int, eos: int, vocabulary: int) -> list[int]:
    """Completion ``index`` of ``prompt``: 1 to ``max_new_tokens + 2`` printable tokens (cut to the
    maximum without EOS), EOS after the shorter ones."""
    length = 1 + (sum(prompt) + 3 * index) % (max_new_tokens + 2)
    tokens = [10 + (sum(prompt) * 7 + index * 13 + 5 * k) % (vocabulary - 10) for k in range(length)]
    return tokens[:max_new_tokens] if length >= max_new_tokens else tokens + [eos]


class ReplaySampler:
    """The replay completions as a sampler plugin (``sampler: replay``). It reports no log-probs,
    or with ``sampler_options: {logprob: x}`` the same ``x`` for every token, as an engine whose
    numbers differ from the policy's would."""

    def __init__(self, tokenizer: Any, options: dict[str, Any]):
        self.tokenizer = tokenizer
        self.logprob = options.get("logprob")

    def sample(self, model: Any, prompts: list[list[int]], params: SamplingParams) -> RolloutBatch:
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        vocabulary = min(len(self.tokenizer), 90)
        completions = [
            replay_completion(prompt, index, params.max_new_tokens, eos, vocabulary)
            for prompt in prompts for index in range(params.num_generations)
        ]
        width = max(map(len, completions))
        completion_ids = torch.tensor([c + [pad] * (width - len(c)) for c in completions])
        mask, ended = completion_mask_for(completion_ids, [eos])
        prompt_ids, prompt_mask = left_pad([p for p in prompts for _ in range(params.num_generations)], pad)
        texts = [self.tokenizer.decode([t for t in c if t != eos]) for c in completions]
        device = next(model.parameters()).device
        logprobs = None if self.logprob is None else torch.full(mask.shape, float(self.logprob)) * mask
        return RolloutBatch(
            prompt_ids.to(device), prompt_mask.to(device), completion_ids.to(device), mask.to(device),
            None if logprobs is None else logprobs.to(device), texts, [not flag for flag in ended.tolist()],
            params.num_generations,
        )


class AnswerLength:
    """Reward ``(characters mod 5) / 4``: deterministic, and different for different lengths."""

    def __init__(self, config: dict[str, Any]):
        self.name = config["name"]

    def grade(self, sample: Any, item: dict[str, Any]) -> float:
        return (len(sample.output_text) % 5) / 4


class ReplayPlugin:
    """Registers the replay sampler and the length grader."""

    @hookimpl
    def rft_register_samplers(self, register):
        register("replay", ReplaySampler)

    @hookimpl
    def rft_register_graders(self, register):
        register("answer_length", AnswerLength)


def register(plugins: Any) -> None:
    """Register the replay plugin with the (fresh) plugin manager of ``rft_plugins.plugins``."""
    plugins.get_plugin_manager().register(ReplayPlugin(), name="replay")
