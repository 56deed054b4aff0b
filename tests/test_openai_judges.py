"""Model graders built from OpenAI's published types: content parts, sampling params and usage.

Sources: openai-python's ``types/graders/grader_inputs.py`` and ``score_model_grader.py`` (content
parts of a grader's ``input``, ``SamplingParams``), ``types/shared/reasoning_effort.py``
(``ReasoningEffort``), and the API reference's ``GraderRunResponse.metadata.token_usage``
(``prompt_tokens``, ``total_tokens``, ``cached_tokens``, ``completion_tokens``). Judges are a real
HTTP server on 127.0.0.1 (``judge_stub``) or the tiny local model.
"""

from __future__ import annotations

import pytest
from judge_stub import completion, judge_stub, verdict  # noqa: F401  (judge_stub is a fixture)

from rft_plugins import GraderConfigError, run_grader, validate_grader

ITEM = {"photo": "https://example.com/cat.png", "clip": "UklGRg==", "answer": "cat"}
#: SDK, graders/grader_inputs.py: every kind of content item, in one user message
PARTS = [
    "Grade the answer.",
    {"type": "input_text", "text": "Reference: {{ item.answer }}"},
    {"type": "output_text", "text": "Answer: {{ sample.output_text }}"},
    {"type": "input_image", "image_url": "{{ item.photo }}", "detail": "low"},
    {"type": "input_image", "image_url": None, "file_id": "file-abc123"},
    {"type": "input_audio", "input_audio": {"data": "{{ item.clip }}", "format": "wav"}},
]


def judged(stub_or_path, content, **fields) -> dict:
    """A score_model grader with ``content`` as its one user message."""
    judge = {"base_url": stub_or_path.base_url, "max_retries": 0} if hasattr(stub_or_path, "base_url") else None
    model = "gpt-4o-2024-08-06" if judge else f"hf:{stub_or_path}"
    config = {"type": "score_model", "name": "judge", "model": model,
              "input": [{"role": "user", "type": "message", "content": content}], **fields}
    return {**config, "judge": judge} if judge else config


def test_every_content_part_of_the_sdk_validates_and_reaches_the_server(judge_stub):
    response = run_grader(judged(judge_stub, PARTS), "a cat", ITEM)
    assert response["reward"] == 1.0
    (message,) = judge_stub.requests[0].json["messages"]
    assert message["content"] == [
        {"type": "text", "text": "Grade the answer."},
        {"type": "text", "text": "Reference: cat"},
        {"type": "text", "text": "Answer: a cat"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "file", "file": {"file_id": "file-abc123"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]


@pytest.mark.parametrize(
    ("part", "field", "message"),
    [
        ({"type": "input_image", "image_url": None, "file_id": None}, "input[0].content[0]",
         "an input_image needs an image_url or a file_id"),
        ({"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}, "input[0].content[0].input_audio.format",
         "'mp3' or 'wav'"),
        ({"type": "input_video", "video_url": "x"}, "input[0].content[0]", "'input_video'"),
    ],
    ids=["image-without-location", "audio-format", "unknown-part"],
)
def test_a_bad_part_is_named_for_what_is_wrong_with_it(judge_stub, part, field, message):
    with pytest.raises(GraderConfigError) as caught:
        validate_grader(judged(judge_stub, [part]))
    assert caught.value.field == field and message in caught.value.message
    assert "valid string" not in caught.value.message


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_a_local_judge_flags_a_part_it_cannot_read(tiny_model_path, kind):
    part = PARTS[3] if kind == "image" else PARTS[5]
    response = run_grader(judged(tiny_model_path, ["Grade it.", part]), "a cat", ITEM)
    assert response["reward"] == 0.0
    details = response["metadata"]["errors"]["model_grader_server_error_details"]
    assert f"input_{kind}" in details and "reads text only" in details and "judge.backend: openai" in details


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh"])
def test_every_reasoning_effort_of_the_sdk_reaches_the_judge(judge_stub, effort):
    config = judged(judge_stub, "Grade {{ sample.output_text }}", sampling_params={"reasoning_effort": effort})
    assert run_grader(config, "x", ITEM)["reward"] == 1.0
    assert judge_stub.requests[0].json["reasoning_effort"] == effort


def test_zero_token_counts_are_counts(judge_stub):
    usage = {"prompt_tokens": 50, "completion_tokens": 0, "total_tokens": 50,
             "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    judge_stub.push(completion('{"steps": [], "result": 0.5}', usage=usage))
    response = run_grader(judged(judge_stub, "Grade {{ sample.output_text }}"), "x", ITEM)
    assert response["metadata"]["token_usage"] == {"prompt_tokens": 50, "completion_tokens": 0, "total_tokens": 50,
                                                   "cached_tokens": 0, "reasoning_tokens": 0}
    assert response["model_grader_token_usage_per_model"]["gpt-4o-2024-08-06"]["cached_tokens"] == 0


def test_a_bare_label_and_a_bare_number_are_verdicts(judge_stub):
    judge_stub.push(completion("partly."), completion(" 0.4 "))
    label = {"type": "label_model", "name": "tone", "model": "gpt-4o-mini", "labels": ["right", "partly", "wrong"],
             "passing_labels": ["right"], "input": [{"role": "user", "content": "{{ sample.output_text }}"}],
             "judge": {"base_url": judge_stub.base_url, "max_retries": 0}}
    graded = run_grader(label, "x")
    assert (graded["reward"], graded["passed"], graded["metadata"]["scores"]["label"]) == (0.0, False, "partly")
    number = run_grader(judged(judge_stub, "{{ sample.output_text }}", pass_threshold=0.5), "x", ITEM)
    assert (number["reward"], number["passed"]) == (0.4, False)


def test_a_judge_that_never_answers_does_not_pass(judge_stub):
    judge_stub.default = verdict(1.0)
    judge_stub.push(completion(None, refusal="I cannot grade this."))
    config = judged(judge_stub, "{{ sample.output_text }}", pass_threshold=0.5)
    refused = run_grader(config, "x", ITEM)
    assert refused["metadata"]["errors"]["model_grader_refusal_error"] is True and refused["passed"] is False
    assert run_grader(config, "x", ITEM)["passed"] is True
