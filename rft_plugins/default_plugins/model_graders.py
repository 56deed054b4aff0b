"""``score_model`` and ``label_model``: a judge model reads the sample and gives its verdict.

OpenAI's grader JSON is accepted unchanged (``model``, ``input``, ``range``, ``sampling_params``,
``pass_threshold``; ``labels``, ``passing_labels``). One extension field, ``judge``, picks and
tunes the backend (see docs/model_graders.md). As OpenAI does, the judge is asked for
``{"steps": [{"description", "conclusion"}], "result": ...}`` through structured outputs
(``response_format``), and the grader's prompt is sent as written: an added instruction could
contradict it (the RFT guide's prompt asks for a bare number). ``judge.format_instruction: true``
adds one for servers without structured outputs. A reply that is only a number (score_model) or
a label (label_model) is accepted too.

score_model's reward is ``result`` clamped to ``range``, not rescaled (OpenAI: "clamped to
range"): with ``range: [0, 10]`` rewards run 0-10; divide in a ``multi`` formula to get [0, 1].
A reply that does not parse, a refusal, and a server that never answered raise
``model_grader_parse_error``, ``model_grader_refusal_error`` and ``model_grader_server_error``;
each costs reward 0, and token usage is reported whenever the judge answered.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic

from ..contract import GraderFactory, Register
from ..errors import GraderConfigError, GradingError
from ..graders.config import GraderConfig, parse_config
from ..graders.types import Grade, Sample
from ..graders.verdicts import with_verdict
from ..judges.base import LOCAL_MODEL_PREFIX, JudgeReply, JudgeRequest, build_backend
from ..judges.messages import InputMessage, JudgeMessages, add_instruction
from ..judges.parsing import JudgeParseError, excerpt, parse_label, parse_score
from ..project import hookimpl

STEPS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"description": {"type": "string"}, "conclusion": {"type": "string"}},
        "required": ["description", "conclusion"],
        "additionalProperties": False,
    },
}
STEPS_EXAMPLE = '"steps": [{"description": "...", "conclusion": "..."}]'


class SamplingParams(pydantic.BaseModel):
    """OpenAI's ``sampling_params`` for model graders."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float | None = pydantic.Field(None, ge=0, le=2)
    top_p: float | None = pydantic.Field(None, gt=0, le=1)
    seed: int | None = None
    max_completions_tokens: int | None = pydantic.Field(None, ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None


class ModelGraderConfig(GraderConfig):
    model: str = pydantic.Field(min_length=1)
    input: list[InputMessage] = pydantic.Field(min_length=1)
    sampling_params: SamplingParams | None = None
    judge: dict[str, Any] | None = None


class ScoreModelConfig(ModelGraderConfig):
    range: tuple[float, float] = (0.0, 1.0)
    pass_threshold: float | None = None

    @pydantic.field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"the low end must be below the high end, got {list(value)}")
        return value


class LabelModelConfig(ModelGraderConfig):
    labels: list[str] = pydantic.Field(min_length=1)
    passing_labels: list[str] = pydantic.Field(min_length=1)


