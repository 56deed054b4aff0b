"""The default ``transformers`` sampler: shapes, masks, grouping, and log-probs that equal a
fresh forward pass; and a third-party sampler plugging into the loop by name."""

from __future__ import annotations

import lightning
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rft_plugins import hookimpl
from rft_plugins.sampling import RolloutBatch, SamplingParams, build_sampler, completion_logprobs
from rft_plugins.training.module import RFTModule
from rft_plugins.training.settings import ResolvedSettings


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_path), AutoTokenizer.from_pretrained(tiny_model_path)


def _prompts(tokenizer, texts):
    rendered = [
        tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False)
        for t in texts
    ]
    return [tokenizer(r, add_special_tokens=False)["input_ids"] for r in rendered]


def test_rollout_shapes_masks_and_logprobs(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer, ["hi", "a much longer prompt", "mid size", "x"])
    sampler = build_sampler("transformers", tokenizer, {"prompts_per_call": 3})  # two generate() calls
    torch.manual_seed(0)
    params = SamplingParams(num_generations=8, max_new_tokens=40, temperature=0.8)
    rollout = sampler.sample(model, prompts, params)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id

    assert isinstance(rollout, RolloutBatch)
    rows = 4 * 8
    assert rollout.prompt_ids.shape[0] == rows and rollout.completion_ids.shape[0] == rows
    assert rollout.completion_ids.shape == rollout.completion_mask.shape == rollout.logprobs.shape
    assert rollout.completion_ids.shape[1] <= 40
    # prompts: left padded, each group repeats its prompt
    for row in range(rows):
        tokens = prompts[row // 8]
        width = rollout.prompt_ids.shape[1]
        assert rollout.prompt_ids[row, width - len(tokens) :].tolist() == tokens
        assert rollout.prompt_mask[row].tolist() == [0] * (width - len(tokens)) + [1] * len(tokens)
    # completions: mask up to and including the first EOS; truncated means no EOS
    ended = 0
    for row in range(rows):
        ids, mask = rollout.completion_ids[row].tolist(), rollout.completion_mask[row].tolist()
        length = sum(mask)
        assert mask == [1] * length + [0] * (len(mask) - length)
        if eos in ids:
            ended += 1
            assert length == ids.index(eos) + 1 and not rollout.truncated[row]
            assert all(token == pad for token in ids[length:])
        else:
            assert rollout.truncated[row] and length == 40
        # texts are the real tokens, EOS and other special tokens dropped
        expected = tokenizer.decode([t for t in ids[:length] if t != eos], skip_special_tokens=True)
        assert rollout.texts[row] == expected
    assert 0 < ended < rows  # the seed gives both kinds, so both branches were checked
    assert rollout.completion_lengths == rollout.completion_mask.sum(-1).tolist()
    # the sampling-time log-probs are those of a fresh forward pass at the same temperature
    with torch.no_grad():
        recomputed = completion_logprobs(
            model, rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask, 0.8
        )
    torch.testing.assert_close(rollout.logprobs, recomputed, atol=1e-4, rtol=1e-4)
    assert (rollout.logprobs[rollout.completion_mask == 0] == 0).all()
    assert (rollout.logprobs[rollout.completion_mask == 1] < 0).all()


def test_top_k_and_options_are_checked(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    sampler = build_sampler("transformers", tokenizer)
    torch.manual_seed(1)
    params = SamplingParams(num_generations=4, max_new_tokens=6, top_k=1)
    rollout = sampler.sample(model, _prompts(tokenizer, ["same"]), params)
    assert len(set(rollout.texts)) == 1  # top_k=1 is greedy: every sample is the same
    with pytest.raises(ValueError, match="trainer.sampler_options"):
        build_sampler("transformers", tokenizer, {"prompt_per_call": 2})
    with pytest.raises(ValueError, match="unknown sampler 'vllm'; known samplers: transformers"):
        build_sampler("vllm", tokenizer)


def test_validate_rejects_malformed_batches():
    ids = torch.zeros((4, 3), dtype=torch.long)
    batch = RolloutBatch(ids, ids, ids, ids, None, ["a"] * 4, [False] * 4, num_generations=2)
    assert batch.validate(2) is batch
    with pytest.raises(ValueError, match="expected 6"):
        batch.validate(3)


class ScriptedSampler:
    """A sampler from another 'engine': answers from a script, gives no log-probs (the loop then
    computes them) and records weight updates, as a vLLM sampler would sync weights."""

    def __init__(self, tokenizer, options):
        self.tokenizer = tokenizer
        self.answers = options["answers"]
        self.updates = 0

    def sample(self, model, prompts, params):
        from rft_plugins.sampling.transformers_sampler import completion_mask_for, left_pad

        texts = [self.answers[i % len(self.answers)] for i in range(len(prompts) * params.num_generations)]
        eos = self.tokenizer.eos_token_id
        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in texts]
        width = max(map(len, encoded))
        completion_ids = torch.tensor([e + [self.tokenizer.pad_token_id] * (width - len(e)) for e in encoded])
        mask, _ = completion_mask_for(completion_ids, [eos])
        prompt_ids, prompt_mask = left_pad([p for p in prompts for _ in range(params.num_generations)], 0)
        return RolloutBatch(prompt_ids, prompt_mask, completion_ids, mask, None, texts, [False] * len(texts), params.num_generations)

    def update_weights(self, model):
        self.updates += 1


class ScriptedPlugin:
    @hookimpl
    def rft_register_samplers(self, register):
        register("scripted", ScriptedSampler)


def test_a_plugin_sampler_drives_the_loop(fresh_plugins, tiny_model_path):
    fresh_plugins.get_plugin_manager().register(ScriptedPlugin(), name="scripted")
    grader = {"type": "string_check", "name": "yes", "input": "{{ sample.output_text }}", "reference": "yes", "operation": "eq"}
    settings = ResolvedSettings(
        model=str(tiny_model_path), grader=grader, batch_size=2, num_generations=2, num_iterations=2,
        sampler="scripted", sampler_options={"answers": ["yes", "no"]}, learning_rate=1e-3,
    )
    rows = [{"messages": [{"role": "user", "content": "ok?"}]}] * 4
    module = RFTModule(settings, rows, [])
    trainer = lightning.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )
    trainer.fit(module)
    assert module.sampler.updates == 2  # once per step, after the step's updates
    assert trainer.global_step == 2  # a step is a batch, whatever num_iterations is
    assert trainer.callback_metrics["train_reward_mean"].item() == pytest.approx(0.5)
    assert trainer.callback_metrics["completion_length_mean"].item() == pytest.approx(3.5)  # "yes"/"no" + EOS


