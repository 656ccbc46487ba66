"""Reading suite text that a caller sent or that lies in the tests directory, within bounds.

A suite is input from whoever calls the server, so reading one must stay cheap whatever it holds:

- YAML aliases make a small text stand for a huge tree (479 bytes of anchors, seven levels of
  ten, expand to ten million values; one long anchored string repeated a thousand times is as
  bad); PyYAML builds it cheaply as shared objects, but everything after (validation, the size
  check, a dump) walks it expanded. The expanded size (values, and the characters of strings) is
  measured here, once per distinct node, and a suite over `MAX_SIZE` is refused before anything
  else reads it. Plain aliases (`<<: *defaults`) keep working.
- Nesting deeper than `MAX_DEPTH` is refused: the parsers recurse, and a suite is never deep.
- A file is read only when it lies inside the root it was named under (symlinks resolved) and
  is at most `MAX_FILE_BYTES`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.script import resolve_under

MAX_SIZE = 5_000_000
"""Values and characters of strings in a suite, counted as if every alias were written out: far
over any real suite (the 200,000 characters `run_conversation` takes, written out), far under
what stalls a worker."""
MAX_DEPTH = 64
MAX_FILE_BYTES = 1_048_576
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: 10x faster


def parse_text(text: str, source: str) -> Any:
    """The data of a suite's YAML or JSON text, refused in one line when it cannot be parsed or
    is too large once its aliases are expanded."""
    try:
        # YAML is a superset of JSON, so inline JSON works too; the loader is a safe one.
        is_json = source.endswith(".json")
        data = json.loads(text) if is_json else yaml.load(text, Loader=_LOADER)
    except RecursionError:
        raise ScriptError(f"{source}: nested deeper than a suite can be") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ScriptError(f"{source}: cannot be parsed ({str(exc).splitlines()[0]})") from None
    check_size(data, source)
    return data


def check_size(data: Any, source: str) -> None:
    """Refuse data whose expanded tree exceeds `MAX_SIZE` or `MAX_DEPTH` levels."""
    sizes: dict[int, int] = {}
    if _expanded_size(data, sizes, set(), 0, source) > MAX_SIZE:
        raise ScriptError(
            f"{source}: holds more than {MAX_SIZE:,} values and characters once its YAML aliases "
            "(*name) are expanded; a suite is far smaller: write repeated parts out, or split it"
        )


def _expanded_size(node: Any, sizes: dict[int, int], open_: set[int], depth: int, src: str) -> int:
    if isinstance(node, str):
        return max(1, len(node))
    if not isinstance(node, dict | list):
        return 1
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ScriptError(f"{src}: a YAML alias refers to a value that contains it")
    if depth > MAX_DEPTH:
        raise ScriptError(f"{src}: nested deeper than {MAX_DEPTH} levels, deeper than a suite is")
    open_.add(key)
    children = node.values() if isinstance(node, dict) else node
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_, depth + 1, src)
        if total > MAX_SIZE:
            break  # enough to refuse; the rest need not be counted
    open_.discard(key)
    sizes[key] = total
    return total


def read_text(path: Path, root: Path | None = None) -> str:
    """A suite file's text: inside `root` when one is given, and at most `MAX_FILE_BYTES`."""
    if root is not None:
        path = resolve_under(root, str(path))
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScriptError(
                f"{path}: {size:,} bytes, more than a suite file may be ({MAX_FILE_BYTES:,})"
            )
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ScriptError(
            f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start}); save suites as UTF-8"
        ) from None
