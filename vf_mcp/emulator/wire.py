"""Bytes on the wire: JSON with raw control characters, SSE frames, Voiceflow error bodies."""

from __future__ import annotations

import html
import json
import re
import secrets
import string
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

# Every escape json.dumps can produce, so an escaped backslash ("\\\\") is consumed as one token
# and the "u0001" after it is never mistaken for an escape of its own.
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SHORT_CONTROLS = {"b": "\b", "f": "\f", "t": "\t"}
_KEEP_ESCAPED = {0x0A, 0x0D}  # SSE framing is line-based, so newlines must stay escaped


def _unescape_control(match: re.Match[str]) -> str:
    token = match.group(1)
    if token in _SHORT_CONTROLS:
        return _SHORT_CONTROLS[token]
    if token[0] == "u":
        code = int(token[1:], 16)
        if code < 0x20 and code not in _KEEP_ESCAPED:
            return chr(code)
    return match.group(0)


def dumps_raw_controls(value: Any) -> str:
    """Compact JSON with U+0000-U+001F (except \\n, \\r) written raw, as Voiceflow's stream does.

    Strict JSON parsers reject the result; that is the point (clients must be lenient).
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _ESCAPE.sub(_unescape_control, text)


def sse_frame(event: str, event_id: int, data: str | None = None) -> bytes:
    lines = [f"event: {event}", f"id: {event_id}"]
    if data is not None:
        lines.append(f"data: {data}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def response_builder_body(code: int, data: Any) -> dict[str, Any]:
    """Voiceflow's ResponseBuilder error body: ``{code, status, dateTime, timestamp, data}``."""
    now = datetime.now(UTC)
    return {
        "code": code,
        "status": HTTPStatus(code).phrase,
        "dateTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "timestamp": int(now.timestamp() * 1000),
        "data": data,
    }


def validation_body(errors: dict[str, str]) -> dict[str, Any]:
    """ResponseBuilder's 400 "validation": the error's data replaces the envelope entirely."""
    return {"errors": {field: {"message": message} for field, message in errors.items()}}


def verror_body(message: str) -> dict[str, Any]:
    alphabet = string.ascii_letters + string.digits
    request_id = "".join(secrets.choice(alphabet) for _ in range(9))
    return {"name": "verror", "message": message, "requestID": request_id}


def crash_body(message: str) -> dict[str, Any]:
    """The runtime's body for a handler that threw: no ``timestamp``, unlike the hosted 401s."""
    now = datetime.now(UTC)
    return {
        "code": 500,
        "status": HTTPStatus(500).phrase,
        "dateTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": message,
    }


def express_not_found(method: str, path: str) -> str:
    """Express's default 404 page for a route it does not have (byte for byte)."""
    shown = html.escape(path, quote=True)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        "<title>Error</title>\n"
        "</head>\n"
        "<body>\n"
        f"<pre>Cannot {method} {shown}</pre>\n"
        "</body>\n"
        "</html>\n"
    )
