"""score_model / label_model against a real OpenAI-compatible HTTP stub, and a tiny local HF judge."""

from __future__ import annotations

import asyncio
import time

import pytest
from judge_stub import Reply, completion, judge_stub, verdict  # noqa: F401  (judge_stub is a fixture)

from rft_plugins import GraderConfigError, build_grader, hookimpl, run_grader, validate_grader
from rft_plugins.graders.types import Sample
from rft_plugins.judges.base import JudgeReply
from rft_plugins.judges.transformers_backend import loaded_models
from rft_plugins.plugins import get_plugin_manager

ITEM = {"reference": "Paris"}
INPUT = [
    {"role": "system", "content": "You grade answers about geography."},
    {"role": "user", "content": "Reference: {{ item.reference }}\nAnswer: {{ sample.output_text }}"},
]


def score_config(stub, judge: dict | None = None, **fields) -> dict:
    """A score_model grader aimed at the stub, with short timeouts and backoff."""
    options = {"base_url": stub.base_url, "timeout": 1.0, "max_retries": 0, "backoff": 0.01}
    return {"type": "score_model", "name": "judge", "model": "gpt-4o-mini", "input": INPUT,
            "judge": {**options, **(judge or {})}, **fields}


def label_config(stub, **fields) -> dict:
    config = score_config(stub, **fields)
    config.update(type="label_model", labels=["correct", "partly", "wrong"], passing_labels=["correct", "partly"])
    return config


def raised(result: dict) -> dict:
    """The flags a run response raised, with their details."""
    return {flag: value for flag, value in result["metadata"]["errors"].items() if value}


# --- good answers, and what was sent -------------------------------------------------------------


