"""Every failure a tool answers reaches the clients people use as an error result whose text is the
server's one line: the TypeScript SDK (behind Claude Code, Cursor and the MCP Inspector), the
Python SDK, and the Inspector CLI over HTTP.

The TypeScript SDK checks structured content against the tool's output schema on error results
too, and throws when it does not match; the Python SDK does not, which is why only the first shows
a wrong error envelope. Each error kind a tool produces (`vf_mcp.domain.errors.ErrorKind` but
`internal`, which no tool answers: nothing raises the bare base class) and each kind of argument
error is made once, against the emulator, a runtime that is not there and a store that is not
there. With the envelope this replaced (`{"error": {...}}` as structured content) every case here
threw "Structured content does not match the tool's output schema" in the TypeScript SDK.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.node_tools import CLIENTS, require, system_node
from tests.processes import ROOT, free_port, http_server, server_env
from tests.services import redis_server
from tests.test_clients import inspector_http
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.server import build_server
from vf_mcp.tools.errors import ERROR_META_KEY

TS_ERRORS = CLIENTS / "ts_errors.mjs"
NEW_ID = re.compile(r"vf-mcp-[0-9a-f]{12}")


@dataclass(frozen=True)
class Case:
    id: str
    tool: str
    arguments: dict[str, Any]
    kind: str
    says: str
    """A piece of the server's own message the text must hold."""
    server: str = "emulator"
    fault: dict[str, Any] = field(default_factory=dict)
    """A fault the emulator answers this case's `user_id` with, every time."""
    ran: bool = False
    """`may_have_run`: a 5xx or a silent runtime may have run the turn."""


LAUNCH = {"launch": True}
NOT_FOUND = {"status": 404, "body": {"code": 404, "status": "Not Found", "data": "No model"}}
STATUS_401, STATUS_429, FIVE = {"status": 401}, {"status": 429}, {"status": 503}
SLOW = {"latency_ms": 1200}  # the servers wait 0.3 s (VOICEFLOW_TIMEOUT)
GONE = "no_runtime"

CASES = [
    # Argument errors: refused before anything is sent.
    Case("unknown-argument", "interact", {"mesage": "hi"}, "invalid_input", "did you mean"),
    Case("enum", "interact", {"launch": True, "verbosity": "loud"}, "invalid_input", "loud"),
    Case("type", "interact", {"message": 42}, "invalid_input", "must be a string"),
    Case("pattern", "interact", {"user_id": "a/b", "launch": True}, "invalid_input", '"a/b"'),
    Case("length", "interact", {"user_id": "u" * 5000}, "invalid_input", "at most 100"),
    Case("missing", "get_state", {}, "invalid_input", "user_id is required"),
    # vf-mcp's own refusals.
    Case("no-input", "interact", {}, "invalid_input", "Give exactly one of"),
    Case(
        "message-and-launch",
        "interact",
        {"user_id": "k-both", "message": "hi", "launch": True},
        "invalid_input",
        "Give exactly one of",
    ),
    Case(
        "unknown-button",
        "interact",
        {"user_id": "k-menu", "choice": "Order pizza"},
        "invalid_input",
        "No button is labelled 'Order pizza'",
    ),
    Case("unknown-run", "get_run", {"run_id": "nope"}, "invalid_input", "No run 'nope'"),
    Case(
        "partial-state",
        "replace_state",
        {"user_id": "k-part", "state": {"variables": {}}},
        "invalid_input",
        "stack",
    ),
    Case(
        "no-project-id",
        "emit_event",
        {"session_id": "k-event", "event": "ping"},
        "configuration",
        "VOICEFLOW_PROJECT_ID is not set",
    ),
    Case(
        "import-without-project",
        "import_transcripts",
        {},
        "configuration",
        "import_transcripts needs VOICEFLOW_PROJECT_ID",
    ),
    # The runtime's answers: each case's user is answered with its fault, every time.
    Case("404", "interact", LAUNCH | {"user_id": "k-404"}, "not_found", "404", fault=NOT_FOUND),
    Case("401", "interact", LAUNCH | {"user_id": "k-401"}, "unauthorized", "401", fault=STATUS_401),
    Case("400", "interact", LAUNCH | {"user_id": "k-400", "environment": "nope"}, "refused", "400"),
    Case("429", "interact", LAUNCH | {"user_id": "k-429"}, "rate_limited", "429", fault=STATUS_429),
    Case(
        "503",
        "interact",
        LAUNCH | {"user_id": "k-503"},
        "upstream",
        "503",
        fault=FIVE,
        ran=True,
    ),
    Case(
        "slow",
        "interact",
        LAUNCH | {"user_id": "k-slow"},
        "timeout",
        "answer",
        fault=SLOW,
        ran=True,
    ),
    # What is not there.
    Case("gone-turn", "interact", LAUNCH | {"user_id": "k-t"}, "unavailable", "connect", GONE),
    Case("gone-state", "get_state", {"user_id": "k-s"}, "unavailable", "connect", GONE),
    Case("no-store", "get_run", {"run_id": "run-0123456789abcdef"}, "store", "Redis", "no_store"),
    # A turn another worker left pending (`seed_pending`): still running, or cut off with it.
    Case(
        "turn-running",
        "interact",
        LAUNCH | {"user_id": "k-running"},
        "turn_running",
        "is still running",
        "pending",
    ),
    Case("turn-lost", "get_state", {"user_id": "k-lost"}, "turn_lost", "lost in flight", "pending"),
]
SETUP = {"emulator": [("setup-menu", "interact", {"user_id": "k-menu", "launch": True})]}


