"""Security promises: access control over HTTP, isolation between callers, no key in any output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.processes import http_server, server_env
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import ConfigurationError
from vf_mcp.server import build_server

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-fedcba9876543210"
JSON_RPC_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
}


def as_caller(url: str, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(url, http_client=http))


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_http_tokens_are_required_and_no_oauth_metadata_is_advertised(
    emulator: Emulator,
) -> None:
    env = server_env(emulator.url, VF_MCP_AUTH_TOKENS=f"{TOKEN_A},{TOKEN_B}")
    with http_server(env) as (base, _):
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{base}/healthz")).status_code == 200
            anonymous = await http.post(f"{base}/mcp", headers=JSON_RPC_HEADERS, content=b"{}")
            wrong = await http.post(
                f"{base}/mcp",
                headers={**JSON_RPC_HEADERS, "Authorization": "Bearer wrong-token-000000"},
                content=b"{}",
            )
            metadata = await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")
        assert anonymous.status_code == 401
        assert wrong.status_code == 401
        assert "resource_metadata" not in anonymous.headers.get("www-authenticate", "")
        assert "VF_MCP_AUTH_TOKENS" in anonymous.json()["error_description"]
        assert metadata.status_code in (401, 404)
        async with as_caller(f"{base}/mcp", TOKEN_B) as client:
            result = await client.call_tool("interact", {"user_id": "u1", "launch": True})
        assert not result.is_error


async def test_each_token_has_its_own_conversations(emulator: Emulator) -> None:
    env = server_env(emulator.url, VF_MCP_AUTH_TOKENS=f"{TOKEN_A},{TOKEN_B}")
    with http_server(env) as (base, _):
        async with as_caller(f"{base}/mcp", TOKEN_A) as alice:
            await alice.call_tool("interact", {"user_id": "shared-name", "launch": True})
            async with as_caller(f"{base}/mcp", TOKEN_B) as mallory:
                peek = await mallory.call_tool("get_state", {"user_id": "shared-name"})
                read = await mallory.call_tool("transcript", {"user_id": "shared-name"})
                hijack = await mallory.call_tool(
                    "interact", {"user_id": "shared-name", "choice": 1}
                )
                await mallory.call_tool("delete_state", {"user_id": "shared-name"})
            still_mine = await alice.call_tool(
                "interact", {"user_id": "shared-name", "choice": "Track an order"}
            )
    assert peek.structured_content["exists"] is False
    assert read.is_error and "No transcript" in text_of(read)
    assert hijack.is_error and "knows of no buttons" in text_of(hijack)
    assert "Sure. What's your order number?" in text_of(still_mine)
    upstream_ids = {
        r.path.split("/")[3] for r in emulator.requests if r.path.startswith("/state/user/")
    }
    assert "shared-name" not in upstream_ids  # upstream ids carry the caller's namespace
    assert len({u.split(".")[0] for u in upstream_ids}) == 2


async def test_allowed_hosts_keep_dns_rebinding_protection_on(emulator: Emulator) -> None:
    env = server_env(emulator.url, VF_MCP_ALLOWED_HOSTS="mcp.example.com")
    with http_server(env) as (base, _):
        async with httpx.AsyncClient() as http:
            init = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
            good = await http.post(
                f"{base}/mcp", headers={**JSON_RPC_HEADERS, "Host": "mcp.example.com"}, content=init
            )
            evil = await http.post(
                f"{base}/mcp", headers={**JSON_RPC_HEADERS, "Host": "evil.example"}, content=init
            )
            origin = await http.post(
                f"{base}/mcp",
                headers={**JSON_RPC_HEADERS, "Origin": "http://evil.example"},
                content=init,
            )
    assert good.status_code != 421
    assert evil.status_code == 421
    assert origin.status_code == 403


async def test_public_bind_with_tokens_starts_and_is_guarded(emulator: Emulator) -> None:
    env = server_env(emulator.url, VF_MCP_AUTH_TOKENS=TOKEN_A)
    with http_server(env, "--host", "0.0.0.0") as (base, process):
        async with httpx.AsyncClient() as http:
            refused = await http.post(f"{base}/mcp", headers=JSON_RPC_HEADERS, content=b"{}")
        assert refused.status_code == 401
    assert process.returncode is not None


async def test_tool_allow_list_and_read_only_mode(settings: Settings) -> None:
    only = settings.model_copy(update={"tools": frozenset({"interact", "get_state"})})
    read_only = settings.model_copy(update={"read_only": True})
    async with Client(build_server(only)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"interact", "get_state"}
    async with Client(build_server(read_only)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {
            "get_state",
            "transcript",
            "get_run",
            "import_transcripts",  # it only reads from Voiceflow
        }
        refused = await client.call_tool("delete_state", {"user_id": "x"})
        assert refused.is_error
    with pytest.raises(ConfigurationError, match="unknown tools \\(nuke\\)"):
        build_server(settings.model_copy(update={"tools": frozenset({"nuke"})}))


def test_auth_tokens_must_be_long() -> None:
    with pytest.raises(ConfigurationError, match="shorter than 16 characters"):
        Settings.from_env({"VF_MCP_AUTH_TOKENS": "short"})


async def test_canary_key_never_leaves_the_server_over_stdio(
    emulator: Emulator, project_id: str, tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "vf_mcp"],
        env=server_env(emulator.url, VOICEFLOW_PROJECT_ID=project_id, VF_MCP_LOG_LEVEL="DEBUG"),
        cwd=str(ROOT),
    )
    seen: list[str] = []
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await scan_session_with_echo(client, emulator, seen)
    seen.append(stderr.read_text())
    assert "DEBUG" in seen[-1]  # debug logging was on, so the scan covered verbose logs
    for item in seen:
        assert CANARY_SECRET not in item


async def scan_session_with_echo(client: Client, emulator: Emulator, seen: list[str]) -> None:
    await scan_session_first_half(client, seen)
    # From here on the runtime rejects every call and echoes the key back in its error body.
    emulator.faults.add(FaultPlan(status=401, body={"data": f"bad key {CANARY_KEY}"}, times=-1))
    await scan_session_second_half(client, seen)


async def scan_session_first_half(client: Client, seen: list[str]) -> None:
    await _calls(client, seen, FIRST_HALF)


async def scan_session_second_half(client: Client, seen: list[str]) -> None:
    await _calls(client, seen, SECOND_HALF)


FIRST_HALF: list[tuple[str, dict[str, Any]]] = [
    ("interact", {"user_id": "k1", "launch": True}),
    ("interact", {"user_id": "k1", "choice": "Ask a question"}),
    ("interact", {"user_id": "k1", "message": "returns policy", "verbosity": "debug"}),
    ("get_state", {"user_id": "k1"}),
    ("update_variables", {"user_id": "k1", "variables": {"a": 1}}),
    ("emit_event", {"session_id": "s1", "event": "go"}),
    ("delete_state", {"user_id": "k1"}),
]
SECOND_HALF: list[tuple[str, dict[str, Any]]] = [
    ("interact", {"user_id": "k1", "launch": True}),
    ("get_state", {"user_id": "k1"}),
    ("update_variables", {"user_id": "k1", "variables": {"a": 2}}),
    ("emit_event", {"session_id": "s1", "event": "go"}),
    ("replace_state", {"user_id": "k1", "state": {"stack": [], "storage": {}, "variables": {}}}),
    ("delete_state", {"user_id": "k1"}),
]


async def _calls(client: Client, seen: list[str], calls: list[tuple[str, dict[str, Any]]]) -> None:
    async def progress(_p: float, _t: float | None, message: str | None) -> None:
        seen.append(message or "")

    for name, arguments in calls:
        result = await client.call_tool(name, arguments, progress_callback=progress)
        seen.append(result.model_dump_json())


async def test_canary_key_never_leaves_the_server_over_http(
    emulator: Emulator, project_id: str
) -> None:
    env = server_env(emulator.url, VOICEFLOW_PROJECT_ID=project_id, VF_MCP_LOG_LEVEL="DEBUG")
    seen: list[str] = []
    with http_server(env) as (base, process):
        async with Client(f"{base}/mcp") as client:
            await scan_session_with_echo(client, emulator, seen)
        process.terminate()
        out, err = process.communicate(timeout=10)
    seen += [out.decode(), err.decode()]
    assert any(r.fault is not None for r in emulator.requests)  # the echoing errors did happen
    for item in seen:
        assert CANARY_SECRET not in item


@pytest.fixture
def introspection() -> Any:
    """A loopback authorization server's RFC 7662 introspection endpoint."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.threaded_server import serve_in_thread

    async def introspect(request: Request) -> JSONResponse:
        token = (await request.form()).get("token")
        if token == "good-oauth-token":
            return JSONResponse(
                {"active": True, "client_id": "alice", "sub": "alice", "scope": "vf"}
            )
        return JSONResponse({"active": False})

    with serve_in_thread(
        Starlette(routes=[Route("/introspect", introspect, methods=["POST"])])
    ) as server:
        yield server.url