def test_score_model_good_answer_reports_reward_usage_and_request(judge_stub, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    judge_stub.push(verdict(0.75))
    config = score_config(judge_stub, sampling_params={"temperature": 0, "seed": 7, "max_completions_tokens": 64})

    result = run_grader(config, "It is Paris.", ITEM)

    assert result["reward"] == 0.75
    assert raised(result) == {}
    assert result["metadata"]["scores"]["steps"] == [{"description": "compared", "conclusion": "ok"}]
    usage = {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    assert result["metadata"]["token_usage"] == usage
    assert result["model_grader_token_usage_per_model"] == {"gpt-4o-mini": usage}
    assert result["metadata"]["sampled_model_name"] == "stub-judge-1"

    (request,) = judge_stub.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    body = request.json
    assert body["model"] == "gpt-4o-mini"
    assert (body["temperature"], body["seed"], body["max_completion_tokens"]) == (0, 7, 64)
    system, user = body["messages"]
    assert system == {"role": "system", "content": "You grade answers about geography."}  # as written: no instruction
    assert user == {"role": "user", "content": "Reference: Paris\nAnswer: It is Paris."}
    schema = body["response_format"]["json_schema"]
    assert schema["name"] == "score_model_result" and schema["strict"] is True
    assert schema["schema"]["properties"]["result"] == {"type": "number"}


def test_default_backend_is_openai_compatible_at_openai_base_url(judge_stub, monkeypatch):
    """OpenAI's grader JSON, unchanged (no judge section), goes to $OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_BASE_URL", judge_stub.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    judge_stub.push(verdict(0.5))
    config = {"type": "score_model", "name": "plain", "model": "gpt-4o-mini", "input": INPUT, "range": [0, 1]}

    assert run_grader(config, "Paris", ITEM)["reward"] == 0.5
    assert "authorization" not in judge_stub.requests[0].headers  # a keyless local server is fine


def test_structured_output_modes_and_instruction_can_be_turned_on(judge_stub):
    judge_stub.default = verdict(1)
    run_grader(score_config(judge_stub, {"response_format": "json_object"}), "x", ITEM)
    run_grader(score_config(judge_stub, {"response_format": "none", "format_instruction": True}), "x", ITEM)
    first, second = (request.json for request in judge_stub.requests)
    assert first["response_format"] == {"type": "json_object"}
    assert first["messages"][0]["content"] == "You grade answers about geography."
    assert "response_format" not in second
    instructed = second["messages"][0]["content"]
    assert instructed.startswith("You grade answers about geography.\n\nReply with only a JSON object")
    assert "a number from 0 to 1" in instructed


def test_prose_wrapped_json_and_numeric_strings_parse(judge_stub):
    judge_stub.push(
        completion('Let me think.\n```json\n{"steps": [], "result": 0.4}\n```'),
        completion('{"result": "0.9"}'),
    )
    config = score_config(judge_stub)
    assert run_grader(config, "x", ITEM)["reward"] == 0.4
    assert run_grader(config, "x", ITEM)["reward"] == 0.9


# --- out of range, unparseable, refusals -------------------------------------------------------


def test_out_of_range_scores_are_clamped_not_rescaled(judge_stub):
    judge_stub.push(verdict(7), verdict(-3), verdict(7), verdict(12))
    unit = score_config(judge_stub)
    ten = score_config(judge_stub, range=[0, 10])

    high = run_grader(unit, "x", ITEM)
    assert high["reward"] == 1.0 and high["metadata"]["scores"]["clamped"] is True
    assert high["metadata"]["scores"]["result"] == 7
    assert run_grader(unit, "x", ITEM)["reward"] == 0.0
    assert run_grader(ten, "x", ITEM)["reward"] == 7.0
    assert run_grader(ten, "x", ITEM)["reward"] == 10.0
    assert judge_stub.requests[2].json["messages"][0]["content"] == "You grade answers about geography."


@pytest.mark.parametrize(
    "content",
    ["I think the answer is fine.", '{"steps": []}', '{"result": "high"}', '{"result": true}', '{"result": NaN}'],
)
def test_unparseable_output_flags_parse_error_but_keeps_token_usage(judge_stub, content):
    judge_stub.push(completion(content))
    result = run_grader(score_config(judge_stub), "x", ITEM)
    assert result["reward"] == 0.0
    assert set(raised(result)) == {"model_grader_parse_error", "model_grader_parse_error_details"}
    assert result["metadata"]["token_usage"]["total_tokens"] == 42  # the judge answered: it cost tokens


def test_truncated_reply_says_so(judge_stub):
    judge_stub.push(completion('{"steps": [{"description": "the answ', finish_reason="length"))
    result = run_grader(score_config(judge_stub), "x", ITEM)
    assert "cut off at the token limit" in result["metadata"]["errors"]["model_grader_parse_error_details"]


def test_refusals_are_flagged_apart_from_parse_errors(judge_stub):
    judge_stub.push(completion(None, refusal="I can't help with that."), completion("", finish_reason="content_filter"))
    config = score_config(judge_stub)

    refused = run_grader(config, "x", ITEM)
    assert refused["reward"] == 0.0
    assert raised(refused) == {
        "model_grader_refusal_error": True,
        "model_grader_refusal_error_details": "I can't help with that.",
    }
    filtered = raised(run_grader(config, "x", ITEM))
    assert filtered["model_grader_refusal_error"] is True
    assert "content_filter" in filtered["model_grader_refusal_error_details"]
    assert "model_grader_parse_error" not in filtered


# --- server errors, retries, timeouts ------------------------------------------------------------


def test_500s_then_success_is_retried(judge_stub):
    judge_stub.push(Reply(500, {"error": {"message": "boom"}}), Reply(503, "busy"), verdict(0.6))
    result = run_grader(score_config(judge_stub, {"max_retries": 2}), "x", ITEM)
    assert result["reward"] == 0.6 and raised(result) == {}
    assert len(judge_stub.requests) == 3


def test_429_honours_retry_after(judge_stub):
    judge_stub.push(Reply(429, {"error": "slow down"}, headers={"Retry-After": "0.3"}), verdict(0.2))
    started = time.perf_counter()
    result = run_grader(score_config(judge_stub, {"max_retries": 1}), "x", ITEM)
    assert result["reward"] == 0.2
    assert time.perf_counter() - started >= 0.3


def test_persistent_500s_flag_server_error_with_details(judge_stub):
    judge_stub.default = Reply(500, {"error": {"message": "model overloaded"}})
    result = run_grader(score_config(judge_stub, {"max_retries": 2}), "x", ITEM)
    flags = raised(result)
    assert result["reward"] == 0.0 and flags["model_grader_server_error"] is True
    details = flags["model_grader_server_error_details"]
    assert "HTTP 500" in details and "model overloaded" in details and "3 attempts" in details
    assert result["metadata"]["token_usage"] is None
    assert len(judge_stub.requests) == 3


def test_client_errors_are_not_retried(judge_stub):
    judge_stub.default = Reply(400, {"error": {"message": "response_format json_schema is not supported"}})
    result = run_grader(score_config(judge_stub, {"max_retries": 3}), "x", ITEM)
    assert "json_schema is not supported" in raised(result)["model_grader_server_error_details"]
    assert len(judge_stub.requests) == 1


def test_malformed_200_is_a_server_error(judge_stub):
    judge_stub.push(Reply(200, "<html>gateway</html>"))
    assert "not a chat completion" in raised(run_grader(score_config(judge_stub), "x", ITEM))[
        "model_grader_server_error_details"
    ]


def test_hang_times_out_then_retry_succeeds_or_flags(judge_stub):
    config = score_config(judge_stub, {"timeout": 0.5, "max_retries": 1})
    judge_stub.push(Reply(hang=True), verdict(0.8))
    assert run_grader(config, "x", ITEM)["reward"] == 0.8

    judge_stub.push(Reply(hang=True), Reply(hang=True))
    started = time.perf_counter()
    result = run_grader(config, "x", ITEM)
    elapsed = time.perf_counter() - started
    assert "no response within 0.5 s" in raised(result)["model_grader_server_error_details"]
    assert 1.0 <= elapsed < 3.0


# --- label_model --------------------------------------------------------------------------------


def test_label_model_passing_failing_unknown_and_bare_labels(judge_stub):
    judge_stub.push(verdict("partly"), verdict("wrong"), verdict("maybe"), completion('"correct"'))
    config = label_config(judge_stub)

    passing = run_grader(config, "x", ITEM)
    assert passing["reward"] == 1.0 and passing["metadata"]["scores"]["label"] == "partly"
    assert run_grader(config, "x", ITEM)["reward"] == 0.0
    unknown = raised(run_grader(config, "x", ITEM))
    assert "'maybe', which is not one of the labels" in unknown["model_grader_parse_error_details"]
    assert run_grader(config, "x", ITEM)["reward"] == 1.0

    body = judge_stub.requests[0].json
    assert body["response_format"]["json_schema"]["name"] == "label_model_result"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["result"] == {
        "type": "string", "enum": ["correct", "partly", "wrong"]}
    assert body["messages"][0]["content"] == "You grade answers about geography."  # the labels go in the schema


def test_content_parts_and_developer_messages_render(judge_stub):
    config = score_config(judge_stub)
    config["input"] = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Rubric for {{ item.reference }}"}]},
        {"type": "message", "role": "user", "content": {"type": "input_text", "text": "{{ sample.output_text }}"}},
    ]
    assert run_grader(config, "Lyon", ITEM)["reward"] == 1.0
    developer, user = judge_stub.requests[0].json["messages"]
    assert developer["role"] == "developer"
    assert developer["content"] == [{"type": "text", "text": "Rubric for Paris"}]
    assert user == {"role": "user", "content": [{"type": "text", "text": "Lyon"}]}


def test_unresolvable_variable_flags_without_calling_the_judge(judge_stub):
    result = run_grader(score_config(judge_stub), "x", {"other": 1})
    assert raised(result)["invalid_variable_error"] is True
    assert judge_stub.requests == []


# --- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"range": [1, 0]}, "range"),
        ({"input": []}, "input"),
        ({"input": [{"content": "hi"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": "{{ item.x "}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": "{{ answer }}"}]}, "input[0].content"),
        ({"sampling_params": {"max_tokens": 5}}, "sampling_params.max_tokens"),
        ({"sampling_params": {"temperature": 3}}, "sampling_params.temperature"),
        ({"judge": {"timeot": 1}}, "judge.timeot"),
        ({"judge": {"backend": "nope"}}, "judge.backend"),
        ({"judge": {"max_concurrency": 0}}, "judge.max_concurrency"),
        ({"judge": {"headers": {"api-key": "${RFT_TEST_UNSET_KEY}"}}}, "judge.headers.api-key"),
        ({"judge": {"format_instruction": "yes"}}, "judge.format_instruction"),
        ({"model": "hf:/no/such/model"}, "model"),
        ({"model": "hf:/no/such/model", "judge": {"backend": "openai"}}, "judge.backend"),
        ({"labels": ["a"]}, "labels"),  # score_model has no labels
    ],
)
def test_bad_score_model_configs_name_the_field(change, field, monkeypatch):
    monkeypatch.delenv("RFT_TEST_UNSET_KEY", raising=False)
    config = {"type": "score_model", "name": "j", "model": "gpt-4o-mini", "input": INPUT, **change}
    with pytest.raises(GraderConfigError) as caught:
        validate_grader(config)
    assert caught.value.field == field


def test_label_model_config_checks(judge_stub):
    base = label_config(judge_stub)
    assert validate_grader(base) is base
    with pytest.raises(GraderConfigError) as caught:
        validate_grader({**base, "passing_labels": ["correct", "great"]})
    assert caught.value.field == "passing_labels[1]" and "'great' is not one of the labels" in str(caught.value)
    with pytest.raises(GraderConfigError) as caught:
        validate_grader({**base, "labels": ["a", "a"], "passing_labels": ["a"]})
    assert caught.value.field == "labels"
    with pytest.raises(GraderConfigError) as caught:
        validate_grader({key: value for key, value in base.items() if key != "passing_labels"})
    assert caught.value.field == "passing_labels"


def test_header_values_come_from_environment(judge_stub, monkeypatch):
    monkeypatch.setenv("RFT_TEST_AZURE_KEY", "azure-secret")
    config = score_config(judge_stub, {"headers": {"api-key": "${RFT_TEST_AZURE_KEY}"}, "query": {"api-version": "2025-04-01"}})
    run_grader(config, "x", ITEM)
    request = judge_stub.requests[0]
    assert request.headers["api-key"] == "azure-secret"
    assert request.path == "/v1/chat/completions?api-version=2025-04-01"


# --- concurrency, event loops, multi ------------------------------------------------------------


@pytest.mark.parametrize("limit", [4, 16])
def test_judge_calls_run_concurrently_up_to_the_limit(judge_stub, limit):
    judge_stub.default = verdict(0.5, delay=0.4)
    calls = 16
    with build_grader(score_config(judge_stub, {"max_concurrency": limit})) as grader:
        started = time.perf_counter()
        grades = grader.grade_batch(["x"] * calls, [ITEM] * calls)
        elapsed = time.perf_counter() - started
    assert [grade.reward for grade in grades] == [0.5] * calls
    assert judge_stub.max_in_flight == limit  # the limit is reached, never passed
    assert elapsed < 0.4 * calls / limit + 1.5  # one at a time would take 0.4 * 16 = 6.4 s


def test_grader_works_across_event_loops_and_leaves_no_client_open(judge_stub):
    judge_stub.default = verdict(0.3)
    with build_grader(score_config(judge_stub)) as grader:
        sessions = grader.impl.backend.sessions
        assert grader.grade("a", ITEM).reward == 0.3  # asyncio.run inside
        assert grader.grade("b", ITEM).reward == 0.3  # a second, fresh loop

        async def inside_one_loop():
            return await asyncio.gather(*(grader.agrade(text, ITEM) for text in "cdef"))

        assert [grade.reward for grade in asyncio.run(inside_one_loop())] == [0.3] * 4
        assert sessions.open_sessions == 0


def test_runner_timeout_cancels_judge_calls_cleanly(judge_stub):
    """LoadedGrader's own timeout cancels hung judge calls; their client is still closed."""
    judge_stub.default = Reply(hang=True)
    with build_grader(score_config(judge_stub, {"timeout": 30})) as grader:
        grades = grader.grade_batch(["a", "b", "c"], [ITEM] * 3, timeout=0.3)
        assert all(grade.errors.get("unresponsive_reward_error") for grade in grades)
        assert grader.impl.backend.sessions.open_sessions == 0


def test_multi_sums_token_usage_per_model(judge_stub):
    judge_stub.default = verdict(1.0)
    accuracy, style = score_config(judge_stub), label_config(judge_stub)
    judge_stub.push(verdict(0.5), verdict("correct"))
    multi = {"type": "multi", "name": "both", "graders": {"accuracy": accuracy, "style": style},
             "calculate_output": "accuracy + style"}
    result = run_grader(multi, "x", ITEM)
    assert result["reward"] == 1.5
    assert result["model_grader_token_usage_per_model"] == {
        "gpt-4o-mini": {"prompt_tokens": 60, "completion_tokens": 24, "total_tokens": 84}}


def test_third_party_backend_is_selected_by_name():
    """A judge backend plugin, registered through the public hook, answers a score_model."""
    seen = []

    class CannedBackend:
        def __init__(self, model, options):
            self.verdict = options["verdict"]

        async def complete(self, request):
            seen.append(request)
            return JudgeReply(text=self.verdict, usage={"total_tokens": 5}, model="canned")

    class Plugin:
        @hookimpl
        def rft_register_judge_backends(self, register):
            register("canned", CannedBackend)

    get_plugin_manager().register(Plugin(), name="canned-judge")
    config = {"type": "score_model", "name": "j", "model": "anything", "input": INPUT,
              "judge": {"backend": "canned", "verdict": '{"steps": [], "result": 0.25}'}}
    result = run_grader(config, Sample.from_text("Paris"), ITEM)
    assert result["reward"] == 0.25
    assert result["metadata"]["sampled_model_name"] == "canned"
    assert seen[0].messages[-1]["content"].endswith("Answer: Paris")


# --- the local Hugging Face backend -------------------------------------------------------------


def local_config(path, **sampling) -> dict:
    return {"type": "score_model", "name": "local", "model": f"hf:{path}", "input": INPUT,
            "sampling_params": {"max_completions_tokens": 6, **sampling}}


def test_local_random_model_flags_parse_error_and_reports_usage(tiny_model_path):
    result = run_grader(local_config(tiny_model_path, temperature=0), "Paris", ITEM)
    assert result["reward"] == 0.0
    assert raised(result)["model_grader_parse_error"] is True
    usage = result["metadata"]["token_usage"]
    assert usage["completion_tokens"] <= 6 and usage["prompt_tokens"] > 80
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert result["metadata"]["sampled_model_name"] == str(tiny_model_path.resolve())
    assert result["model_grader_token_usage_per_model"] == {f"hf:{tiny_model_path}": usage}


def test_local_backend_plumbing(tiny_model_path):
    """Chat template applied, sampling params honoured, one model shared by graders."""
    greedy = build_grader(local_config(tiny_model_path, temperature=0))
    seeded = build_grader(local_config(tiny_model_path, temperature=1.0, top_p=0.9, seed=3))
    try:
        backend = greedy.impl.backend
        assert backend.shared is seeded.impl.backend.shared  # one model, two graders

        request = greedy.impl._request(Sample.from_text("Lyon"), ITEM)
        backend.shared.load()
        prompt = backend.render_prompt(request.messages, request.sampling)
        assert prompt.startswith("<|im_start|>system\nYou grade answers about geography.<|im_end|>\n")
        assert "<|im_start|>user\nReference: Paris\nAnswer: Lyon<|im_end|>\n" in prompt
        assert prompt.endswith("<|im_start|>assistant\n")

        def reply(grader, sample="Lyon"):
            return asyncio.run(grader.impl.backend.complete(grader.impl._request(Sample.from_text(sample), ITEM)))

        first, again = reply(greedy), reply(greedy)
        assert first.text == again.text  # temperature 0: greedy, deterministic
        assert first.usage["completion_tokens"] <= 6
        assert first.usage["prompt_tokens"] == len(backend.shared.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        assert reply(seeded).text == reply(seeded).text  # same seed, same sample
        assert loaded_models() == [str(tiny_model_path.resolve())]
    finally:
        greedy.close()
        seeded.close()
    assert loaded_models() == []  # the last grader closed releases the model


def test_local_backend_sampling_varies_without_a_seed(tiny_model_path):
    unseeded = build_grader(local_config(tiny_model_path, temperature=1.0, max_completions_tokens=12))
    try:
        texts = {unseeded.grade("x", ITEM).errors["model_grader_parse_error_details"] for _ in range(3)}
    finally:
        unseeded.close()
    assert len(texts) > 1  # sampling really samples


@pytest.fixture(scope="module")
def chatty_model_path(tmp_path_factory):
    """A tiny model (seed 1) whose greedy replies differ from prompt to prompt, one of them
    ending at once with the end-of-turn token: what batching must keep apart."""
    from rft_plugins.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("chatty-model"), seed=1)


def test_local_backend_batches_queued_calls_without_changing_replies(chatty_model_path):
    texts = ["Paris", "Lyon is the answer", "x", "I think it is Marseille", "Nice!", "Toulouse", "Bordeaux", "?"]
    items = [{}] * len(texts)

    def config(**judge) -> dict:
        return {"type": "score_model", "name": "local", "model": f"hf:{chatty_model_path}",
                "input": [{"role": "user", "content": "{{ sample.output_text }}"}],
                "sampling_params": {"max_completions_tokens": 12, "temperature": 0},
                "judge": {"format_instruction": False, **judge}}

    def replies(grades) -> list:
        return [(grade.errors["model_grader_parse_error_details"], grade.token_usage) for grade in grades]

    with build_grader(config()) as grader, build_grader(config(max_batch_size=3)) as small:
        one_by_one = replies([grader.grade(text, {}) for text in texts])
        shared = grader.impl.backend.shared
        batch_sizes = []
        generate = shared.model.generate

        def counting_generate(**inputs):
            batch_sizes.append(inputs["input_ids"].shape[0])
            return generate(**inputs)

        shared.model.generate = counting_generate
        assert replies(grader.grade_batch(texts, items)) == one_by_one  # padding changes nothing
        assert len(batch_sizes) < len(texts) and max(batch_sizes) > 1
        stopped = [usage["completion_tokens"] for _, usage in one_by_one if usage["completion_tokens"] < 12]
        assert stopped  # one reply ended early while the others in its batch went on

        batch_sizes.clear()
        assert replies(small.grade_batch(texts, items)) == one_by_one
        assert max(batch_sizes) <= 3

        batch_sizes.clear()
        seeded = config()
        seeded["sampling_params"] = {"max_completions_tokens": 12, "temperature": 1.0, "seed": 5}
        with build_grader(seeded) as sampler:
            grades = sampler.grade_batch(["Paris"] * 4, [{}] * 4)
        assert batch_sizes == [1, 1, 1, 1]  # a seed reproduces its reply only alone
        assert len({detail for detail, _ in replies(grades)}) == 1
