"""Memory that scales out and survives restarts: two HTTP workers sharing one real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from tests.processes import free_port, http_server, server_env
from tests.services import redis_server
from vf_mcp.config import Settings
from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.emulator import Emulator
from vf_mcp.errors import StoreError
from vf_mcp.store.redis import redis_store
from vf_mcp.tools.errors import ERROR_META_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_one_conversation_and_its_transcript_across_workers_and_restarts(
    emulator: Emulator, redis_url: str
) -> None:
    env = server_env(emulator.url, VF_MCP_STORE_URL=redis_url)
    with http_server(env) as (first, _), http_server(env) as (second, _):
        async with Client(f"{first}/mcp") as a, Client(f"{second}/mcp") as b:
            launched = await a.call_tool("interact", {"launch": True})
            user_id = launched.structured_content["user_id"]
            # The buttons were remembered by worker A; worker B resolves the label from Redis.
            asked = await b.call_tool("interact", {"user_id": user_id, "choice": "track an order"})
            found = await a.call_tool("interact", {"user_id": user_id, "message": "1002"})
    assert "Sure. What's your order number?" in text_of(asked)
    assert 'order_number: unset -> "1002"' in text_of(found)
    # Both workers are gone; new ones pick the conversation up where it was.
    with http_server(env) as (third, _):
        async with Client(f"{third}/mcp") as c:
            finished = await c.call_tool("interact", {"user_id": user_id, "choice": "That's all"})
            # Each worker appended the turns it served: the newest one sees them all.
            transcript = await c.call_tool("transcript", {"user_id": user_id})
    assert "Thanks for contacting Acme. Goodbye!" in text_of(finished)
    turns = transcript.structured_content["turns"]
    assert [t["index"] for t in turns] == [1, 2, 3, 4]
    assert [t["user"]["kind"] for t in turns] == ["launch", "choice", "message", "choice"]


async def test_turns_appended_at_once_are_all_kept_and_bounded(redis_url: str) -> None:
    from datetime import UTC, datetime

    import anyio

    from vf_mcp.domain.transcript import Transcript, TranscriptTurn, UserAction
    from vf_mcp.store.redis import RedisBackend, RedisTranscripts

    backend = RedisBackend(redis_url, ttl_seconds=60, prefix="test-transcripts:")
    store = RedisTranscripts(backend, max_turns=30)
    head = Transcript(
        suite="live", test_id="u", name="u", started_at=datetime.now(UTC), outcome="passed"
    )

    async def turn(n: int) -> None:
        user = UserAction(kind="message", text=f"turn {n}")
        await store.append("k", head, TranscriptTurn(index=1, user=user, latency_ms=1.5))

    try:
        async with anyio.create_task_group() as tasks:
            for n in range(40):  # as from many workers: no turn overwrites another
                tasks.start_soon(turn, n)
        transcript = await store.load("k")
        assert transcript is not None
        assert [t.index for t in transcript.turns] == list(range(11, 41))
        assert len({t.user.text for t in transcript.turns}) == 30
        assert transcript.duration_ms == 60.0  # every turn counts, trimmed or not
        for key in ("test-transcripts:transcript:k", "test-transcripts:transcript:k:turns"):
            assert 0 < await backend.redis.ttl(key) <= 60
        await store.forget("k")
        assert await store.load("k") is None
        assert await backend.redis.keys("test-transcripts:*") == []
    finally:
        await backend.aclose()


async def test_every_key_has_a_ttl_and_forget_removes_it(redis_url: str) -> None:
    from redis.asyncio import Redis

    store = redis_store(redis_url, ttl_seconds=120, prefix="test-ttl:")
    redis = Redis.from_url(redis_url)
    await redis.config_resetstat()
    await store.memory.save("u1", ConversationMemory(variables={"a": 1}))
    await store.session_keys.set_session_key("u1", "main", "vfsk_secret")
    try:
        for key in ("test-ttl:conversation:u1", "test-ttl:session:u1"):
            ttl = await redis.ttl(key)
            assert 0 < ttl <= 120, key
        loaded = await store.memory.load("u1")
        assert loaded is not None and loaded.variables == {"a": 1}
        assert await store.session_keys.get_session_key("u1", "main") == "vfsk_secret"
        assert await store.session_keys.get_session_key("u1", None) is None
        assert await store.session_keys.current_session_key("u1") == "vfsk_secret"
        await store.memory.forget("u1")
        await store.session_keys.delete_session_keys("u1")
        assert await store.memory.load("u1") is None
        assert await store.session_keys.current_session_key("u1") is None
        # Reading and forgetting a user's session is one key, never a walk of the keyspace.
        assert not [c for c in await redis.info("commandstats") if c.startswith("cmdstat_scan")]
        assert await redis.keys("test-ttl:*") == []
    finally:
        await redis.aclose()
        await store.aclose()


async def test_an_unreachable_store_is_a_clear_error_without_the_url(settings: Settings) -> None:
    store = redis_store("redis://:hunter2secret@127.0.0.1:9/0", ttl_seconds=60)
    with pytest.raises(StoreError) as caught:
        await store.memory.load("u")
    await store.aclose()
    assert "VF_MCP_STORE_URL" in caught.value.message
    assert "hunter2secret" not in caught.value.message


async def test_a_store_failure_after_the_turn_ran_keeps_the_answer(settings: Settings) -> None:
    from dataclasses import replace

    from mcp import Client as MCPClient

    from vf_mcp.server import build_server
    from vf_mcp.store.memory import InMemoryMemory, in_memory_store

    class FailingSaves(InMemoryMemory):
        """Takes the turn's pending record (before it is sent), then fails every later write."""

        async def save(
            self, key: str, memory: ConversationMemory, *, owner: str | None = None
        ) -> None:
            if memory.pending is not None:
                return await super().save(key, memory, owner=owner)
            raise StoreError("Could not save the conversation in the Redis store (ConnectionError)")

    store = replace(in_memory_store(), memory=FailingSaves())
    async with MCPClient(build_server(settings, store=store)) as client:
        result = await client.call_tool("interact", {"user_id": "sf", "launch": True})
    assert not result.is_error
    assert "Hi! I'm the Acme order assistant" in text_of(result)
    assert "Warning: Could not save the conversation" in text_of(result)
    assert result.structured_content["warnings"]


