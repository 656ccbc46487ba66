"""A small, safe expression language for agent files (set, if and code steps).

Python's own parser reads the text, then a whitelist walk evaluates it: literals (numbers, strings,
booleans, ``null``, lists, dict literals), variable names, arithmetic, comparisons, ``and`` /
``or`` / ``not``, ``a if test else b``, subscripts and a handful of pure functions. Nothing is
ever handed to ``eval``: an unknown construct is rejected when the agent file loads.

The semantics lean towards the JavaScript that Voiceflow runs, where the two languages disagree
in ways an agent author would notice: ``+`` with a string concatenates, a missing key or index
reads as ``null`` (JavaScript's ``undefined``), ``and`` / ``or`` return an operand, and a float
with no fractional part comes back as an int (JavaScript has one number type, so ``10 / 2`` is
``5``, not ``5.0``).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_SOURCE_LENGTH = 2000
MAX_DEPTH = 40
MAX_EXPONENT = 64
MAX_COLLECTION = 1000

# JavaScript spellings are accepted too, since Voiceflow authors write them.
_CONSTANTS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "undefined": None,
    "True": True,
    "False": False,
    "None": None,
}


class ExpressionError(ValueError):
    """An expression that does not parse, uses something not allowed, or fails to evaluate."""


def _number(value: Any, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{where} needs numbers, got {type(value).__name__}")
    return value


def _tidy(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ExpressionError("the result is not a finite number")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str) or isinstance(right, str):
        return f"{_display(left)}{_display(right)}"
    if isinstance(left, list) and isinstance(right, list):
        if len(left) + len(right) > MAX_COLLECTION:
            raise ExpressionError("the list is too long")
        return left + right
    return _number(left, "+") + _number(right, "+")


def _divide(left: Any, right: Any) -> Any:
    divisor = _number(right, "/")
    if divisor == 0:
        raise ExpressionError("division by zero")
    return _number(left, "/") / divisor


def _modulo(left: Any, right: Any) -> Any:
    divisor = _number(right, "%")
    if divisor == 0:
        raise ExpressionError("division by zero")
    return math.fmod(_number(left, "%"), divisor)


def _power(left: Any, right: Any) -> Any:
    exponent = _number(right, "**")
    if abs(exponent) > MAX_EXPONENT:
        raise ExpressionError(f"exponents are limited to {MAX_EXPONENT}")
    return _number(left, "**") ** exponent


def _numeric(function: Callable[[Any, Any], Any], symbol: str) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        return function(_number(left, symbol), _number(right, symbol))

    return apply


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _numeric(operator.sub, "-"),
    ast.Mult: _numeric(operator.mul, "*"),
    ast.Div: _divide,
    ast.Mod: _modulo,
    ast.Pow: _power,
    ast.FloorDiv: _numeric(lambda a, b: math.floor(_divide(a, b)), "//"),
}


def _ordered(function: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        try:
            return function(left, right)
        except TypeError:
            return False  # JavaScript compares anything; unlike types are simply not ordered

    return compare


def _contains(left: Any, right: Any) -> bool:
    if isinstance(right, str):
        return isinstance(left, str) and left in right
    if isinstance(right, list | dict):
        return left in right
    raise ExpressionError("`in` needs a string, a list or a dict on its right")


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _ordered(operator.lt),
    ast.LtE: _ordered(operator.le),
    ast.Gt: _ordered(operator.gt),
    ast.GtE: _ordered(operator.ge),
    ast.In: _contains,
    ast.NotIn: lambda left, right: not _contains(left, right),
}


def _length(value: Any) -> int:
    if not isinstance(value, str | list | dict):
        raise ExpressionError("len() needs a string, a list or a dict")
    return len(value)


def _to_number(value: Any) -> int | float:
    try:
        result = float(value) if not isinstance(value, int | float) else value
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"cannot read {value!r} as a number") from exc
    tidy: int | float = _tidy(result)
    return tidy


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": lambda value: abs(_number(value, "abs()")),
    "len": _length,
    "max": lambda *values: max(_number(v, "max()") for v in values),
    "min": lambda *values: min(_number(v, "min()") for v in values),
    "round": lambda value, digits=0: round(_number(value, "round()"), int(digits)),
    "str": lambda value: _display(value),
    "number": _to_number,
    "int": lambda value: int(_to_number(value)),
    "float": _to_number,
    "lower": lambda value: str(value).lower(),
    "upper": lambda value: str(value).upper(),
}


def _display(value: Any) -> str:
    """How JavaScript's ``String(value)`` would show a value (used by ``+`` and ``str()``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def truthy(value: Any) -> bool:
    """JavaScript truthiness: empty string, 0, null and false are false; ``[]`` and ``{}`` true."""
    if isinstance(value, list | dict):
        return True
    return bool(value)


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression; evaluate it against a variable mapping."""

    source: str
    _tree: ast.expr = field(repr=False, compare=False)

    @classmethod
    def parse(cls, source: str) -> Expression:
        text = source.strip()
        if not text:
            raise ExpressionError("an expression cannot be empty")
        if len(text) > MAX_SOURCE_LENGTH:
            raise ExpressionError(f"expressions are limited to {MAX_SOURCE_LENGTH} characters")
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise ExpressionError(f"cannot parse {text!r}: {exc.msg}") from exc
        _check(tree, 0)
        return cls(text, tree)

    @property
    def names(self) -> frozenset[str]:
        """Variable names the expression reads (constants and function names excluded)."""
        found = {
            node.id
            for node in ast.walk(self._tree)
            if isinstance(node, ast.Name) and node.id not in _CONSTANTS
        }
        called = {
            node.func.id
            for node in ast.walk(self._tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        return frozenset(found - called)

    def with_braces(self) -> str:
        """The source with each variable shown as ``{name}``, as Voiceflow's debug traces do."""
        spans = sorted(
            (node.col_offset, node.end_col_offset or node.col_offset, node.id)
            for node in ast.walk(self._tree)
            if isinstance(node, ast.Name) and node.id in self.names
        )
        pieces, cursor = [], 0
        for start, end, name in spans:
            pieces.append(self.source[cursor:start])
            pieces.append(f"{{{name}}}")
            cursor = end
        pieces.append(self.source[cursor:])
        return "".join(pieces)

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        return _tidy(_Evaluator(variables).run(self._tree))


