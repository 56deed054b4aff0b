"""The program in a model's answer: the last Python code block, or the whole text.

Fenced blocks are found by a CommonMark parser (markdown-it-py), not a regular expression, so
``~~~`` fences, longer backtick fences around code that itself holds backticks, and an answer cut
off inside its block (the fence runs to the end) are read as a Markdown renderer reads them.
"""

from __future__ import annotations

from typing import Literal

from markdown_it import MarkdownIt

Extraction = Literal["auto", "fenced", "none"]

PYTHON_LANGUAGES = frozenset({"", "python", "python3", "py", "py3"})
_MARKDOWN = MarkdownIt("commonmark")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order; the language is lower-case, maybe empty."""
    blocks = []
    for token in _MARKDOWN.parse(text):
        if token.type == "fence":
            words = token.info.split()
            blocks.append((words[0].lower() if words else "", token.content))
    return blocks


def extract_program(text: str, extraction: Extraction = "auto") -> str | None:
    """The program to test, or None when there is none.

    ``auto``: the last block labelled Python (or unlabelled); with no fenced block at all, the
    whole text. Blocks in other languages only: None. ``fenced``: a block is required.
    ``none``: the text as it is.
    """
    if extraction == "none":
        return text
    blocks = code_blocks(text)
    python = [code for language, code in blocks if language in PYTHON_LANGUAGES]
    if python:
        return python[-1]
    if blocks or extraction == "fenced":
        return None
    return text
