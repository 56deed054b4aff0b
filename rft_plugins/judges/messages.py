"""A model grader's ``input``: chat messages whose text parts are templates.

Accepted as OpenAI's ``EvalItem`` list (openai-python's ``graders/grader_inputs.py``): ``role``
(``system``, ``developer``, ``user``, ``assistant``), ``content`` as a string, one content part,
or a list of parts and strings: ``input_text`` / ``output_text`` with ``text``; ``input_image``
with ``image_url`` or ``file_id`` (either may be null, not both) and optional ``detail``;
``input_audio`` with ``input_audio: {data, format}``. An optional ``type: "message"`` is
accepted. Every text, image URL, file id and audio payload is a template. Rendered into
chat-completions messages; a backend that cannot take a kind of part flags the sample (a local
causal LM reads text only: ``text_only``), since whether a part is usable depends on the judge,
not on the config.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import pydantic

from ..graders.templates import Template

INSTRUCTION_ROLES = ("system", "developer")
#: what each kind of rendered part is called in the grader's config, for messages about it
PART_NAMES = {"image_url": "input_image (image_url)", "file": "input_image (file_id)", "input_audio": "input_audio"}


class _Part(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class TextPart(_Part):
    type: Literal["input_text", "output_text"]
    text: str


class ImagePart(_Part):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None

    @pydantic.model_validator(mode="after")
    def _located(self) -> "ImagePart":
        if self.image_url is None and self.file_id is None:
            raise ValueError("an input_image needs an image_url or a file_id")
        return self


class AudioData(_Part):
    data: str
    format: Literal["mp3", "wav"]


class AudioPart(_Part):
    type: Literal["input_audio"]
    input_audio: AudioData


ContentPart = Annotated[Union[TextPart, ImagePart, AudioPart], pydantic.Field(discriminator="type")]


class InputMessage(pydantic.BaseModel):
    """One message of a model grader's ``input``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, ContentPart, list[Union[str, ContentPart]]]
    type: Literal["message"] | None = None


class _CompiledPart:
    """One content part with its templates compiled; renders to a chat-completions part."""

    def __init__(self, part: str | TextPart | ImagePart | AudioPart, where: str):
        self.part = part
        if isinstance(part, str):
            self.templates = {"text": Template(part, where)}
        elif isinstance(part, TextPart):
            self.templates = {"text": Template(part.text, f"{where}.text")}
        elif isinstance(part, ImagePart):
            located = {"image_url": part.image_url, "file_id": part.file_id}
            self.templates = {name: Template(value, f"{where}.{name}") for name, value in located.items() if value}
        else:
            self.templates = {"data": Template(part.input_audio.data, f"{where}.input_audio.data")}

    def render(self, sample: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        values = {name: template.render(sample, item) for name, template in self.templates.items()}
        if isinstance(self.part, (str, TextPart)):
            return {"type": "text", "text": values["text"]}
        if isinstance(self.part, AudioPart):
            return {"type": "input_audio", "input_audio": {"data": values["data"], "format": self.part.input_audio.format}}
        if "image_url" in values:
            image: dict[str, Any] = {"url": values["image_url"]}
            if self.part.detail:
                image["detail"] = self.part.detail
            return {"type": "image_url", "image_url": image}
        return {"type": "file", "file": {"file_id": values["file_id"]}}  # chat completions' uploaded-file part


class _CompiledMessage:
    def __init__(self, message: InputMessage, field: str):
        self.role = message.role
        content = message.content
        self.text: Template | None = None
        self.parts: list[_CompiledPart] = []
        if isinstance(content, str):
            self.text = Template(content, f"{field}.content")
            return
        parts = content if isinstance(content, list) else [content]
        for index, part in enumerate(parts):
            where = f"{field}.content[{index}]" if isinstance(content, list) else f"{field}.content"
            self.parts.append(_CompiledPart(part, where))

    def render(self, sample: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        if self.text is not None:
            return {"role": self.role, "content": self.text.render(sample, item)}
        return {"role": self.role, "content": [part.render(sample, item) for part in self.parts]}


class JudgeMessages:
    """The grader's ``input`` with every template compiled once, at config time."""

    def __init__(self, messages: list[InputMessage], field: str = "input"):
        self.messages = [_CompiledMessage(message, f"{field}[{index}]") for index, message in enumerate(messages)]

    def render(self, sample: dict[str, Any], item: dict[str, Any]) -> list[dict[str, Any]]:
        """Chat-completions messages; an unresolvable variable raises ``invalid_variable_error``."""
        return [message.render(sample, item) for message in self.messages]


def add_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """Tell the judge the answer format: appended to the leading system/developer message, or a
    new system message first (many chat templates accept only one system message, first)."""
    if messages and messages[0]["role"] in INSTRUCTION_ROLES:
        first = dict(messages[0])
        if isinstance(first["content"], str):
            first["content"] = f"{first['content']}\n\n{instruction}"
        else:
            first["content"] = [*first["content"], {"type": "text", "text": instruction}]
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def text_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with list contents joined into plain text, for local chat templates.

    Raises ``ValueError`` naming the first part that is not text (an image, a file, audio): a
    local causal LM cannot take it.
    """
    flat = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            for part in content:
                if part["type"] != "text":
                    name = PART_NAMES.get(part["type"], part["type"])
                    raise ValueError(
                        f"the judge's prompt has an {name} part, and a local causal LM reads "
                        "text only; judge it with a multimodal model behind an OpenAI-compatible server "
                        "(judge.backend: openai)"
                    )
            content = "\n".join(part["text"] for part in content)
        flat.append({"role": message["role"], "content": content})
    return flat
