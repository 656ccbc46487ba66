"""One caller can never act as another, and no caller can exhaust the server: the attacks of an
independent assessment, replayed against a real HTTP server (with and without Redis)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from tests.a2a_helpers import caller
from tests.a2a_helpers import message as a2a_message
from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.processes import as_caller, http_server, server_env
from tests.services import redis_server
from vf_mcp.callers import namespace_for
from vf_mcp.emulator import Emulator, running_emulator

pytestmark = pytest.mark.anyio

TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-fedcba9876543210"
NS_A = namespace_for(TOKEN_A)
NS_B = namespace_for(TOKEN_B)
JSON_RPC = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
READ_TIMEOUT_S = 1
MAX_CONNECTIONS = 40
GET_STATE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "get_state", "arguments": {"user_id": f"{NS_A}.victim"}},
}
BOMB = "\n".join(
    [
        "name: bomb",
        "tests:",
        "- id: t",
        "  turns: [{launch: true}]",
        "variables:",
        "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]",
        *(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)),
    ]
)


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(request: pytest.FixtureRequest, emulator_session: Emulator) -> Iterator[str]:
    """An HTTP server with tokens A and B (in-process store, or Redis), slow clients cut at 1 s."""
    extra = {
        "VF_MCP_AUTH_TOKENS": f"{TOKEN_A},{TOKEN_B}",
        "VF_MCP_HTTP_READ_TIMEOUT": str(READ_TIMEOUT_S),
        "VF_MCP_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    if request.param == "memory":
        with http_server(server_env(emulator_session.url, **extra)) as (base, _):
            yield base
        return
    with (
        redis_server() as url,
        http_server(server_env(emulator_session.url, VF_MCP_STORE_URL=url, **extra)) as (base, _),
    ):
        yield base


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize(
    "first",
    ["Basic eA==", f"Bearer {TOKEN_A}", "Bearer not-a-token-0000000000", f"Bearer {TOKEN_B}"],
)
async def test_a_request_with_two_authorization_headers_never_reaches_a_tool(
    server: str, emulator: Emulator, first: str
) -> None:
    headers = [*JSON_RPC.items(), ("Authorization", first), ("Authorization", f"Bearer {TOKEN_B}")]
    async with httpx.AsyncClient(timeout=10) as http:
        mcp = await http.post(f"{server}/mcp", headers=headers, json=GET_STATE)
        a2a = await http.post(f"{server}/a2a/default", headers=headers, json=GET_STATE)
    line = (
        "The request carried 2 Authorization headers; send exactly one "
        "('Authorization: Bearer <token>')"
    )
    assert (mcp.status_code, a2a.status_code) == (401, 401)
    assert mcp.json()["error_description"] == line
    # The A2A endpoint's refusal is a JSON-RPC error, whose message the A2A SDKs show.
    assert a2a.json()["error"]["message"] == line
    assert emulator.requests == []  # nothing reached the runtime


async def test_runs_past_the_limit_cannot_be_had_with_a_fresh_first_header(server: str) -> None:
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "start_run", "arguments": {"script": "name: s\ntests: []"}},
    }
    async with httpx.AsyncClient(timeout=10) as http:
        answers = [
            await http.post(
                f"{server}/mcp",
                headers=[
                    *JSON_RPC.items(),
                    ("Authorization", f"Bearer random-{n:020d}"),
                    ("Authorization", f"Bearer {TOKEN_B}"),
                ],
                json=call,
            )
            for n in range(20)
        ]
    assert {a.status_code for a in answers} == {401}


async def test_naming_another_callers_namespace_reaches_only_your_own(
    server: str, emulator: Emulator
) -> None:
    async with as_caller(server, TOKEN_A) as alice, as_caller(server, TOKEN_B) as mallory:
        await alice.call_tool("interact", {"user_id": "victim", "launch": True})
        await alice.call_tool("update_variables", {"user_id": "victim", "variables": {"x": 1}})
        peek = await mallory.call_tool("get_state", {"user_id": f"{NS_A}.victim"})
        hijack = await mallory.call_tool("interact", {"user_id": f"{NS_A}.victim", "choice": 1})
        await mallory.call_tool(
            "update_variables", {"user_id": f"{NS_A}.victim", "variables": {"x": 666}}
        )
        still_mine = await alice.call_tool("get_state", {"user_id": "victim"})
    assert peek.structured_content["exists"] is False
    assert hijack.is_error and "knows of no buttons" in text_of(hijack)
    assert still_mine.structured_content["state"]["variables"]["x"] == 1
    touched = {r.path.split("/")[3] for r in emulator.requests if r.path.startswith("/state/user/")}
    assert f"{NS_A}.victim" in touched  # Alice's own calls
    assert f"{NS_B}.{NS_A}.victim" in touched  # Mallory's, in Mallory's namespace
    assert all(u.startswith((f"{NS_A}.victim", f"{NS_B}.")) for u in touched)


async def test_a_suite_run_stays_in_its_callers_namespace(server: str, emulator: Emulator) -> None:
    suite = (
        f"name: s\nuser_id_prefix: '{NS_A}.'\nnew_user_per_test: true\n"
        "tests:\n- id: t\n  turns: [{launch: true}]\n"
    )
    async with as_caller(server, TOKEN_B) as mallory:
        ran = await mallory.call_tool("run_conversation", {"script": suite})
    assert not ran.is_error, text_of(ran)
    users = {r.path.split("/")[3] for r in emulator.requests if "/user/" in r.path}
    assert users and all(u.startswith(f"{NS_B}.") for u in users), users


async def test_an_alias_bomb_is_refused_while_the_server_keeps_answering(server: str) -> None:
    latencies: list[float] = []
    done = anyio.Event()

    async def probe(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            started = time.perf_counter()
            assert (await http.get(f"{server}/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)
            await anyio.lowlevel.checkpoint()

    async with httpx.AsyncClient(timeout=10) as http, anyio.create_task_group() as group:
        group.start_soon(probe, http)
        async with as_caller(server, TOKEN_B) as mallory:
            inline = await mallory.call_tool("run_conversation", {"script": BOMB})
            background = await mallory.call_tool("start_run", {"script": BOMB})
        done.set()
    for refused in (inline, background):
        assert refused.is_error
        assert "YAML aliases (*name) are expanded" in text_of(refused)
        assert "\n" not in text_of(refused)
    assert latencies and max(latencies) < 3.0  # it froze for 22 s; a busy machine, not 3 s


async def test_get_on_the_mcp_endpoint_is_405_so_no_idle_stream_is_held(server: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(
            f"{server}/mcp",
            headers={"Authorization": f"Bearer {TOKEN_A}", "Accept": "text/event-stream"},
        )
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("header", "value"),
    [("Host", "127.0.0.1:1@evil.com"), ("Origin", "http://127.0.0.1:1@evil.com")],
)
async def test_a_host_or_origin_with_more_than_host_and_port_is_refused(
    server: str, header: str, value: str
) -> None:
    headers = {**JSON_RPC, "Authorization": f"Bearer {TOKEN_A}", header: value}
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{server}/mcp", headers=headers, json=GET_STATE)
    assert answer.status_code == 400
    assert answer.text.startswith(f"Invalid {header} header")


def _read_until_closed(sock: socket.socket, limit_s: float) -> bytes:
    """What the server sent before closing `sock` (fails the test after `limit_s`)."""
    sock.settimeout(limit_s)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_connections_that_send_headers_slowly_are_closed(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    sockets = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        for n, sock in enumerate(sockets):
            if n % 2:  # half send part of a request's headers, half nothing at all
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        for sock in sockets:
            assert _read_until_closed(sock, limit_s=READ_TIMEOUT_S + 5) == b""
        assert time.monotonic() - started < READ_TIMEOUT_S + 5
    finally:
        for sock in sockets:
            sock.close()


def test_a_body_still_coming_after_its_answer_cannot_hold_the_connection(server: str) -> None:
    # Answered before their body was read (a health check carrying one, a request the token
    # gate refuses): the body then trickles, and must not keep the connection past the deadline.
    host, port = server.removeprefix("http://").split(":")
    starts = [
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nab",
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000000\r\n\r\n{",
    ]
    for start in starts:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(start)
            sock.settimeout(READ_TIMEOUT_S + 5)
            answer = sock.recv(4096)
            assert answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 401")), answer
            sock.sendall(b"x")  # a trickle: one byte now, none after
            # The rest of the answer, then the close; a TimeoutError fails the test if the
            # server keeps the connection past the deadline.
            _read_until_closed(sock, limit_s=READ_TIMEOUT_S + 5)


def test_idle_connections_are_reaped_when_they_crowd_the_cap(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(MAX_CONNECTIONS * 3 // 4)]
    try:
        for sock in idle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # Kept alive, then idle: over half the cap, so each gets the read deadline, not 75 s.
        for sock in idle:
            _read_until_closed(sock, limit_s=READ_TIMEOUT_S + 5)
        with httpx.Client(timeout=10) as http:
            assert http.get(f"{server}/healthz").status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_body_that_stalls_is_answered_408(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN_A}\r\n".encode()
            + b"Content-Length: 100\r\n\r\n{"
        )
        answer = _read_until_closed(sock, limit_s=READ_TIMEOUT_S + 5)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"Request body not received within 1 s" in answer


LEAKY_AGENT = f"""
project_id: 64f1a00000000000000000aa
name: Leaky
start: welcome
variables:
  stolen: "{CANARY_KEY}"