async def test_oauth_resource_server_mode_only_with_a_configured_issuer(
    emulator: Emulator, introspection: str
) -> None:
    from tests.processes import free_port

    port = free_port()
    env = server_env(
        emulator.url,
        VF_MCP_OAUTH_ISSUER=introspection,
        VF_MCP_OAUTH_INTROSPECTION_URL=f"{introspection}/introspect",
        VF_MCP_OAUTH_SCOPES="vf",
        VF_MCP_PUBLIC_URL=f"http://127.0.0.1:{port}/mcp",
    )
    with http_server(env, port=port) as (base, _):
        async with httpx.AsyncClient() as http:
            anonymous = await http.post(f"{base}/mcp", headers=JSON_RPC_HEADERS, content=b"{}")
            bad = await http.post(
                f"{base}/mcp",
                headers={**JSON_RPC_HEADERS, "Authorization": "Bearer nope"},
                content=b"{}",
            )
            metadata = await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")
            # The SDK's OAuth middleware reads the first header: a second is refused before it.
            two = await http.post(
                f"{base}/mcp",
                headers=[
                    *JSON_RPC_HEADERS.items(),
                    ("Authorization", "Bearer good-oauth-token"),
                    ("Authorization", "Bearer nope"),
                ],
                content=b"{}",
            )
        assert two.status_code == 401
        assert "2 Authorization headers" in two.json()["error_description"]
        assert anonymous.status_code == 401
        assert "resource_metadata" in anonymous.headers["www-authenticate"]
        assert bad.status_code == 401
        assert metadata.json()["authorization_servers"][0].rstrip("/") == introspection
        async with as_caller(f"{base}/mcp", "good-oauth-token") as client:
            result = await client.call_tool("interact", {"user_id": "o1", "launch": True})
    assert not result.is_error
    upstream = {
        r.path.split("/")[3] for r in emulator.requests if r.path.startswith("/state/user/")
    }
    assert upstream  # the turn reached the runtime...
    assert all(u.endswith(".o1") and u != "o1" for u in upstream)  # ...namespaced by the subject


