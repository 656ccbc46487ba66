"""Output schemas: generated from the result models once, shipped as `output_schemas.json`.

Every client receives every output schema on every connection, and TypeScript-SDK clients
compile each one (AJV); the Python SDK checks every result against it. So the published form
says what a client reads to decide, compactly, and nothing a validator cannot check:

- a result's own fields, and the fields of the objects they hold, are typed (`DEPTH`); objects
  below that are objects, and a test's transcript there is pinned by its `schema_version`
  (`vf-mcp/transcript/v2`, described in full by `vf_mcp/transcripts/schemas/transcript-v2.json`
  and README), so four tools do not each repeat the transcript's tree;
- titles, defaults, descriptions and boolean `additionalProperties` are left out (they validate
  nothing a client relies on; the fields are documented in README's tool reference);
- `{"anyOf": [X, {"type": "null"}]}` reads as X with `null` among its types;
- a model used once is inlined; one used in several places is defined once under `$defs`.

Generating them builds every result model's JSON schema, which is most of what starting the
server used to cost; a start reads the shipped file instead. `scripts/output-schemas` writes
it again after a model changes, and a test fails while the file and the models differ.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

SCHEMAS_PATH = Path(__file__).with_name("output_schemas.json")
DEPTH = 1
"""Levels of nested objects described below a result's root; deeper ones are plain objects."""

_NULL = {"type": "null"}
_DEFS = "#/$defs/"
_DROPPED = frozenset({"title", "default", "description", "examples"})


@cache
def published_schemas() -> dict[str, dict[str, Any]]:
    """The shipped output schema of every tool, by tool name."""
    loaded: dict[str, dict[str, Any]] = json.loads(SCHEMAS_PATH.read_text(encoding="utf-8"))
    return loaded


def result_model(function: Callable[..., Any]) -> Any:
    """The model a tool's structured content is a dump of (`Annotated[CallToolResult, Model]`)."""
    annotation = typing.get_type_hints(function, include_extras=True)["return"]
    return typing.get_args(annotation)[1]


def generated_schemas(functions: Sequence[tuple[str, Callable[..., Any]]]) -> dict[str, Any]:
    """What `published_schemas` should hold for these tools, from their result models."""
    return {name: compact_schema(result_model(function)) for name, function in functions}


def compact_schema(model: Any) -> dict[str, Any]:
    """The published output schema of `model` (the rules in this module's docstring)."""
    raw = TypeAdapter(model).json_schema()
    definitions: dict[str, Any] = raw.get("$defs", {})
    root = {k: v for k, v in raw.items() if k != "$defs"}
    if "$ref" in root:  # a self-referencing root model: its definition is the root
        root = {
            **definitions[_name(root["$ref"])],
            **{k: v for k, v in root.items() if k != "$ref"},
        }
    reached: dict[str, list[int]] = {}
    _reach(root, definitions, reached, 0)
    shared = {name: min(depths) for name, depths in reached.items() if len(depths) > 1}
    compact = _compact(root, definitions, shared, 0)
    kept = {
        name: _compact(definitions[name], definitions, {}, shared[name]) for name in sorted(shared)
    }
    return {**compact, "$defs": kept} if kept else compact


def _name(ref: str) -> str:
    return ref.removeprefix(_DEFS)


def _is_object(node: dict[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def _reach(
    node: Any, definitions: dict[str, Any], reached: dict[str, list[int]], depth: int
) -> None:
    """The depth of every place an object model is described in full (once per place)."""
    if isinstance(node, list):
        for item in node:
            _reach(item, definitions, reached, depth)
        return
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        name = _name(node["$ref"])
        definition = definitions[name]
        if _is_object(definition) and depth <= DEPTH:
            first = name not in reached
            reached.setdefault(name, []).append(depth)
            if first:
                _reach(definition, definitions, reached, depth)
        elif not _is_object(definition):
            _reach(definition, definitions, reached, depth)
        return
    if _is_object(node) and depth > DEPTH:
        return
    deeper = depth + 1 if _is_object(node) else depth
    for key, value in node.items():
        if key == "properties":
            for field in value.values():
                _reach(field, definitions, reached, deeper)
        elif key not in _DROPPED and key not in ("enum", "const"):
            _reach(value, definitions, reached, deeper)


def _compact(node: Any, definitions: dict[str, Any], shared: dict[str, int], depth: int) -> Any:
    if isinstance(node, list):
        return [_compact(item, definitions, shared, depth) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = _name(node["$ref"])
        if name in shared and depth <= DEPTH:
            return {"$ref": node["$ref"]}
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _compact({**definitions[name], **rest}, definitions, shared, depth)
    if depth > DEPTH and _is_object(node):
        return _fold_nullable(_opaque(node))
    deeper = depth + 1 if _is_object(node) else depth
    compact: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "additionalProperties" and isinstance(value, bool)):
            continue
        if key == "properties":
            compact[key] = {
                name: _compact(field, definitions, shared, deeper) for name, field in value.items()
            }
        elif key in ("enum", "const"):
            compact[key] = value
        else:
            compact[key] = _compact(value, definitions, shared, deeper)
    return _fold_nullable(compact)


def _opaque(node: dict[str, Any]) -> dict[str, Any]:
    """An object below `DEPTH`: a transcript keeps the version that says what it holds."""
    kind = node.get("type", "object")
    version = node.get("properties", {}).get("schema_version")
    if version is None or "const" not in version:
        return {"type": kind}
    return {
        "type": kind,
        "properties": {"schema_version": {"const": version["const"]}},
        "required": ["schema_version"],
    }


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


def untitled(schema: Any) -> Any:
    """An input schema without pydantic's titles ("User Id" for `user_id`): they tell a model
    nothing the name does not, and every client receives them on every connection."""
    if isinstance(schema, list):
        return [untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: (
            {name: untitled(field) for name, field in value.items()}
            if key in ("properties", "$defs")
            else value
            if key in ("enum", "const", "default")
            else untitled(value)
        )
        for key, value in schema.items()
        if key != "title"
    }


def write_schemas(functions: Sequence[tuple[str, Callable[..., Any]]]) -> None:
    """Regenerate `output_schemas.json` for these tools (every tool: `scripts/output-schemas`)."""
    text = json.dumps(generated_schemas(functions), indent=1) + "\n"
    SCHEMAS_PATH.write_text(text, encoding="utf-8")