nodes:
  welcome:
    steps:
      - type: text
        message: "My key is {CANARY_KEY} and a token is {TOKEN_A}."
      - type: choice
        buttons:
          - label: "Use {TOKEN_B}"
            goto: welcome
"""


async def test_credentials_an_agent_says_are_masked_in_every_result(tmp_path: Path) -> None:
    agent = tmp_path / "leaky.yaml"
    agent.write_text(LEAKY_AGENT)
    seen: list[str] = []
    with running_emulator([agent]) as leaky:
        env = server_env(leaky.url, VF_MCP_AUTH_TOKENS=f"{TOKEN_A},{TOKEN_B}")
        with http_server(env) as (base, process):
            async with as_caller(base, TOKEN_A) as alice:
                for name, arguments in (
                    ("interact", {"user_id": "leak", "launch": True}),
                    ("transcript", {"user_id": "leak"}),
                    ("get_state", {"user_id": "leak"}),
                    (
                        "run_conversation",
                        {"script": "name: s\ntests: [{id: t, turns: [{launch: true}]}]"},
                    ),
                ):
                    result = await alice.call_tool(name, arguments)
                    assert not result.is_error, (name, text_of(result))
                    seen.append(result.model_dump_json())
            async with caller(base, token=TOKEN_A) as agent_client:
                task = await agent_client.send(a2a_message("hello"))
                seen.append(str(task))
            process.terminate()
            out, err = process.communicate(timeout=10)
    seen += [out.decode(), err.decode()]
    assert "My key is VF.DM.*** and a token is ***." in seen[0]
    for item in seen:
        for secret in (CANARY_SECRET, TOKEN_A, TOKEN_B):
            assert secret not in item


ODD_TOKEN = 'token-c-"quoted"-back\\slash/ü-0123456789'
"""A token JSON escapes (`\\"`, `\\\\`, `\\u00fc`): the runtime's body holds it escaped."""
STREAMING_AGENT_ID = "64f1a00000000000000000ab"
CHUNK_SIZES = range(5, 17)


