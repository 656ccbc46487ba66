"""Recorded exchanges with Voiceflow's open-source runtime, and a loopback server replaying them.

`ReplayRuntime` answers each request with the recorded answer, status, content type and body byte
for byte, after checking the request is the one recorded (method, path, JSON body): the client
under test makes a real HTTP round trip to something that answers exactly as the runtime did.
`replay_agent` sends one agent's exchanges through the MCP tools that way, in recorded order.

The goldens (`fixtures/real_runtime/summaries.json`) are what a model reads for each exchange;
after a deliberate change regenerate them with `python -m tests.real_runtime` and review the diff
line by line.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from mcp import Client
from mcp.types import CallToolResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.canary import CANARY_KEY
from tests.threaded_server import serve_in_thread
from vf_mcp.config import Settings
from vf_mcp.domain.turn import TurnResult
from vf_mcp.server import build_server
from vf_mcp.summary import render_turn

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
    request_headers: dict[str, str]
    request_body: str
    status: int
    content_type: str
    response_body: str
    match_body: bool = True

    @property
    def id(self) -> str:
        return f"{self.agent}-{self.number:02d}"

    @property
    def target(self) -> str:
        """The path with its query string, as recorded."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def is_v2_stream(self) -> bool:
        return self.path.startswith("/v2/project/")

    @property
    def key_is_recorded_difference(self) -> bool:
        """The recorded runtime ran in local mode and let bad keys through to version
        resolution; the emulator (and the hosted service) answer them 401."""
        key = self.request_headers.get("Authorization")
        return key is None or not key.startswith("VF.DM.")

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
                    request_headers=raw["request_headers"],
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


# -- replay through the MCP tools ---------------------------------------------------------------

GOLDENS = FIXTURES / "summaries.json"
# Refused by the tool before any request: the runtime's 400 for a partial PUT cannot happen.
REFUSED_LOCALLY = {"acme-16"}
# Requests the tools send differently, so only the recorded answer is replayed: the client leaves
# out `turn` (GET may return it, PUT refuses it), and `interact` sends no `config` (these two asked
# for every trace with `excludeTypes: []`: their block, flow and debug traces must stay quiet).
BODY_DIFFERS = {"acme-17", "pizza-12", "pizza-15"}
# The v2 stream route the open-source runtime lacks: covered by test_the_recorded_404_...
STREAM_ROUTE = {"acme-32"}


@dataclasses.dataclass
class Replayed:
    text: str
    minimal: str | None
    is_error: bool
    structured: dict[str, Any] | None


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def tool_call(exchange: Exchange) -> tuple[str, dict[str, Any]]:
    """The tool call a user of vf-mcp makes to send this exchange's request."""
    user_id, body = exchange.user_id, exchange.request_json
    if exchange.is_turn:
        return "interact", {"user_id": user_id, "action": body["action"]}
    if exchange.method == "GET":
        return "get_state", {"user_id": user_id}
    if exchange.method == "PUT":
        return "replace_state", {"user_id": user_id, "state": body}
    if exchange.method == "DELETE":
        return "delete_state", {"user_id": user_id}
    if exchange.method == "PATCH":
        return "update_variables", {"user_id": user_id, "variables": body}
    raise AssertionError(f"no tool sends {exchange.method} {exchange.path}")


def replayable(agent: str) -> list[Exchange]:
    return [e for e in load_exchanges(agent) if not e.is_v2beta1 and e.id not in STREAM_ROUTE]


async def replay_agent(agent: str) -> dict[str, Replayed]:
    """Every exchange of one agent, in recorded order, through one server (its memory carries)."""
    runtime = ReplayRuntime()
    results: dict[str, Replayed] = {}
    with serve_in_thread(runtime.app) as server:
        settings = Settings.validated(
            {"api_key": CANARY_KEY, "runtime_url": server.url, "max_retries": 0}
        )
        async with Client(build_server(settings)) as client:
            for exchange in replayable(agent):
                tool, arguments = tool_call(exchange)
                if exchange.id not in REFUSED_LOCALLY:
                    matched = dataclasses.replace(
                        exchange, match_body=exchange.id not in BODY_DIFFERS
                    )
                    runtime.expect(matched)
                sent = len(runtime.seen)
                version = _version_header(exchange)
                if version is not None:
                    arguments["environment"] = version
                result = await client.call_tool(tool, arguments)
                assert not runtime.mismatches, runtime.mismatches
                expected_requests = 0 if exchange.id in REFUSED_LOCALLY else 1
                assert len(runtime.seen) - sent == expected_requests, exchange.id
                structured = result.structured_content
                minimal = None
                if tool == "interact" and not result.is_error:
                    minimal = render_turn(TurnResult.model_validate(structured), "minimal")
                results[exchange.id] = Replayed(
                    text_of(result), minimal, bool(result.is_error), structured
                )
    return results


def _version_header(exchange: Exchange) -> str | None:
    version = exchange.request_headers.get("versionID")
    return None if version in (None, "development") else str(version)


CASES = [e for e in all_exchanges() if not e.is_v2beta1 and e.id not in STREAM_ROUTE]


def write_goldens() -> None:
    results: dict[str, Replayed] = {}
    for agent in ("acme", "pizza"):
        results.update(anyio.run(replay_agent, agent))
    titles = {e.id: e.title for e in all_exchanges()}
    out = {
        key: {"title": titles[key], "text": r.text, **({"minimal": r.minimal} if r.minimal else {})}
        for key, r in results.items()
    }
    GOLDENS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(out)} goldens to {GOLDENS}", file=sys.stderr)


if __name__ == "__main__":
    write_goldens()