def test_static_cache_gives_the_same_greedy_tokens_and_logprobs(model_and_tokenizer):
    """``generation_kwargs: {cache_implementation: static}`` (the cache CUDA graphs need) samples
    what the default dynamic cache does: same greedy tokens, same log-probs."""
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer, ["hi", "a longer prompt here"])
    params = SamplingParams(num_generations=2, max_new_tokens=12, top_k=1, temperature=0.7)
    plain = build_sampler("transformers", tokenizer).sample(model, prompts, params)
    static = build_sampler(
        "transformers", tokenizer, {"generation_kwargs": {"cache_implementation": "static"}}
    ).sample(model, prompts, params)
    assert static.texts == plain.texts and torch.equal(static.completion_ids, plain.completion_ids)
    torch.testing.assert_close(static.logprobs, plain.logprobs, atol=1e-5, rtol=1e-5)


def test_sampler_logprobs_agree_with_the_training_forward(tiny_model_path):
    """The loop reports how far the sampler's log-probs are from its own training-mode forward:
    for the built-in sampler on float32 weights, rounding only."""
    grader = {"type": "string_check", "name": "a", "input": "{{ sample.output_text }}", "reference": "a", "operation": "like"}
    settings = ResolvedSettings(model=str(tiny_model_path), grader=grader, batch_size=2, num_generations=4,
                                max_completion_length=12, temperature=0.8, micro_batch_size=3)
    rows = [{"messages": [{"role": "user", "content": text}]} for text in ("one", "two more")]
    trainer = lightning.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )
    trainer.fit(RFTModule(settings, rows, []))
    metrics = trainer.callback_metrics
    assert 0 <= metrics["sampling/logprob_difference_mean"] <= metrics["sampling/logprob_difference_max"] < 1e-4
    assert "sampling/importance_weight_mean" not in metrics  # no correction asked for


def test_generation_can_leave_the_steps_autocast(model_and_tokenizer):
    """``autocast: false`` generates in the weights' own dtype even inside a bfloat16 autocast (the
    step's, under bf16-mixed): the log-probs are then those of the float32 forward."""
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer, ["hi there"])
    params = SamplingParams(num_generations=4, max_new_tokens=10, temperature=0.9)

    def sample(options):
        torch.manual_seed(3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return build_sampler("transformers", tokenizer, options).sample(model, prompts, params)

    outside, inside = sample({"autocast": False}), sample({})
    with torch.no_grad():
        exact = completion_logprobs(model, outside.prompt_ids, outside.prompt_mask, outside.completion_ids,
                                    outside.completion_mask, 0.9)
    torch.testing.assert_close(outside.logprobs, exact, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        exact = completion_logprobs(model, inside.prompt_ids, inside.prompt_mask, inside.completion_ids,
                                    inside.completion_mask, 0.9)
    assert (inside.logprobs - exact).abs().max() > 1e-3  # bfloat16 compute