def faults(emulator: Emulator) -> None:
    for case in CASES:
        if case.fault:
            match = {"path_contains": f"/user/{case.arguments['user_id']}/"}
            emulator.faults.add(FaultPlan(match=match, times=-1, **case.fault))


def calls(server: str) -> list[dict[str, Any]]:
    setup = [{"id": i, "tool": t, "arguments": a} for i, t, a in SETUP.get(server, [])]
    mine = [c for c in CASES if c.server == server]
    return setup + [{"id": c.id, "tool": c.tool, "arguments": c.arguments} for c in mine]


@dataclass(frozen=True)
class Servers:
    """Where each server of the matrix reaches: the emulator, or a port nobody listens on."""

    runtime: str
    redis: str
    dead: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")

    def env(self, server: str) -> dict[str, str]:
        quick = {"VOICEFLOW_MAX_RETRIES": "0", "VOICEFLOW_TIMEOUT": "0.3"}
        if server == "no_runtime":
            return server_env(f"http://{self.dead}", **quick)
        if server == "no_store":
            return server_env(self.runtime, VF_MCP_STORE_URL=f"redis://{self.dead}/0", **quick)
        if server == "pending":
            return server_env(self.runtime, VF_MCP_STORE_URL=self.redis, **quick)
        return server_env(self.runtime, **quick)

    def settings(self, server: str) -> Settings:
        env = self.env(server)
        return Settings.validated(
            {
                "api_key": CANARY_KEY,
                "runtime_url": env["VOICEFLOW_RUNTIME_URL"],
                "max_retries": 0,
                "timeout": 0.3,
                "store_url": env.get("VF_MCP_STORE_URL"),
            }
        )


SERVERS = ("emulator", "no_runtime", "no_store", "pending")


@pytest.fixture(scope="module")
def servers(emulator_session: Emulator) -> Iterator[Servers]:
    emulator_session.reset()
    faults(emulator_session)
    with redis_server() as redis_url:
        yield Servers(runtime=emulator_session.url, redis=redis_url)
    emulator_session.reset()


def seed_pending(redis_url: str) -> None:
    """Turns another worker sent and left pending: one it still runs (its lease held), one cut
    off with it (no lease). Each client's run settles them, so each run seeds them again."""
    import anyio

    from vf_mcp.domain.conversation import ConversationMemory, PendingTurn
    from vf_mcp.store.redis import redis_store

    async def seed() -> None:
        store = redis_store(redis_url, ttl_seconds=600)
        try:
            for user, alive in (("k-running", True), ("k-lost", False)):
                pending = PendingTurn(
                    request={"user_id": user, "launch": True},
                    sent_at=time.time(),
                    worker="elsewhere:1",
                    turn_id=user,
                )
                await store.memory.save(user, ConversationMemory(pending=pending))
                if alive:
                    await store.leases.take(user, user, 600)
        finally:
            await store.aclose()

    anyio.run(seed)