def _check(node: ast.AST, depth: int) -> None:
    """Reject, at load time, every construct the evaluator does not implement."""
    if depth > MAX_DEPTH:
        raise ExpressionError("the expression is nested too deeply")
    allowed = (
        ast.Constant,
        ast.Name,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.Subscript,
        ast.List,
        ast.Tuple,
        ast.Dict,
        ast.Call,
        ast.Load,
        ast.And,
        ast.Or,
        ast.Not,
        ast.USub,
        ast.UAdd,
        *_BINARY,
        *_COMPARE,
    )
    if not isinstance(node, allowed):
        raise ExpressionError(f"`{type(node).__name__}` is not allowed in an expression")
    if isinstance(node, ast.Constant) and not isinstance(
        node.value, int | float | str | bool | type(None)
    ):
        raise ExpressionError(f"the literal {node.value!r} is not allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            names = ", ".join(sorted(_FUNCTIONS))
            raise ExpressionError(f"only these functions can be called: {names}")
        if node.keywords:
            raise ExpressionError("functions take positional arguments only")
        children: list[ast.AST] = list(node.args)
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        raise ExpressionError("slices are not allowed")
    elif isinstance(node, ast.Dict) and any(key is None for key in node.keys):
        raise ExpressionError("`**` unpacking is not allowed")
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        _check(child, depth + 1)


class _Evaluator:
    def __init__(self, variables: Mapping[str, Any]) -> None:
        self._variables = variables

    def run(self, node: ast.expr) -> Any:
        match node:
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                if name in _CONSTANTS:
                    return _CONSTANTS[name]
                if name not in self._variables:
                    raise ExpressionError(f"{name} is not defined")
                return self._variables[name]
            case ast.BinOp(left=left, op=op, right=right):
                return _tidy(_BINARY[type(op)](self.run(left), self.run(right)))
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not truthy(self.run(operand))
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -_number(self.run(operand), "-")
            case ast.UnaryOp(operand=operand):
                return _number(self.run(operand), "+")
            case ast.BoolOp(op=ast.And(), values=operands):
                result: Any = True
                for item in operands:
                    result = self.run(item)
                    if not truthy(result):
                        return result
                return result
            case ast.BoolOp(values=operands):
                result = False
                for item in operands:
                    result = self.run(item)
                    if truthy(result):
                        return result
                return result
            case ast.Compare(left=first, ops=comparisons, comparators=comparators):
                current = self.run(first)
                for comparison, comparator in zip(comparisons, comparators, strict=True):
                    following = self.run(comparator)
                    if not _COMPARE[type(comparison)](current, following):
                        return False
                    current = following
                return True
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return self.run(body) if truthy(self.run(test)) else self.run(orelse)
            case ast.Subscript(value=container, slice=index):
                return _lookup(self.run(container), self.run(index))
            case ast.List(elts=items) | ast.Tuple(elts=items):
                return [self.run(item) for item in items]
            case ast.Dict(keys=keys, values=entries):
                # `_check` has refused `**` unpacking, the only source of a missing key.
                return {
                    _key(self.run(k)): self.run(v)
                    for k, v in zip(keys, entries, strict=True)
                    if k is not None
                }
            case ast.Call(func=ast.Name(id=name), args=args):
                try:
                    return _FUNCTIONS[name](*(self.run(arg) for arg in args))
                except TypeError as exc:
                    raise ExpressionError(f"{name}(): {exc}") from exc
        raise ExpressionError(f"`{type(node).__name__}` is not allowed in an expression")


def _key(value: Any) -> str:
    # JSON objects (and so Voiceflow variables) only have string keys.
    return value if isinstance(value, str) else _display(value)


def _lookup(container: Any, index: Any) -> Any:
    if isinstance(container, dict):
        return container.get(_key(index))
    if isinstance(container, list | str):
        if isinstance(index, bool) or not isinstance(index, int):
            return None
        return container[index] if -len(container) <= index < len(container) else None
    raise ExpressionError("only lists, strings and dicts can be indexed")
