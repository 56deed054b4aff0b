"""A model grader's ``input``: chat messages whose text parts are templates.

Accepted as OpenAI's ``EvalItem`` list: ``role`` (``system``, ``developer``, ``user``,
``assistant``), ``content`` as a string, one content part, or a list of parts
(``input_text`` / ``output_text`` with ``text``; ``input_image`` with ``image_url`` and optional
``detail``), and an optional ``type: "message"``. Rendered into chat-completions messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import pydantic

from ..graders.templates import Template

INSTRUCTION_ROLES = ("system", "developer")


class _Part(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class TextPart(_Part):
    type: Literal["input_text", "output_text"]
    text: str


class ImagePart(_Part):
    type: Literal["input_image"]
    image_url: str
    detail: Literal["auto", "low", "high"] | None = None


ContentPart = Annotated[Union[TextPart, ImagePart], pydantic.Field(discriminator="type")]


class InputMessage(pydantic.BaseModel):
    """One message of a model grader's ``input``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, ContentPart, list[ContentPart]]
    type: Literal["message"] | None = None


class _CompiledMessage:
    def __init__(self, message: InputMessage, field: str):
        self.role = message.role
        content = message.content
        self.parts: list[tuple[str, Template, str | None]] = []
        if isinstance(content, str):
            self.text: Template | None = Template(content, f"{field}.content")
            return
        self.text = None
        parts = content if isinstance(content, list) else [content]
        for index, part in enumerate(parts):
            where = f"{field}.content[{index}]" if isinstance(content, list) else f"{field}.content"
            if isinstance(part, TextPart):
                self.parts.append(("text", Template(part.text, f"{where}.text"), None))
            else:
                self.parts.append(("image", Template(part.image_url, f"{where}.image_url"), part.detail))

    def render(self, sample: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        if self.text is not None:
            return {"role": self.role, "content": self.text.render(sample, item)}
        content: list[dict[str, Any]] = []
        for kind, template, detail in self.parts:
            if kind == "text":
                content.append({"type": "text", "text": template.render(sample, item)})
            else:
                image: dict[str, Any] = {"url": template.render(sample, item)}
                if detail:
                    image["detail"] = detail
                content.append({"type": "image_url", "image_url": image})
        return {"role": self.role, "content": content}


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

    Raises ``ValueError`` on an image part: a local causal LM cannot look at it.
    """
    flat = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            if any(part["type"] != "text" for part in content):
                raise ValueError("image inputs need a judge that accepts images; a local causal LM does not")
            content = "\n".join(part["text"] for part in content)
        flat.append({"role": message["role"], "content": content})
    return flat
