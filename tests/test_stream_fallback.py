"""A runtime without the v2 stream route: turns fall back to the plain interact endpoint.

Voiceflow's open-source runtime (and some private deployments) answer the v2 stream route with
Express's `404 text/html` page (tests/fixtures/real_runtime, acme exchange 32). A route that does
not exist ran nothing, so the same turn can safely go to the plain interact endpoint instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from tests.test_client import EXPRESS_404
from vf_mcp.config import Settings
from vf_mcp.conversation import STREAM_OFF, ConversationService, StreamRoutes, TurnRequest
from vf_mcp.emulator import Emulator, FaultPlan, default_agent, running_emulator
from vf_mcp.server import build_server
from vf_mcp.store.memory import in_memory_store
from vf_mcp.voiceflow import VoiceflowClient

pytestmark = pytest.mark.anyio


def no_stream_route(emulator: Emulator) -> None:
    emulator.faults.add(
        FaultPlan(
            match={"path_contains": "/interact/stream"},
            times=-1,
            status=404,
            body=EXPRESS_404,
            content_type="text/html; charset=utf-8",
        )
    )


def turn_paths(emulator: Emulator) -> list[str]:
    return [r.path for r in emulator.requests if "interact" in r.path]


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def call(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    return await client.call_tool(tool, arguments)


@pytest.fixture(scope="module")
def open_source_runtime() -> Iterator[Emulator]:
    """An emulator serving only the open-source runtime's routes: no v2 stream at all."""
    with running_emulator([default_agent()], routes="open-source") as emulator:
        yield emulator


async def test_turns_fall_back_to_plain_interact_with_one_warning(
    stream_settings: Settings, open_source_runtime: Emulator
) -> None:
    emulator = open_source_runtime
    emulator.reset()
    stream_settings = stream_settings.model_copy(update={"runtime_url": emulator.url})
    async with Client(build_server(stream_settings)) as client:
        first = await call(client, "interact", launch=True)
        assert not first.is_error, text_of(first)
        assert "Agent: Hi! I'm the Acme order assistant." in text_of(first)
        assert first.structured_content["warnings"] == [STREAM_OFF]
        assert "Warning: This runtime has no v2 stream route" in text_of(first)
        user_id = first.structured_content["user_id"]
        second = await call(client, "interact", user_id=user_id, choice=1)
        assert not second.is_error and second.structured_content["warnings"] == []
    # The refused stream attempt never reached a route (the emulator records only routes it
    # has); both turns ran once, on the plain interact endpoint.
    assert turn_paths(emulator) == [f"/state/user/{user_id}/interact"] * 2


async def test_agents_on_one_runtime_learn_it_once(
    stream_settings: Settings, emulator: Emulator
) -> None:
    no_stream_route(emulator)
    routes = StreamRoutes()
    async with VoiceflowClient(stream_settings) as vf:
        store = in_memory_store()
        first = ConversationService(vf, store, stream_settings, stream_routes=routes)
        second = ConversationService(vf, store, stream_settings, stream_routes=routes)
        launched = await first.interact(TurnRequest(user_id="a", launch=True))
        assert launched.result.warnings == [STREAM_OFF]
        assert second.streams is False
        again = await second.interact(TurnRequest(user_id="b", launch=True))
        assert again.result.warnings == []
    assert sum(p.endswith("/interact/stream") for p in turn_paths(emulator)) == 1


async def test_an_explicit_stream_setting_refuses_to_fall_back(
    stream_settings: Settings, emulator: Emulator
) -> None:
    no_stream_route(emulator)
    forced = stream_settings.model_copy(update={"stream": True})
    async with Client(build_server(forced)) as client:
        result = await call(client, "interact", launch=True)
    assert result.is_error
    text = text_of(result)
    assert "has no v2 stream route" in text and "VF_MCP_STREAM" in text
    assert "\n" not in text and "<" not in text
    assert all(p.endswith("/interact/stream") for p in turn_paths(emulator))


async def test_the_runtimes_own_404_does_not_turn_streaming_off(
    stream_settings: Settings, emulator: Emulator
) -> None:
    # An unknown environment is the runtime's JSON 404: the route exists, so no fallback.
    async with Client(build_server(stream_settings)) as client:
        result = await call(client, "interact", launch=True, environment="nowhere")
        assert result.is_error and "Environment nowhere does not exist" in text_of(result)
        again = await call(client, "interact", launch=True)
    assert not again.is_error
    assert all(p.endswith("/interact/stream") for p in turn_paths(emulator))
