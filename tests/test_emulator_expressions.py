"""The emulator's expression language: what it computes, and everything it refuses."""

from __future__ import annotations

import re
from typing import Any

import pytest

from vf_mcp.emulator.expressions import Expression, ExpressionError, truthy

VARIABLES = {
    "base_price": 9,
    "pizza_size": "large",
    "stamps": 3,
    "fee": 2.5,
    "name": "Ada",
    "tags": ["a", "b"],
    "unset": 0,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("400 + 50", 450),
        ("10 / 2", 5),  # one number type, as in JavaScript: no 5.0
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("-base_price + 1", -8),
        ("base_price + {'small': 0, 'medium': 2, 'large': 4}[pizza_size]", 13),
        ("base_price + ({'small': 0}[pizza_size] or 0)", 9),  # a missing key reads as null
        ("'party' if pizza_size == 'large' else 'regular'", "party"),
        ("stamps >= 3 and fee < 3", True),
        ("stamps > 3 or 'fallback'", "fallback"),  # `or` returns an operand, like `||`
        ("not unset", True),
        ("1 < stamps < 5", True),
        ("'Hi ' + name", "Hi Ada"),
        ("'n=' + stamps", "n=3"),  # a string on either side concatenates
        ("'b' in tags", True),
        ("'z' not in tags", True),
        ("tags[0] + tags[-1]", "ab"),
        ("tags[5]", None),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("true and not false", True),
        ("null", None),
        ("nothing == null", True),
        ("len(name) + abs(-2)", 5),
        ("max(1, stamps, 2) - min(4, 5)", -1),
        ("round(fee)", 2),
        ("number('12.5') + int('3')", 15.5),
        ("str(fee) + '!'", "2.5!"),
        ("upper(name) + lower('X')", "ADAx"),
        ('"Luigi\'s Pizza"', "Luigi's Pizza"),
        ("'abc' < 3", False),  # unlike types are never ordered, rather than an error
    ],
)
def test_expressions_compute(source: str, expected: Any) -> None:
    result = Expression.parse(source).evaluate(VARIABLES)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "open('/etc/passwd')",
        "name.upper()",
        "(lambda: 1)()",
        "[x for x in tags]",
        "tags[0:1]",
        "{**VARIABLES}",
        "f'{name}'",
        "a := 1",
        "x = 1",
        "exec('1')",
        "round(fee, ndigits=1)",
        "",
        "1 +",
        "b'bytes'",
        "1j",
        "not " * 60 + "1",
        "1 + " * 1000 + "1",
    ],
)
def test_anything_else_is_refused_when_parsed(source: str) -> None:
    with pytest.raises(ExpressionError):
        Expression.parse(source)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("missing + 1", "missing is not defined"),
        ("1 / 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("2 ** 1000", "exponents are limited"),
        ("'a' * 3", "needs numbers"),
        ("name - 1", "needs numbers"),
        ("stamps[0]", "only lists, strings and dicts can be indexed"),
        ("number('lots')", "cannot read"),
        ("1 in stamps", "`in` needs"),
        ("len(stamps)", "len() needs"),
        ("abs()", "abs()"),
    ],
)
def test_evaluation_errors_are_expression_errors(source: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(problem)):
        Expression.parse(source).evaluate(VARIABLES)


def test_names_and_the_debug_form() -> None:
    expression = Expression.parse("loyalty_stamps + len(name) + true")
    assert expression.names == {"loyalty_stamps", "name"}
    assert expression.with_braces() == "{loyalty_stamps} + len({name}) + true"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, False), ("", False), (None, False), (False, False), ([], True), ({}, True), ("0", True)],
)
def test_truthiness_is_javascripts(value: Any, expected: bool) -> None:
    assert truthy(value) is expected
