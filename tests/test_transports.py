"""The server as users run it: a stdio subprocess (both protocol eras) and streamable HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.canary import CANARY_SECRET
from tests.processes import http_server, server_env
from vf_mcp.emulator import Emulator

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_conversation_in_both_protocol_eras(
    emulator: Emulator, project_id: str, mode: str, tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "vf_mcp"],
        env=server_env(emulator.url, VOICEFLOW_PROJECT_ID=project_id),
        cwd=str(ROOT),
    )
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            first = await client.call_tool("interact", {"launch": True})
            user_id = first.structured_content["user_id"]
            second = await client.call_tool(
                "interact", {"user_id": user_id, "choice": "Track an order"}
            )
            expected_protocol = "2025-11-25" if mode == "legacy" else "2026-07-28"
            assert client.protocol_version == expected_protocol
    assert "interact" in names and "emit_event" in names
    assert first.structured_content["status"] == "awaiting_user"
    assert "Sure. What's your order number?" in second.content[0].text
    assert CANARY_SECRET not in errors.read_text()


async def test_streamable_http_conversation_health_and_rebinding_protection(
    emulator: Emulator,
) -> None:
    with http_server(server_env(emulator.url)) as (base, _process):
        async with httpx.AsyncClient() as http:
            health = await http.get(f"{base}/healthz")
            assert health.json()["status"] == "ok"
            rebound = await http.post(
                f"{base}/mcp",
                headers={
                    "Host": "evil.example",
                    "Content-Type": "application/json",
                    "Accept": "application/json, text/event-stream",
                },
                content=b"{}",
            )
            assert rebound.status_code == 421
        for mode in ("auto", "legacy"):
            async with Client(f"{base}/mcp", mode=mode) as client:
                first = await client.call_tool("interact", {"launch": True})
                user_id = first.structured_content["user_id"]
                second = await client.call_tool("interact", {"user_id": user_id, "choice": 1})
            assert "Sure. What's your order number?" in second.content[0].text
