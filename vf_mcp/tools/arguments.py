"""Tool arguments checked before a tool runs, each problem said in one line naming the argument.

The SDK checks arguments with the tool's pydantic model too, but its refusal is pydantic's
multi-line dump with a link to errors.pydantic.dev, and it drops unknown arguments silently (a
typo such as `mesage` then reads "give exactly one of ..."). For arguments the SDK refused (or
that name an unknown argument), `argument_problem` runs the same check again
(`FuncMetadata.validate_arguments`, JSON strings pre-parsed as the SDK does) and words pydantic's
structured error list like every other vf-mcp error:

    verbosity must be one of minimal, standard, debug (got "loud")
    unknown argument 'mesage' (did you mean 'message'?)
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from vf_mcp.conversation import ENVIRONMENT_PATTERN, USER_ID_PATTERN
from vf_mcp.errors import InvalidInputError

_USER_ID_WORDS = "letters, digits and _ . : @ + -, starting with a letter or digit"
PATTERN_WORDS: Final[dict[str, str]] = {
    USER_ID_PATTERN: _USER_ID_WORDS,
    f"^$|{USER_ID_PATTERN}": _USER_ID_WORDS,
    ENVIRONMENT_PATTERN: "letters, digits and _ . -, starting with a letter or digit",
}
"""A pattern's meaning in words: a regular expression is no answer to a person."""
SCHEMA_TYPE_WORDS: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}
ERROR_TYPE_WORDS: Final = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "list_type": "a list",
    "model_type": "an object",
}
BOUNDS: Final = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}
SHOWN_CHARS: Final = 40


def argument_problem(
    tool: str, arguments: Mapping[str, Any], metadata: FuncMetadata, schema: Mapping[str, Any]
) -> InvalidInputError | None:
    """What is wrong with `arguments` for `tool`, in one line; None when they are valid."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    known = list(properties)
    problems = [_unknown(tool, name, known) for name in arguments if name not in properties]
    try:
        metadata.validate_arguments(dict(arguments))
    except ValidationError as error:
        problems += _described(error.errors(include_url=False), properties)
    return InvalidInputError("; ".join(problems)) if problems else None


def _unknown(tool: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown argument {name!r} (did you mean {close[0]!r}?)"
    return f"unknown argument {name!r} ({tool} takes {', '.join(known)})"


def _described(errors: Sequence[ErrorDetails], properties: Mapping[str, Any]) -> list[str]:
    """One phrase per argument at fault; a union's failed branches are one phrase."""
    by_argument: dict[str, list[ErrorDetails]] = {}
    for error in errors:
        by_argument.setdefault(str(error["loc"][0]) if error["loc"] else "", []).append(error)
    phrases: list[str] = []
    for name, found in by_argument.items():
        prop = properties.get(name, {})
        if all(_is_type_error(e, prop) for e in found):
            expected = _schema_types(prop) or ERROR_TYPE_WORDS[found[0]["type"]]
            phrases.append(f"{name} must be {expected} (got {_shown(found[0]['input'])})")
        else:
            phrases += [_phrase(_path(e["loc"]), e, prop) for e in found]
    return phrases


def _is_type_error(error: ErrorDetails, prop: Mapping[str, Any]) -> bool:
    """A wrong type for the argument itself (or one branch of its union), not inside it."""
    loc = error["loc"]
    top = len(loc) == 1 or (len(loc) == 2 and isinstance(loc[1], str) and "anyOf" in prop)
    return top and error["type"] in ERROR_TYPE_WORDS


def _schema_types(prop: Mapping[str, Any]) -> str:
    options = prop.get("anyOf", [prop])
    kinds = [o.get("type") for o in options if o.get("type") not in (None, "null")]
    return " or ".join(SCHEMA_TYPE_WORDS.get(str(k), str(k)) for k in kinds)


def _phrase(path: str, error: ErrorDetails, prop: Mapping[str, Any]) -> str:
    kind, value, ctx = error["type"], error["input"], error.get("ctx", {})
    if kind == "missing":
        what = str(prop.get("description", ""))
        return f"{path} is required ({what})" if 0 < len(what) <= 80 else f"{path} is required"
    if kind == "literal_error":
        allowed = _enum(prop) or str(ctx.get("expected", ""))
        return f"{path} must be one of {allowed} (got {_shown(value)})"
    if kind == "string_too_long":
        return f"{path} must be at most {ctx['max_length']} characters (got {len(value)})"
    if kind == "string_too_short":
        least = ctx["min_length"]
        noun = "character" if least == 1 else "characters"
        return f"{path} must be at least {least} {noun} (got {_shown(value)})"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        words = PATTERN_WORDS.get(pattern, f"text matching {pattern}")
        return f"{path} must be {words} (got {_shown(value)})"
    if kind in BOUNDS:
        key, words = BOUNDS[kind]
        return f"{path} must be {words} {ctx[key]} (got {_shown(value)})"
    if kind in ERROR_TYPE_WORDS:
        return f"{path} must be {ERROR_TYPE_WORDS[kind]} (got {_shown(value)})"
    return f"{path}: {error['msg']} (got {_shown(value)})"


def _enum(prop: Mapping[str, Any]) -> str:
    for option in prop.get("anyOf", [prop]):
        if "enum" in option:
            return ", ".join(str(v) for v in option["enum"] if v is not None)
    return ""


def _path(loc: tuple[int | str, ...]) -> str:
    """`variables[0]`, `state.stack`: where in the arguments the problem is."""
    path = str(loc[0]) if loc else "arguments"
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _shown(value: Any) -> str:
    """The value as the caller sent it, short: enough to spot the mistake, never a dump."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