@pytest.fixture(scope="module")
def typescript(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the TypeScript SDK read for every case, in one Node process."""
    require(TS_ERRORS, "the TypeScript error-matrix script")
    plan = {
        "servers": [
            {
                "name": server,
                "command": sys.executable,
                "args": ["-m", "vf_mcp"],
                "env": servers.env(server),
                "cwd": str(ROOT),
                "calls": calls(server),
            }
            for server in SERVERS
        ]
    }
    seed_pending(servers.redis)
    plan_file = Path(tmp_path_factory.mktemp("ts-errors")) / "plan.json"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    ran = subprocess.run(
        [system_node(), str(TS_ERRORS), str(plan_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=CLIENTS,
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert CANARY_SECRET not in ran.stdout + ran.stderr
    return {r["id"]: r for r in json.loads(ran.stdout)["results"]}


@pytest.fixture(scope="module")
def python(servers: Servers) -> dict[str, Any]:
    """What the Python SDK read for every case (in memory: the same server code)."""
    import anyio

    seed_pending(servers.redis)

    async def run() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for server in SERVERS:
            async with Client(build_server(servers.settings(server))) as client:
                for planned in calls(server):
                    result = await client.call_tool(planned["tool"], planned["arguments"])
                    seen[planned["id"]] = result
        return seen

    return anyio.run(run)


def same_text(text: str) -> str:
    """The text with what differs between two runs masked: the conversation id a failed first turn
    names (a new one per call), and when a pending turn was sent."""
    text = NEW_ID.sub("vf-mcp-<new>", text)
    return re.sub(r"sent (\d+ s ago|at \d\d:\d\d:\d\d UTC)", "sent <when>", text)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_typescript_sdk_reads_the_servers_line(
    typescript: dict[str, Any], python: dict[str, Any], case: Case
) -> None:
    seen = typescript[case.id]
    assert seen["threw"] is None, seen["threw"]  # it resolved: no schema complaint thrown
    assert seen["isError"] is True
    assert seen["structuredContent"] is None
    (text,) = seen["text"]
    assert "\n" not in text and case.says in text
    assert seen["error"] == {"kind": case.kind, "message": text, "may_have_run": case.ran}
    # The Python SDK reads the same line, with the same envelope.
    mine = python[case.id]
    assert mine.is_error and mine.structured_content is None
    assert same_text(mine.content[0].text) == same_text(text)
    assert mine.meta[ERROR_META_KEY]["kind"] == case.kind


def test_every_server_of_the_matrix_listed_its_output_schemas(typescript: dict[str, Any]) -> None:
    """The SDK checks results only against schemas it has listed: each server listed them all."""
    for server in SERVERS:
        listed = typescript[f"{server}:tools"]
        assert listed["listed"] >= 10 and listed["withSchema"] == listed["listed"]
    assert typescript["setup-menu"]["isError"] is False  # the menu's buttons, for unknown-button


def test_the_matrix_covers_every_kind_a_tool_produces() -> None:
    from typing import get_args

    from vf_mcp.domain.errors import ErrorKind

    assert {c.kind for c in CASES} == set(get_args(ErrorKind)) - {"internal"}


# --- the MCP Inspector CLI over streamable HTTP ------------------------------------------------


def test_the_inspector_reads_the_servers_line_over_http(emulator: Emulator) -> None:
    with http_server(server_env(emulator.url)) as (base, _process):

        def interact(*args: str) -> dict[str, Any]:
            pairs = [("--tool-arg", a) for a in args]
            flat = [item for pair in pairs for item in pair]
            return inspector_http(
                f"{base}/mcp", "--method", "tools/call", "--tool-name", "interact", *flat
            )

        typo = interact("mesage=hi")
        # Over HTTP one server holds the conversation across Inspector processes, so a button
        # of the last turn is known (over stdio each --cli call starts a new server).
        interact("user_id=k-inspector", "launch=true")
        pizza = interact("user_id=k-inspector", "choice=Order pizza")
    assert typo["isError"] is True
    assert typo["content"] == [
        {"type": "text", "text": "unknown argument 'mesage' (did you mean 'message'?)"}
    ]
    assert typo["_meta"][ERROR_META_KEY]["kind"] == "invalid_input"
    assert pizza["isError"] is True
    (said,) = pizza["content"]
    assert said["text"].startswith("No button is labelled 'Order pizza'; valid choices: 1) Track")
    assert pizza["_meta"][ERROR_META_KEY]["kind"] == "invalid_input"
    assert "structuredContent" not in pizza
