"""``PUT /state/user/{userID}`` validation, worded as the runtime's schema validator words it.

The runtime checks the body against a JSON schema with every error collected, and answers
``400 {"errors": {"": {"message": "<all errors, comma-separated>"}}}``. The schema: an object
with exactly ``stack`` (an array of frames), ``storage`` and ``variables`` (objects), all three
required; a frame is an object that needs a string ``diagramID`` and may have a string
``nodeID``, objects ``storage``/``variables`` and an array of objects ``commands``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

STATE_KEYS = ("stack", "storage", "variables")
_FRAME_FIELDS: tuple[tuple[str, str], ...] = (
    ("nodeID", "string"),
    ("diagramID", "string"),
    ("storage", "object"),
    ("commands", "array"),
    ("variables", "object"),
)


def _is(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, str)


def _frame_errors(frame: Any, path: str) -> Iterator[str]:
    if not isinstance(frame, dict):
        yield f"{path} should be object"
        return
    if "diagramID" not in frame:
        yield f"{path} should have required property 'diagramID'"
    for name, kind in _FRAME_FIELDS:
        if name not in frame:
            continue
        value = frame[name]
        if not _is(value, kind):
            yield f"{path}.{name} should be {kind}"
        elif name == "commands":
            for index, command in enumerate(value):
                if not isinstance(command, dict):
                    yield f"{path}.commands[{index}] should be object"


def state_errors(body: Any) -> list[str]:
    """Every schema violation of a PUT body, in the validator's order (empty when valid)."""
    if not isinstance(body, dict):
        return ["data should be object"]
    errors = [
        f"data should have required property '{key}'" for key in STATE_KEYS if key not in body
    ]
    errors.extend(
        "data should NOT have additional properties" for key in body if key not in STATE_KEYS
    )
    stack = body.get("stack")
    if "stack" in body:
        if not isinstance(stack, list):
            errors.append("data.stack should be array")
        else:
            for index, frame in enumerate(stack):
                errors.extend(_frame_errors(frame, f"data.stack[{index}]"))
    for key in ("storage", "variables"):
        if key in body and not isinstance(body[key], dict):
            errors.append(f"data.{key} should be object")
    return errors


def validation_message(errors: list[str]) -> str:
    return ", ".join(errors)
