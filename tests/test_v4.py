"""Voiceflow's v4 runtime generation beside the legacy one: sessions, renewal, secrecy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.canary import CANARY_SECRET
from tests.processes import server_env
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import AuthenticationError
from vf_mcp.server import build_server
from vf_mcp.voiceflow import VoiceflowClient
from vf_mcp.voiceflow.actions import launch

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def v4(stream_settings: Settings) -> Settings:
    return stream_settings.model_copy(update={"api_version": "v4"})


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def session_starts(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.path.endswith("/session")]


async def test_session_starts_in_the_configured_environment_or_the_traffic_split(
    v4: Settings, emulator: Emulator, project_id: str
) -> None:
    async with VoiceflowClient(v4) as client:
        await client.interact("split", launch())
    async with VoiceflowClient(v4.model_copy(update={"environment": "production"})) as client:
        await client.interact("prod", launch())
    paths = [r.path for r in session_starts(emulator)]
    assert paths == [
        f"/v4/project/{project_id}/session",
        f"/v4/project/{project_id}/environment/production/session",
    ]
    assert [r.json for r in session_starts(emulator)] == [{"userID": "split"}, {"userID": "prod"}]


async def test_an_expired_session_key_is_renewed_without_the_model_noticing(
    v4: Settings, emulator: Emulator
) -> None:
    async with Client(build_server(v4)) as client:
        await client.call_tool("interact", {"user_id": "exp", "launch": True})
        await client.call_tool("interact", {"user_id": "exp", "choice": "Track an order"})
        assert emulator.expire_session_keys() == 1
        answer = await client.call_tool("interact", {"user_id": "exp", "message": "1001"})
    assert not answer.is_error
    assert "Order 1001 has shipped" in text_of(answer)
    assert len(session_starts(emulator)) == 2
    refused = [r for r in emulator.requests if r.path.startswith("/v4/interact")]
    assert len(refused) == 4  # three turns, one of them sent twice (refused, then renewed)


async def test_a_second_refusal_is_reported(v4: Settings, emulator: Emulator) -> None:
    emulator.faults.add(FaultPlan(match={"path_contains": "/v4/interact"}, status=401, times=2))
    async with VoiceflowClient(v4) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.interact("twice", launch())
    assert "its key was refused too" in caught.value.message
    assert len(session_starts(emulator)) == 2


async def test_credit_exhaustion_is_an_error_that_says_what_to_do(v4: Settings) -> None:
    event = {"type": "event", "payload": {"event": {"name": "credit_error"}}}
    async with Client(build_server(v4)) as client:
        await client.call_tool("interact", {"user_id": "cr", "launch": True})
        result = await client.call_tool("interact", {"user_id": "cr", "action": event})
    assert result.structured_content["status"] == "error"
    assert "out of AI credits" in result.structured_content["error"]
    assert "add credits" in text_of(result)


async def test_session_keys_never_leave_the_server(
    emulator: Emulator, project_id: str, tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "vf_mcp"],
        env=server_env(
            emulator.url,
            VOICEFLOW_PROJECT_ID=project_id,
            VOICEFLOW_API_VERSION="v4",
            VF_MCP_LOG_LEVEL="DEBUG",
        ),
        cwd=str(ROOT),
    )
    seen: list[str] = []
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            for arguments in (
                {"user_id": "sk", "launch": True},
                {"user_id": "sk", "choice": 1, "verbosity": "debug"},
            ):
                seen.append((await client.call_tool("interact", arguments)).model_dump_json())
            emulator.expire_session_keys()
            seen.append(
                (
                    await client.call_tool("interact", {"user_id": "sk", "message": "1"})
                ).model_dump_json()
            )
            seen.append(
                (
                    await client.call_tool("emit_event", {"session_id": "sk", "event": "go"})
                ).model_dump_json()
            )
            emulator.faults.add(FaultPlan(status=401, times=-1))
            seen.append(
                (
                    await client.call_tool("interact", {"user_id": "sk", "message": "2"})
                ).model_dump_json()
            )
    seen.append(stderr.read_text())
    assert "DEBUG" in seen[-1]
    for item in seen:
        assert "vfsk_" not in item
        assert CANARY_SECRET not in item


async def test_concurrent_first_turns_share_one_session_start(
    v4: Settings, emulator: Emulator
) -> None:
    import anyio

    # Through the client: the tools refuse a second turn on a conversation while one runs
    # (tests/test_in_flight.py), but several workers' first turns can still meet here.
    results: list[Any] = []
    async with VoiceflowClient(v4) as client:

        async def turn() -> None:
            results.append(await client.interact("same", launch()))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(turn)
    assert len(results) == 4
    assert len(session_starts(emulator)) == 1


async def test_a_user_id_that_extends_another_never_reaches_its_session(
    v4: Settings, emulator: Emulator
) -> None:
    async with Client(build_server(v4)) as client:
        await client.call_tool("interact", {"user_id": "bob@acme.com", "launch": True})
        other = await client.call_tool("emit_event", {"session_id": "bob", "event": "go"})
        await client.call_tool("delete_state", {"user_id": "bob"})
        mine = await client.call_tool("emit_event", {"session_id": "bob@acme.com", "event": "go"})
    assert other.is_error and "No v4 session is open for 'bob'" in text_of(other)
    assert not mine.is_error  # deleting "bob" left bob@acme.com's session alone
