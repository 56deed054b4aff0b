"""Tool calls in completions reach graders as OpenAI's ``sample.output_tools``: parsed by the
``hermes`` parser or the tokenizer's own response template, in training, validation and the
samples table; a sampler that parsed them itself is left alone."""

from __future__ import annotations

import json

import lightning
import pytest
import torch
from transformers import AutoTokenizer

from rft_plugins import hookimpl
from rft_plugins.sampling import RolloutBatch
from rft_plugins.sampling.tool_calls import ToolCallParserError, build_tool_call_parser
from rft_plugins.sampling.transformers_sampler import completion_mask_for, left_pad
from rft_plugins.training.module import RFTModule
from rft_plugins.training.outputs import samples_markdown
from rft_plugins.training.settings import ResolvedSettings

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>'
#: Qwen 2.5's response template, as a tokenizer can ship it (transformers' declarative format)
QWEN_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open_pattern": r"\s*<tool_call>", "close": "</tool_call>", "repeats": True,
                       "content": "json", "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"\s*<\|im_end\|>", "content": "text"},
    },
}


@pytest.fixture
def tokenizer(tiny_model_path):
    return AutoTokenizer.from_pretrained(tiny_model_path)


def test_hermes_blocks_become_openai_tool_calls(tokenizer):
    parser = build_tool_call_parser("hermes", tokenizer)
    completion = f"Let me look.{CALL}\n<tool_call>not json</tool_call>{CALL.replace('Paris', 'Lyon')}<|im_end|>"
    parsed = parser.parse(completion, "", [WEATHER])
    assert parsed.text == "Let me look.\n<tool_call>not json</tool_call>"  # a broken block is no call
    assert [call["id"] for call in parsed.tool_calls] == ["call_0", "call_1"]
    first = parsed.tool_calls[0]
    assert first["type"] == "function" and first["function"]["name"] == "get_weather"
    assert json.loads(first["function"]["arguments"]) == {"city": "Paris", "days": 2}  # a JSON string, as OpenAI's
    assert json.loads(parsed.tool_calls[1]["function"]["arguments"])["city"] == "Lyon"
    assert parser.parse("no call here<|im_end|>", "", [WEATHER]).tool_calls == []


def test_the_tokenizers_response_template_parses_and_types_arguments(tokenizer):
    tokenizer.response_template = QWEN_TEMPLATE
    parser = build_tool_call_parser("auto", tokenizer)  # auto prefers the tokenizer's own format
    completion = 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome", "days": "3"}}\n</tool_call><|im_end|>'
    parsed = parser.parse(completion, "<|im_start|>user\nweather?<|im_end|>\n<|im_start|>assistant\n", [WEATHER])
    assert parsed.text == "Sure."
    assert json.loads(parsed.tool_calls[0]["function"]["arguments"]) == {"city": "Rome", "days": 3}  # typed by the schema


def test_auto_picks_what_the_tokenizer_supports(tokenizer):
    assert build_tool_call_parser("auto", tokenizer) is None  # the tiny model's template knows no tools
    tokenizer.chat_template += "{# tools render as <tool_call> blocks #}"
    assert type(build_tool_call_parser("auto", tokenizer)).__name__ == "HermesParser"
    with pytest.raises(ToolCallParserError, match="unknown tool-call parser 'llama'; known parsers: hermes, response"):
        build_tool_call_parser("llama", tokenizer)
    with pytest.raises(ToolCallParserError, match="defines none"):
        build_tool_call_parser("response_template", tokenizer)
    with pytest.raises(ToolCallParserError, match="takes no options") as caught:
        build_tool_call_parser("hermes", tokenizer, {"strict": True})
    assert caught.value.field == "trainer.tool_call_parser_options"


class CallingSampler:
    """Answers every other sample with a weather call in Hermes markup, the rest with plain text,
    through the real tokenizer (the loop decodes the ids and parses them)."""

    def __init__(self, tokenizer, options):
        self.tokenizer = tokenizer
        self.parsed_itself = options.get("parsed_itself", False)

    def sample(self, model, prompts, params):
        answers = [CALL if index % 2 == 0 else "I cannot tell." for index in range(len(prompts) * params.num_generations)]
        eos = self.tokenizer.eos_token_id
        encoded = [self.tokenizer(text, add_special_tokens=False)["input_ids"] + [eos] for text in answers]
        width = max(map(len, encoded))
        ids = torch.tensor([tokens + [self.tokenizer.pad_token_id] * (width - len(tokens)) for tokens in encoded])
        mask, _ = completion_mask_for(ids, [eos])
        prompt_ids, prompt_mask = left_pad([p for p in prompts for _ in range(params.num_generations)], 0)
        calls = [[{"id": "x", "type": "function", "function": {"name": "engine", "arguments": "{}"}}]] * len(answers)
        return RolloutBatch(prompt_ids, prompt_mask, ids, mask, None, answers, [False] * len(answers),
                            params.num_generations, tool_calls=calls if self.parsed_itself else None)


class CallingPlugin:
    @hookimpl
    def rft_register_samplers(self, register):
        register("calling", CallingSampler)


GRADER = {"type": "string_check", "name": "called", "input": "{{ sample.output_tools[0].function.name }}",
          "reference": "get_weather", "operation": "eq"}


def fit(tiny_model_path, **settings):
    rows = [{"messages": [{"role": "user", "content": f"weather in {city}?"}], "tools": [WEATHER]}
            for city in ("Paris", "Rome")]
    values = dict(model=str(tiny_model_path), grader=GRADER, sampler="calling", tool_call_parser="hermes",
                  batch_size=2, num_generations=2, eval_samples=2, learning_rate=1e-3)
    values.update(settings)
    module = RFTModule(ResolvedSettings(**values), rows, rows)
    trainer = lightning.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, val_check_interval=1, check_val_every_n_epoch=None, num_sanity_val_steps=0,
    )
    trainer.fit(module)
    return module, trainer


def test_a_tool_calling_job_grades_the_calls(fresh_plugins, tiny_model_path):
    fresh_plugins.get_plugin_manager().register(CallingPlugin(), name="calling")
    module, trainer = fit(tiny_model_path)
    # half the samples called get_weather (reward 1); the others have no call (the grader's
    # template points at nothing: invalid_variable_error, reward 0)
    assert trainer.callback_metrics["train_reward_mean"].item() == pytest.approx(0.5)
    assert trainer.callback_metrics["valid_reward_mean"].item() == pytest.approx(0.5)
    records = module.validation_records
    called = [record for record in records if record["tool_calls"]]
    assert len(called) == 2 and all(record["reward"] == 1.0 and record["completion"] == "" for record in called)
    assert json.loads(called[0]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris", "days": 2}
    assert {record["completion"] for record in records if not record["tool_calls"]} == {"I cannot tell."}
    table = samples_markdown(records)
    assert '→ get_weather({"city": "Paris", "days": 2})' in table


def test_calls_a_sampler_parsed_itself_are_kept(fresh_plugins, tiny_model_path):
    fresh_plugins.get_plugin_manager().register(CallingPlugin(), name="calling")
    module, trainer = fit(tiny_model_path, sampler_options={"parsed_itself": True})
    assert all(record["tool_calls"][0]["function"]["name"] == "engine" for record in module.validation_records)
    assert trainer.callback_metrics["valid_reward_mean"].item() == 0.0