async def test_first_turns_on_two_workers_share_one_v4_session_start(
    emulator: Emulator, stream_settings: Settings, redis_url: str
) -> None:
    import anyio

    from vf_mcp.voiceflow import VoiceflowClient
    from vf_mcp.voiceflow.actions import launch

    v4 = stream_settings.model_copy(update={"api_version": "v4"})
    # A slow start keeps the race open: both workers' first turns arrive while it runs.
    emulator.faults.add({"match": {"path_contains": "/session"}, "latency_ms": 300})
    stores = [redis_store(redis_url, ttl_seconds=60, prefix="test-v4:") for _ in range(2)]
    workers = [VoiceflowClient(v4, session_keys=store.session_keys) for store in stores]
    ran: list[str] = []

    async def turn(worker: VoiceflowClient) -> None:
        result = await worker.interact("same-user", launch())
        ran.append(result.traces[0].type if result.traces else "")

    try:
        async with anyio.create_task_group() as tasks:
            for n in range(6):
                tasks.start_soon(turn, workers[n % 2])
    finally:
        for worker, store in zip(workers, stores, strict=True):
            await worker.aclose()
            await store.aclose()
    starts = [r for r in emulator.requests if r.path.endswith("/session")]
    assert len(starts) == 1
    assert len(ran) == 6
    # Every turn ran once, on the one live session: none was refused and sent again.
    assert len([r for r in emulator.requests if "/interact" in r.path]) == 6


async def test_a_failed_v4_session_start_lets_the_next_worker_start(
    emulator: Emulator, stream_settings: Settings, redis_url: str
) -> None:
    import anyio

    from vf_mcp.errors import APIError
    from vf_mcp.voiceflow import VoiceflowClient
    from vf_mcp.voiceflow.actions import launch

    v4 = stream_settings.model_copy(update={"api_version": "v4"})
    emulator.faults.add({"match": {"path_contains": "/session"}, "status": 500})
    store = redis_store(redis_url, ttl_seconds=60, prefix="test-v4-fail:")
    worker = VoiceflowClient(v4, session_keys=store.session_keys)
    try:
        with pytest.raises(APIError):
            await worker.interact("unlucky", launch())
        # The lock went with the failure: the next start does not wait for it to expire.
        with anyio.fail_after(5):
            await worker.interact("unlucky", launch())
    finally:
        await worker.aclose()
        await store.aclose()


async def test_a_redis_restart_leaves_no_answered_turn_unrecorded(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Turns in flight while Redis restarts: those answered are written once it is back (the
    # writes are retried for a few seconds); those it refused did not run.
    port = free_port()
    redis = ExitStack()
    url = redis.enter_context(redis_server(port=port, data_dir=tmp_path))
    answered: list[str] = []
    refused: list[str] = []
    restarted = anyio.Event()
    try:
        env = server_env(emulator.url, VF_MCP_STORE_URL=url, VOICEFLOW_MAX_RETRIES="0")
        with http_server(env) as (base, _):
            emulator.faults.add({"match": {"path_contains": "interact"}, "latency_ms": 300})

            async def driver(n: int, http: httpx.AsyncClient) -> None:
                after_restart = 0
                for k in range(200):
                    user_id = f"blip-{n}-{k}"
                    result = await call(http, base, "interact", user_id=user_id, launch=True)
                    if not result.get("isError"):
                        answered.append(user_id)
                        after_restart += restarted.is_set()
                        if after_restart == 2:
                            return
                        continue
                    # Refused while Redis was away: it did not run, so it may be sent again.
                    assert result["_meta"][ERROR_META_KEY]["may_have_run"] is False, result
                    refused.append(user_id)
                    await anyio.sleep(0.05)  # a client's pause before trying again

            async with httpx.AsyncClient(timeout=30) as http:
                async with anyio.create_task_group() as group:
                    for n in range(6):
                        group.start_soon(driver, n, http)
                    assert await anyio.to_thread.run_sync(emulator.wait_for_requests, 6, "interact")
                    redis.close()  # six turns in flight: Redis stops under them
                    # The outage itself, as long as a restart takes: answers come back within it.
                    await anyio.sleep(1.0)
                    redis.enter_context(redis_server(port=port, data_dir=tmp_path))
                    restarted.set()
                for user_id in answered:
                    found = await call(http, base, "transcript", user_id=user_id)
                    assert not found.get("isError"), (user_id, found)  # answered, not recorded
                    kinds = [t["user"]["kind"] for t in found["structuredContent"]["turns"]]
                    assert kinds == ["launch"], (user_id, found)
    finally:
        redis.close()
    assert len(answered) >= 12, (answered, refused)


async def call(http: httpx.AsyncClient, base: str, tool: str, **arguments: Any) -> Any:
    """One stateless JSON-RPC tools/call; its result."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": arguments}}  # fmt: skip
    answer = await http.post(
        f"{base}/mcp",
        json=request,
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    body = answer.text
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        body = next(line[5:] for line in body.splitlines() if line.startswith("data:"))
    return json.loads(body)["result"]
