"""Raw SSE framing for the emulator tests: split on the framing only, as the wire is written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SSEEvent:
    event: str | None
    id: str | None
    data: str | None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data, strict=False)


def parse_sse(raw: bytes) -> list[SSEEvent]:
    """Split on the SSE framing only (\\n), never on other control characters."""
    events = []
    for block in raw.decode("utf-8").split("\n\n"):
        if not block:
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            assert name in ("event", "id", "data"), line
            fields[name] = value
        events.append(SSEEvent(fields.get("event"), fields.get("id"), fields.get("data")))
    return events


def stream_traces(raw: bytes) -> list[dict[str, Any]]:
    return [e.json() for e in parse_sse(raw) if e.event == "trace"]
