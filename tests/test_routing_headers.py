"""`user_id` and `agent` are mirrored into `Mcp-Param-*` request headers (SEP-2243), so a load
balancer can route a conversation without reading the JSON body."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from tests.threaded_server import serve_in_thread
from vf_mcp.config import Settings
from vf_mcp.http import build_fronts, http_app
from vf_mcp.server import build_server

pytestmark = pytest.mark.anyio


async def test_every_user_id_and_agent_argument_is_a_mirrored_plain_string(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as client:
        tools = (await client.list_tools()).tools
    mirrored = {"user_id": "User-Id", "agent": "Agent", "from_agent": "Agent"}
    seen = 0
    for tool in tools:
        for name, header in mirrored.items():
            schema = tool.input_schema["properties"].get(name)
            if schema is None:
                continue
            seen += 1
            assert schema["type"] == "string", (tool.name, name, schema)
            assert schema["x-mcp-header"] == header, (tool.name, name)
    assert seen >= 8


async def test_a_client_of_the_new_protocol_sends_the_conversation_in_a_header(
    settings: Settings,
) -> None:
    seen: list[dict[str, str]] = []
    app = http_app(build_fronts(settings), settings)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await app(scope, receive, send)

    with serve_in_thread(recording) as served:
        async with Client(f"{served.url}/mcp") as client:
            launched = await client.call_tool("interact", {"launch": True})
            assert not launched.is_error
            user_id = launched.structured_content["user_id"]
            await client.call_tool("interact", {"user_id": user_id, "choice": 1})
    routed = [h for h in seen if h.get("mcp-param-user-id") == user_id]
    assert len(routed) == 1  # the second turn; the first had no user_id to send
    # Absent means the default: the first turn named no conversation and no agent.
    assert not any(h.get("mcp-param-agent") for h in seen)
