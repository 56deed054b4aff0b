"""OpenAI's ``response_format`` applied while sampling: every finished completion is JSON of the
schema, the log-probs stay the policy's own, bad formats are job errors, and a job trains on it."""

from __future__ import annotations

import json

import lightning
import pytest
import torch
import yaml
from test_job import job_dict, job_dir, write_yaml  # noqa: F401 (job_dir: a fixture)
from transformers import AutoModelForCausalLM, AutoTokenizer

from rft_plugins.sampling import SamplingParams, build_sampler, completion_logprobs
from rft_plugins.training.job import JobError, load_job
from rft_plugins.training.module import RFTModule
from rft_plugins.training.settings import ResolvedSettings

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["a", "e", "i"]}, "sure": {"type": "boolean"}},
    "required": ["answer", "sure"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "vowel", "schema": SCHEMA, "strict": True}}


def follows_schema(value) -> bool:
    return (
        isinstance(value, dict) and set(value) == {"answer", "sure"} and value["answer"] in ("a", "e", "i")
        and isinstance(value["sure"], bool)
    )


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_path), AutoTokenizer.from_pretrained(tiny_model_path)


def prompts(tokenizer, texts):
    chats = [[{"role": "user", "content": text}] for text in texts]
    return [tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False)
            for chat in chats]


def test_every_finished_sample_is_json_of_the_schema(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    sampler = build_sampler("transformers", tokenizer, {"prompts_per_call": 1})  # two generate() calls
    params = SamplingParams(num_generations=8, max_new_tokens=40, temperature=1.0, response_format=RESPONSE_FORMAT)
    torch.manual_seed(0)
    rollout = sampler.sample(model, prompts(tokenizer, ["which vowel?", "another"]), params)
    finished = [text for text, cut in zip(rollout.texts, rollout.truncated) if not cut]
    assert len(finished) >= 12  # a random model left alone almost never ends within 40 tokens
    assert all(follows_schema(json.loads(text)) for text in finished)
    # the recorded log-probs are the policy's, before the grammar's mask (what the loss compares)
    with torch.no_grad():
        policy = completion_logprobs(model, rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                     rollout.completion_mask, 1.0)
    torch.testing.assert_close(rollout.logprobs, policy, atol=1e-4, rtol=1e-4)
    unconstrained = build_sampler("transformers", tokenizer).sample(
        model, prompts(tokenizer, ["which vowel?"]), SamplingParams(num_generations=8, max_new_tokens=40)
    )
    assert not any(follows_schema(sample) for sample in map(_parsed, unconstrained.texts))


def _parsed(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def test_json_object_format_gives_any_json_object(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    params = SamplingParams(num_generations=6, max_new_tokens=30, response_format={"type": "json_object"})
    torch.manual_seed(1)
    rollout = build_sampler("transformers", tokenizer).sample(model, prompts(tokenizer, ["json please"]), params)
    finished = [text for text, cut in zip(rollout.texts, rollout.truncated) if not cut]
    assert finished and all(isinstance(json.loads(text), (dict, list, str, int, float, bool, type(None)))
                            for text in finished)


@pytest.mark.parametrize(
    "response_format, field, message",
    [
        ({"type": "xml"}, "method.reinforcement.response_format.type", "'xml' is not one of text, json_object"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "method.reinforcement.response_format.json_schema.schema",
         "needs a schema object"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {
            "a": {"type": "no-such-type"}}}}}, "method.reinforcement.response_format.json_schema.schema",
         "cannot be enforced while sampling"),
    ],
    ids=["type", "no-schema", "bad-schema"],
)
def test_a_format_the_sampler_cannot_apply_is_a_job_error(job_dir, tiny_model_path, response_format, field, message):
    data = job_dict(tiny_model_path)
    data["method"]["reinforcement"]["response_format"] = response_format
    path = write_yaml(job_dir, data)
    with pytest.raises(JobError) as caught:
        load_job(path)
    assert caught.value.field == field and message in caught.value.message
    assert caught.value.file == str(path) and caught.value.line is not None


def test_a_job_with_a_schema_trains_on_parsed_answers(tiny_model_path):
    """The grader reads ``sample.output_json.answer``: without the format it would see no JSON and
    fail on every sample; with it every finished sample is graded, in training and validation."""
    grader = {"type": "string_check", "name": "vowel", "input": "{{ sample.output_json.answer }}",
              "reference": "{{ item.answer }}", "operation": "eq"}
    rows = [{"messages": [{"role": "user", "content": f"vowel of {word}?"}], "answer": word[0]}
            for word in ("apple", "egg", "ink", "eel")]
    settings = ResolvedSettings(model=str(tiny_model_path), grader=grader, response_format=RESPONSE_FORMAT,
                                batch_size=2, num_generations=4, eval_samples=2, max_completion_length=32,
                                learning_rate=1e-3)
    module = RFTModule(settings, rows, rows)
    trainer = lightning.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, val_check_interval=2, check_val_every_n_epoch=None, num_sanity_val_steps=0,
    )
    trainer.fit(module)
    records = module.validation_records
    assert len(records) == 8
    parsed = [_parsed(record["completion"]) for record in records]
    assert sum(follows_schema(value) for value in parsed) >= 6  # all but those cut at 32 tokens
    graded = [record for record, value in zip(records, parsed) if follows_schema(value)]
    assert all(not record["errors"] for record in graded)
    assert trainer.callback_metrics["train/invalid_variable_error_rate"].item() < 0.5


def test_the_job_file_carries_the_format(job_dir, tiny_model_path):
    data = job_dict(tiny_model_path)
    data["method"]["reinforcement"]["response_format"] = RESPONSE_FORMAT
    job = load_job(write_yaml(job_dir, data))
    assert job.method.reinforcement.response_format == RESPONSE_FORMAT
    assert yaml.safe_load((job_dir / "job.yaml").read_text())["method"]["reinforcement"]["response_format"]
