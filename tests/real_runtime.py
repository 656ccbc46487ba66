"""Recorded exchanges with Voiceflow's open-source runtime, and a loopback server replaying them.

`ReplayRuntime` answers each request with the recorded answer, status, content type and body byte
for byte, after checking the request is the one recorded (method, path, JSON body): the client
under test makes a real HTTP round trip to something that answers exactly as the runtime did.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FIXTURES = Path(__file__).parent / "fixtures" / "real_runtime"
AGENTS = ("acme", "pizza")


@dataclass(frozen=True)
class Exchange:
    agent: str
    number: int
    title: str
    method: str
    path: str
    query: str
    request_body: str
    status: int
    content_type: str
    response_body: str
    match_body: bool = True

    @property
    def id(self) -> str:
        return f"{self.agent}-{self.number:02d}"

    @property
    def user_id(self) -> str | None:
        parts = self.path.split("/")
        return parts[3] if self.path.startswith("/state/user/") else None

    @property
    def request_json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    @property
    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None

    @property
    def is_turn(self) -> bool:
        return self.method == "POST" and self.path.endswith("/interact")

    @property
    def is_v2beta1(self) -> bool:
        return self.path.startswith("/v2beta1/")

    @property
    def traces(self) -> list[dict[str, Any]] | None:
        """The trace list of a successful turn, verbose or not."""
        if not self.is_turn or self.status != 200:
            return None
        body = self.response_json
        return body["trace"] if isinstance(body, dict) else body


def load_exchanges(agent: str) -> list[Exchange]:
    exchanges = []
    with (FIXTURES / f"{agent}-exchanges.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            raw = json.loads(line)
            url = urlsplit(raw["path"])
            exchanges.append(
                Exchange(
                    agent=agent,
                    number=number,
                    title=raw["title"],
                    method=raw["method"],
                    path=url.path,
                    query=url.query,
                    request_body=raw["request_body"] or "",
                    status=raw["status"],
                    content_type=raw["response_headers"].get("content-type", ""),
                    response_body=raw["response_body"] or "",
                )
            )
    return exchanges


def all_exchanges() -> list[Exchange]:
    return [e for agent in AGENTS for e in load_exchanges(agent)]


class ReplayMismatch(AssertionError):
    """The client sent something other than the recorded request."""


class ReplayRuntime:
    """An ASGI app answering queued exchanges in order, each only to its own request."""

    def __init__(self) -> None:
        self.queue: deque[Exchange] = deque()
        self.mismatches: list[str] = []
        self.seen: list[tuple[str, str]] = []
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=methods)])

    def expect(self, *exchanges: Exchange) -> None:
        self.queue.extend(exchanges)

    async def _answer(self, request: Request) -> Response:
        self.seen.append((request.method, request.url.path))
        if not self.queue:
            return self._refuse(f"unexpected {request.method} {request.url.path}")
        exchange = self.queue.popleft()
        body = (await request.body()).decode()
        sent = json.loads(body) if body else None
        if (request.method, request.url.path) != (exchange.method, exchange.path):
            return self._refuse(
                f"{exchange.id} expected {exchange.method} {exchange.path}, "
                f"got {request.method} {request.url.path}"
            )
        if exchange.match_body and sent != exchange.request_json:
            return self._refuse(f"{exchange.id} expected body {exchange.request_json}, got {sent}")
        return Response(
            exchange.response_body.encode(),
            status_code=exchange.status,
            headers={"content-type": exchange.content_type},
        )

    def _refuse(self, why: str) -> Response:
        self.mismatches.append(why)
        # A 599 is no status the client maps to anything it would quietly accept.
        return Response(why, status_code=599)
