"""Output schemas a client validates cheaply: flat, no `$ref`, no `anyOf` for optional values.

MCP clients check every structured result against the tool's output schema (the Python SDK with
`jsonschema`, on every call). Pydantic's schemas put each nested model behind a `$ref` and every
optional value in an `anyOf` with `null`; both make each validation walk more. The same contract
reads flat: definitions inlined, `{"anyOf": [X, {"type": "null"}]}` as X with `null` among its
types, and titles (which validate nothing) left out.
"""

from __future__ import annotations

from typing import Any

_NULL = {"type": "null"}


def flat_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `$defs` inlined, nullable unions folded and titles dropped."""
    definitions: dict[str, Any] = schema.get("$defs", {})
    flat = _flatten({k: v for k, v in schema.items() if k != "$defs"}, definitions)
    assert isinstance(flat, dict)
    return flat


def _flatten(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_flatten(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _flatten({**definitions[name], **rest}, definitions)
    flat = {
        key: (
            value
            if key in ("properties", "default", "enum", "const")
            else _flatten(value, definitions)
        )
        for key, value in node.items()
        if key != "title"
    }
    if "properties" in flat:
        flat["properties"] = {
            name: _flatten(value, definitions) for name, value in flat["properties"].items()
        }
    return _fold_nullable(flat)


def _fold_nullable(node: dict[str, Any]) -> dict[str, Any]:
    """`{"anyOf": [X, {"type": "null"}], ...}` -> X accepting null too, when X has one type."""
    options = node.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or _NULL not in options:
        return node
    (other,) = [option for option in options if option != _NULL]
    kind = other.get("type")
    if not isinstance(kind, str):
        return node
    folded = {**other, **{k: v for k, v in node.items() if k != "anyOf"}, "type": [kind, "null"]}
    if "enum" in other:
        folded["enum"] = [*other["enum"], None]
    return folded
