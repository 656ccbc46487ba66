"""Trace shapes as the runtime writes them: key order, slate text, debug wording, ids."""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any

Trace = dict[str, Any]

DEFAULT_MESSAGE_DELAY_MS = 1000
DEBUG_MESSAGE_LIMIT = 500
_SSML_TAG = re.compile(r"</?[^>]+(>|$)")
_ALPHABET = string.ascii_lowercase + string.digits


def new_id(length: int = 25) -> str:
    """A cuid-looking id (message ids, conversation ids)."""
    return "c" + "".join(secrets.choice(_ALPHABET) for _ in range(length - 1))


def slate_id() -> str:
    """A short id like the runtime's ``cuid.slug()`` for slate content."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(7))


def trace(kind: str, payload: Any, time_ms: int, **extra: Any) -> Trace:
    # `time` first, then type and payload: the order every recorded trace has (but one).
    return {"time": time_ms, "type": kind, "payload": payload, **extra}


def slate(text: str) -> list[dict[str, Any]]:
    return [{"children": [{"text": text}]}]


def text_payload(message: str, *, delay: int | None = None, ai: bool = False) -> dict[str, Any]:
    wait = DEFAULT_MESSAGE_DELAY_MS if delay is None else delay
    payload: dict[str, Any] = {
        "slate": {"id": slate_id(), "content": slate(message), "messageDelayMilliseconds": wait},
        "message": message,
        "delay": wait,
    }
    if ai:
        payload["ai"] = True
    return payload


def debug_payload(message: str, kind: str | None = None) -> dict[str, Any]:
    if len(message) > DEBUG_MESSAGE_LIMIT:
        message = message[: DEBUG_MESSAGE_LIMIT - 3] + "..."
    # The runtime builds {type, message} and JSON drops an undefined type.
    return {"type": kind, "message": message} if kind is not None else {"message": message}


def entity_filling(entity: str, request: Mapping[str, Any], time_ms: int) -> Trace:
    # The dialog manager appends this trace itself, with `time` last: the one exception.
    return {
        "type": "entity-filling",
        "payload": {"entityToFill": entity, "intent": dict(request)},
        "time": time_ms,
    }


def strip_ssml(text: str) -> str:
    """What the legacy interact's filter does to speak messages: drop anything tag-shaped."""
    return _SSML_TAG.sub("", text)


def js_json(value: Any) -> str:
    """``JSON.stringify`` as a debug message shows a value (``undefined`` for a missing one)."""
    return "undefined" if value is _MISSING else json.dumps(value, ensure_ascii=False)


def change_summary(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """The runtime's ``evaluating code`` debug message for a variable diff."""
    lines = []
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name, _MISSING), after.get(name, _MISSING)
        if old == new and type(old) is type(new):
            continue
        lines.append(f"`{{{name}}}`: `{_truncate(js_json(old))}` => `{_truncate(js_json(new))}`")
    if not lines:
        return "evaluating code - no variable changes"
    return "evaluating code - changes:\n" + "\n".join(lines)


def _truncate(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Missing:
    def __repr__(self) -> str:
        return "undefined"


_MISSING: Any = _Missing()
MISSING: Any = _MISSING