def streaming_leaky_agent() -> str:
    welcome = [
        {"type": "text", "message": f"The odd token is {ODD_TOKEN}."},
        # The same answer in pieces of 5 to 16 characters: the key and the token are cut at
        # every place, a piece holding the key's start whole or in part.
        *(
            {
                "type": "knowledge",
                "fallback": f"My key is {CANARY_KEY} and a token is {TOKEN_A}.",
                "chunk_chars": size,
            }
            for size in CHUNK_SIZES
        ),
    ]
    agent = {
        "project_id": STREAMING_AGENT_ID,
        "name": "Leaky stream",
        "start": "welcome",
        "nodes": {"welcome": {"steps": welcome}},
    }
    return yaml.safe_dump(agent, allow_unicode=True)


async def test_credentials_an_agent_streams_cut_in_pieces_or_escaped_are_masked(
    tmp_path: Path,
) -> None:
    agent = tmp_path / "leaky_stream.yaml"
    agent.write_text(streaming_leaky_agent(), encoding="utf-8")
    with running_emulator([agent]) as leaky:
        env = server_env(
            leaky.url,
            VF_MCP_AUTH_TOKENS=f"{TOKEN_A},{ODD_TOKEN}",
            VOICEFLOW_PROJECT_ID=STREAMING_AGENT_ID,
        )
        with http_server(env) as (base, _):
            async with as_caller(base, TOKEN_A) as alice:
                turn = await alice.call_tool(
                    "interact", {"user_id": "cut", "launch": True, "verbosity": "debug"}
                )
                transcript = await alice.call_tool("transcript", {"user_id": "cut"})
    assert not turn.is_error, text_of(turn)
    said = "My key is VF.DM.*** and a token is ***."
    assert text_of(turn).count(f"Agent: {said}") == len(CHUNK_SIZES), text_of(turn)
    assert "The odd token is ***." in text_of(turn)
    kept = [
        turn.structured_content["traces"],
        transcript.structured_content["turns"][0]["agent"]["traces"],
    ]
    for traces in kept:
        answers: list[list[str]] = []
        for trace in traces:
            if trace["type"] == "completion" and trace["payload"]["state"] == "start":
                answers.append([])
            elif trace["type"] == "completion" and trace["payload"].get("content"):
                answers[-1].append(trace["payload"]["content"])
        assert ["".join(pieces) for pieces in answers] == [said] * len(CHUNK_SIZES)
        assert ODD_TOKEN not in json.dumps(traces, ensure_ascii=False)


async def test_the_gate_reads_the_scheme_in_any_case_and_the_token_without_spaces(
    server: str, emulator: Emulator
) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_state", "arguments": {"user_id": "spaced"}}}  # fmt: skip
    async with httpx.AsyncClient(timeout=10) as http:
        for written in (f"Bearer {TOKEN_A}", f"bearer  {TOKEN_A}", f"BEARER {TOKEN_A}"):
            answer = await http.post(
                f"{server}/mcp", headers={**JSON_RPC, "Authorization": written}, json=call
            )
            assert answer.status_code == 200, (written, answer.text)
        wrong = await http.post(
            f"{server}/mcp", headers={**JSON_RPC, "Authorization": f"Basic {TOKEN_A}"}, json=call
        )
    assert wrong.status_code == 401
    users = {r.path.split("/")[3] for r in emulator.requests if r.path.startswith("/state/user/")}
    assert users == {f"{NS_A}.spaced"}  # one namespace however the header was written
