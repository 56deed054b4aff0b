"""Reading files a user hands us (job, grader, data rows, ``--input``) without trusting their shape.

A job file may come from someone else. Three limits keep a small file from taking the machine
down, each with an environment override:

- ``RFT_MAX_DOCUMENT_KB`` (8192): the size of a job or grader file, checked before it is read;
- ``RFT_MAX_DOCUMENT_NODES`` (100,000): the values a YAML document holds once its aliases are
  expanded, counted on the parsed node graph before any Python object is built (a 1.5 kB "alias
  bomb" expands to billions, and every later step — validation, copies, JSON — walks them all);
  a recursive alias is refused outright;
- ``RFT_MAX_NESTING`` (100): how deep lists and mappings nest, in documents and in data rows (a
  row nested 100,000 levels deep stops Python's JSON parser with a ``RecursionError``).

Text must be UTF-8; a byte that is not is reported with its line and column.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

MAX_DOCUMENT_KB = 8192
MAX_DOCUMENT_NODES = 100_000
MAX_NESTING = 100


def _environment_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else default


@dataclass(frozen=True)
class DocumentLimits:
    """What a document may cost: file size, expanded YAML values, nesting depth."""

    max_bytes: int = MAX_DOCUMENT_KB * 1024
    max_nodes: int = MAX_DOCUMENT_NODES
    max_depth: int = MAX_NESTING

    @classmethod
    def from_environment(cls) -> "DocumentLimits":
        """The defaults, or ``RFT_MAX_DOCUMENT_KB``, ``RFT_MAX_DOCUMENT_NODES``, ``RFT_MAX_NESTING``."""
        return cls(
            _environment_int("RFT_MAX_DOCUMENT_KB", MAX_DOCUMENT_KB) * 1024,
            _environment_int("RFT_MAX_DOCUMENT_NODES", MAX_DOCUMENT_NODES),
            _environment_int("RFT_MAX_NESTING", MAX_NESTING),
        )


class DocumentError(ValueError):
    """A document that cannot be read safely; ``line`` (1-based) when one is to blame."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


def decode_utf8(data: bytes) -> str:
    """``data`` as text; a byte that is not UTF-8 is a ``DocumentError`` naming its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        byte = data[error.start:error.start + 1].hex()
        raise DocumentError(f"invalid UTF-8: byte 0x{byte} at column {column}", line) from None


def read_text(path: Path, limits: DocumentLimits) -> str:
    """A job or grader file's text: refused past ``max_bytes`` before it is read, UTF-8 checked."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise DocumentError(
            f"the file is {size:,} bytes; the limit is {limits.max_bytes:,} (RFT_MAX_DOCUMENT_KB)"
        )
    return decode_utf8(path.read_bytes())


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_node_graph(root: yaml.Node, limits: DocumentLimits) -> None:
    """Count the values the document holds with every alias expanded, and how deep it nests,
    in one pass over the (shared) node graph; a node that contains itself is refused."""
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            heights[key] = 1 + max((heights[id(child)] for child in children), default=0)
            entered.discard(key)
            if sizes[key] > limits.max_nodes:
                raise DocumentError(
                    f"the document expands to more than {limits.max_nodes:,} values through its aliases "
                    "(RFT_MAX_DOCUMENT_NODES)", node.start_mark.line + 1,
                )
            if heights[key] > limits.max_depth:
                raise _too_deep(limits, node.start_mark.line + 1)
            continue
        if key in sizes:
            continue
        entered.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in entered:
                raise DocumentError("a recursive alias (an anchor used inside itself)", child.start_mark.line + 1)
            if id(child) not in sizes:
                stack.append((child, False))


def _too_deep(limits: DocumentLimits, line: int | None = None) -> DocumentError:
    return DocumentError(f"nested deeper than {limits.max_depth} levels (RFT_MAX_NESTING)", line)


def load_yaml(text: str, limits: DocumentLimits) -> tuple[Any, yaml.Node | None]:
    """The document's data and its node graph (for the line of each key), checked against
    ``limits`` before any Python object is built. YAML errors propagate as ``yaml.YAMLError``."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise _too_deep(limits) from None
        if node is None:
            return None, None
        check_node_graph(node, limits)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def check_depth(value: Any, limits: DocumentLimits) -> None:
    """Refuse parsed data nested deeper than ``max_depth`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limits.max_depth:
            raise _too_deep(limits)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def load_json(text: str, limits: DocumentLimits) -> Any:
    """``json.loads`` that reports a document nested past what the parser (or ``limits``) can
    take as a ``DocumentError`` instead of a ``RecursionError``; JSON syntax errors propagate."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep(limits) from None
    check_depth(value, limits)
    return value


def json_lines(path: Path, limits: DocumentLimits, skip_bad: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSONL file, read one line at a time;
    bad UTF-8, bad JSON and nesting past ``max_depth`` are ``DocumentError`` with the line, or,
    with ``skip_bad`` (a file this package wrote, cut short by a kill), that line's value is None."""
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = decode_utf8(raw)
                if not line.strip():
                    continue
                yield number, load_json(line, limits)
            except (DocumentError, json.JSONDecodeError) as error:
                if skip_bad:
                    yield number, None
                elif isinstance(error, DocumentError):
                    raise DocumentError(error.message, number) from None
                else:
                    raise DocumentError(f"invalid JSON: {error.msg} (column {error.colno})", number) from None