def test_oauth_needs_introspection_and_public_url() -> None:
    with pytest.raises(ConfigurationError, match="VF_MCP_OAUTH_INTROSPECTION_URL"):
        Settings.from_env({"VF_MCP_OAUTH_ISSUER": "https://auth.example.com"})


async def test_stored_transcripts_expire_after_their_ttl() -> None:
    from datetime import UTC, datetime

    from vf_mcp.domain.transcript import Transcript, TranscriptTurn, UserAction
    from vf_mcp.store.memory import InMemoryTranscripts

    head = Transcript(
        suite="live", test_id="ttl", name="ttl", started_at=datetime.now(UTC), outcome="passed"
    )
    turn = TranscriptTurn(index=1, user=UserAction(kind="launch"))
    keeping = InMemoryTranscripts(ttl_seconds=3600)
    await keeping.append("ttl", head, turn)
    assert await keeping.load("ttl") is not None
    expiring = InMemoryTranscripts(ttl_seconds=-1)  # already past its TTL when read
    await expiring.append("ttl", head, turn)
    assert await expiring.load("ttl") is None


@pytest.fixture
def audiences() -> Any:
    """An introspection endpoint whose tokens name their audience: `aud-<host>` tokens are
    active and issued for https://<host>/mcp."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.threaded_server import serve_in_thread

    async def introspect(request: Request) -> JSONResponse:
        token = str((await request.form()).get("token"))
        if not token.startswith("aud-"):
            return JSONResponse({"active": False})
        aud = [f"https://{token.removeprefix('aud-')}/mcp", "https://unrelated.example/api"]
        return JSONResponse({"active": True, "client_id": "c", "sub": token, "aud": aud})

    with serve_in_thread(
        Starlette(routes=[Route("/introspect", introspect, methods=["POST"])])
    ) as server:
        yield server


@pytest.mark.parametrize("check_audience", [True, False])
async def test_the_audience_check_refuses_tokens_issued_for_another_server(
    emulator: Emulator, audiences: Any, check_audience: bool
) -> None:
    from tests.threaded_server import serve_in_thread
    from vf_mcp.http import build_fronts, http_app

    settings = Settings.validated(
        {
            "api_key": CANARY_KEY,
            "runtime_url": emulator.url,
            "oauth_issuer": audiences.url,
            "oauth_introspection_url": f"{audiences.url}/introspect",
            "public_url": "https://mcp.example.com/mcp",
            "oauth_audience": check_audience,
        }
    )
    with serve_in_thread(http_app(build_fronts(settings), settings)) as served:
        async with httpx.AsyncClient() as http:

            async def status(token: str) -> int:
                headers = {**JSON_RPC_HEADERS, "Authorization": f"Bearer {token}"}
                body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
                return (
                    await http.post(f"{served.url}/mcp", headers=headers, content=body)
                ).status_code

            ours, theirs = await status("aud-mcp.example.com"), await status("aud-other.example")
    assert ours == 200
    assert theirs == (401 if check_audience else 200)
    # The server's lifespan closed the introspection client with it: no connection lingers.
    assert await anyio.to_thread.run_sync(lambda: _closes(audiences))


def _closes(server: Any) -> bool:
    import time

    deadline = time.monotonic() + 2.0  # well before the introspection server's 5 s keep-alive
    while server.open_connections:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
