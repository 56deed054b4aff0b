"""The ``multi`` grader's formula language, evaluated safely (never ``eval``).

Allowed: numbers, the sub-grader keys, ``+ - * /``, ``^`` as power, parentheses and the
functions ``min max abs floor ceil exp sqrt log``. Anything else is a ``formula_parse_error``.
Parsing uses Python's ``ast`` after turning ``^`` into ``**`` (same precedence and
right-associativity as mathematical power); the checked tree is evaluated by ``simpleeval``.

Every number is a float, as in the JSON the formula comes from: Python's exact integers would
let ``9 ^ 9 ^ 9`` or ``floor(1e9) ^ floor(1e9)`` compute for hours in the trainer, where floats
overflow at once (an ``OverflowError``, flagged on the sample).

Names are matched as written. Python's parser folds identifiers to NFKC, so ``ａ`` (full width)
would silently read the key ``a``: every name in the formula must be a sub-grader key or a
function exactly, and two keys that fold to the same name are refused.
"""

from __future__ import annotations

import ast
import io
import math
import operator
import tokenize
import unicodedata
from typing import Iterable

from simpleeval import SimpleEval

from ..errors import GraderConfigError


def _floor(value: float) -> float:
    return float(math.floor(value))


def _ceil(value: float) -> float:
    return float(math.ceil(value))


FUNCTIONS = {
    "min": min,
    "max": max,
    "abs": abs,
    "floor": _floor,
    "ceil": _ceil,
    "exp": math.exp,
    "sqrt": math.sqrt,
    "log": math.log,
}
OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _parse_error(formula: str, reason: str) -> GraderConfigError:
    return GraderConfigError("calculate_output", f"{reason} in {formula!r}", flag="formula_parse_error")


def _folded(name: str) -> str:
    """A name as Python's parser reads it (NFKC, PEP 3131)."""
    return unicodedata.normalize("NFKC", name)


def _written_names(source: str) -> list[str]:
    """The identifiers of ``source`` as written (the tokenizer does not fold them; ``ast`` does)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [token.string for token in tokens if token.type == tokenize.NAME]


class Formula:
    """A checked formula over named values."""

    def __init__(self, source: str, names: Iterable[str]):
        if not isinstance(source, str) or not source.strip():
            raise _parse_error(str(source), "empty formula")
        if "**" in source:
            raise _parse_error(source, "'**' is not allowed (use '^' for power)")
        self.source = source
        self.keys = frozenset(names)
        self.names = frozenset(_folded(name) for name in self.keys)  # as the parsed tree names them
        if len(self.names) < len(self.keys):
            same = sorted(key for key in self.keys if _folded(key) != key)
            raise _parse_error(source, f"sub-grader key(s) {same} read as other keys in a formula (Unicode folding)")
        clash = self.names & FUNCTIONS.keys()
        if clash:
            raise _parse_error(source, f"sub-grader key(s) {sorted(clash)} shadow formula functions")
        python = source.replace("^", "**").strip()
        try:
            tree = ast.parse(python, mode="exec")
        except SyntaxError as error:
            raise _parse_error(source, f"syntax error ({error.msg})") from error
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
            raise _parse_error(source, "a formula is one expression")
        for name in _written_names(python):
            if name not in self.keys and name not in FUNCTIONS:
                hint = f" (Python reads it as {_folded(name)!r})" if _folded(name) != name else ""
                raise _parse_error(source, f"unknown name {name!r}{hint}; sub-graders: {', '.join(sorted(self.keys))}")
        self._check(tree.body[0].value)
        try:
            self._tree = _Floats().visit(tree.body[0])
        except OverflowError as error:
            raise _parse_error(source, "a number too large for a float") from error

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise _parse_error(self.source, f"only numbers are allowed, not {node.value!r}")
        elif isinstance(node, ast.Name):
            if node.id not in self.names:
                known = ", ".join(sorted(self.names))
                raise _parse_error(self.source, f"unknown name {node.id!r} (sub-graders: {known})")
        elif isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
            self._check(node.operand)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise _parse_error(self.source, f"unknown function (allowed: {', '.join(FUNCTIONS)})")
            if node.keywords or not node.args:
                raise _parse_error(self.source, f"{node.func.id}() takes positional arguments only")
            for argument in node.args:
                self._check(argument)
        else:
            raise _parse_error(self.source, f"{type(node).__name__} is not allowed")

    def evaluate(self, values: dict[str, float]) -> float:
        """The formula's value; math errors (division by zero, log of 0) raise ``ArithmeticError``
        or ``ValueError``."""
        names = {_folded(name): float(value) for name, value in values.items()}
        evaluator = SimpleEval(operators=OPERATORS, functions=FUNCTIONS, names=names)
        return float(evaluator.eval(self.source, previously_parsed=self._tree))


class _Floats(ast.NodeTransformer):
    """Integer literals become floats (see the module docstring)."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        assert isinstance(node.value, (int, float)), "Formula._check admits number constants only"
        return ast.copy_location(ast.Constant(float(node.value)), node)