class ModelGrader:
    """What both model graders share: render, ask the judge, account for tokens, flag failures."""

    schema_name = "result"

    def __init__(self, spec: ModelGraderConfig):
        """Subclasses set what ``result_schema`` and ``instruction`` read before calling this."""
        judge = dict(spec.judge or {})
        format_instruction = judge.pop("format_instruction", False)
        if not isinstance(format_instruction, bool):
            raise GraderConfigError("judge.format_instruction", "must be true or false")
        self.instruction_text = self.instruction() if format_instruction else None
        self.model = spec.model
        self.messages = JudgeMessages(spec.input)
        self.sampling = spec.sampling_params.model_dump(exclude_none=True) if spec.sampling_params else {}
        self.schema = {
            "type": "object",
            "properties": {"steps": STEPS_SCHEMA, "result": self.result_schema()},
            "required": ["steps", "result"],
            "additionalProperties": False,
        }
        self.backend_name, self.backend = build_backend(spec.model, judge)

    def result_schema(self) -> dict[str, Any]:
        """The JSON schema of the verdict's ``result`` (a number, or one of the labels)."""
        raise NotImplementedError

    def instruction(self) -> str:
        """The format instruction added to the prompt, for judges without structured outputs."""
        raise NotImplementedError

    def verdict(self, text: str) -> Grade:
        """The grade the reply's text gives; ``JudgeParseError`` if it gives none."""
        raise NotImplementedError

    def _request(self, sample: Sample, item: dict[str, Any]) -> JudgeRequest:
        messages = self.messages.render(sample.to_dict(), item)
        if self.instruction_text is not None:
            messages = add_instruction(messages, self.instruction_text)
        model = self.model.removeprefix(LOCAL_MODEL_PREFIX)
        return JudgeRequest(model, messages, self.schema_name, self.schema, dict(self.sampling))

    def _account(self, grade: Grade, reply: JudgeReply) -> Grade:
        grade.token_usage = dict(reply.usage) or None
        if reply.usage:
            grade.metadata["token_usage_per_model"] = {self.model: dict(reply.usage)}
        grade.metadata["sampled_model_name"] = reply.model or self.model
        grade.metadata["judge_backend"] = self.backend_name
        return grade

    def judged(self, grade: Grade) -> Grade:
        """``grade`` with its pass verdict, if this grader gives one."""
        return grade

    async def agrade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        """Ask the judge; a refusal, an unparseable reply or no reply flags the sample."""
        try:
            request = self._request(sample, item)  # an unresolvable variable flags the sample here
            reply = await self.backend.complete(request)  # model_grader_server_error after retries
        except GradingError as error:
            return self.judged(Grade.failed(error.flag, error.details))
        return self.judged(self._account(self._read(reply), reply))

    def _read(self, reply: JudgeReply) -> Grade:
        """The grade the judge's reply gives: its verdict, or the flag saying why there is none."""
        if reply.refusal:
            grade = Grade.failed("model_grader_refusal_error", excerpt(reply.refusal, 300))
        elif reply.text is None:
            grade = Grade.failed("model_grader_parse_error", "the judge's reply has no content")
        else:
            try:
                grade = self.verdict(reply.text)
            except JudgeParseError as error:
                grade = Grade.failed("model_grader_parse_error", str(error))
            if reply.finish_reason == "length" and grade.errors.get("model_grader_parse_error"):
                grade.errors["model_grader_parse_error_details"] += " (the reply was cut off at the token limit)"
        return grade

    def close(self) -> None:
        """Release the backend (a local model is freed when its last grader closes)."""
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()


class ScoreModelGrader(ModelGrader):
    """The judge gives a number; the reward is that number clamped to ``range``."""

    schema_name = "score_model_result"

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(ScoreModelConfig, config)
        self.low, self.high = spec.range
        self.pass_threshold = spec.pass_threshold
        super().__init__(spec)

    def judged(self, grade: Grade) -> Grade:
        return with_verdict(grade, self.pass_threshold)

    def result_schema(self) -> dict[str, Any]:
        return {"type": "number"}

    def instruction(self) -> str:
        return (
            "Reply with only a JSON object of this form: "
            f'{{{STEPS_EXAMPLE}, "result": <a number from {self.low:g} to {self.high:g}>}}'
        )

    def verdict(self, text: str) -> Grade:
        result, steps = parse_score(text)
        reward = min(max(result, self.low), self.high)
        scores = {"result": result, "steps": steps, "range": [self.low, self.high]}
        if reward != result:
            scores["clamped"] = True
        return Grade(reward=reward, scores=scores)


class LabelModelGrader(ModelGrader):
    """The judge picks one of ``labels``; the reward is 1 if it is a passing label, else 0."""

    schema_name = "label_model_result"

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(LabelModelConfig, config)
        if len(set(spec.labels)) != len(spec.labels):
            raise GraderConfigError("labels", "labels must be unique")
        for index, label in enumerate(spec.passing_labels):
            if label not in spec.labels:
                raise GraderConfigError(f"passing_labels[{index}]", f"{label!r} is not one of the labels {spec.labels}")
        self.labels = spec.labels
        self.passing_labels = set(spec.passing_labels)
        super().__init__(spec)

    def result_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.labels)}

    def instruction(self) -> str:
        return (
            "Reply with only a JSON object of this form: "
            f'{{{STEPS_EXAMPLE}, "result": <one of {json.dumps(self.labels, ensure_ascii=False)}>}}'
        )

    def verdict(self, text: str) -> Grade:
        label, steps = parse_label(text, self.labels)
        passed = label in self.passing_labels
        return Grade(reward=1.0 if passed else 0.0, scores={"label": label, "passed": passed, "steps": steps})

    def judged(self, grade: Grade) -> Grade:
        """No label is no pass: a failed call gets ``passed: false`` too, so pass rates count it."""
        grade.scores.setdefault("passed", False)
        return grade


@hookimpl
def rft_register_graders(register: Register[GraderFactory]) -> None:
    register("score_model", ScoreModelGrader)
    register("label_model", LabelModelGrader)
