"""A turn in flight is never silently missing: a second turn while it runs is refused in one line;
one cut off with its worker is found by the next call, recorded as lost in flight and explained;
one whose call was cancelled is recorded at once. Two servers share one store, as workers do."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any, cast

import anyio
import pytest
from mcp import Client

from tests.services import redis_server
from vf_mcp.config import Settings
from vf_mcp.conversation.inflight import LEASE_SECONDS
from vf_mcp.domain.conversation import ConversationMemory, PendingTurn
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.server import build_server
from vf_mcp.store.memory import InMemoryLeases, InMemoryMemory, in_memory_store
from vf_mcp.tools.errors import ERROR_META_KEY
from vf_mcp.voiceflow import VoiceflowClient
from vf_mcp.voiceflow.actions import TextAction

pytestmark = pytest.mark.anyio


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def kind_of(result: Any) -> str:
    return str(result.meta[ERROR_META_KEY]["kind"])


async def test_a_second_turn_while_one_runs_on_another_worker_is_refused_in_one_line(
    settings: Settings, emulator: Emulator
) -> None:
    store = in_memory_store()  # one store, as two workers share one
    async with (
        Client(build_server(settings, store=store)) as first,
        Client(build_server(settings, store=store)) as second,
    ):
        await first.call_tool("interact", {"user_id": "busy", "launch": True})
        emulator.faults.add(FaultPlan(match={"path_contains": "interact"}, latency_ms=1500))
        answers: list[Any] = []
        async with anyio.create_task_group() as group:

            async def slow_turn() -> None:
                answers.append(await first.call_tool("interact", {"user_id": "busy", "choice": 1}))

            group.start_soon(slow_turn)
            assert await anyio.to_thread.run_sync(emulator.wait_for_requests, 2, "interact")
            refused = await second.call_tool("interact", {"user_id": "busy", "message": "hi"})
        after = await second.call_tool("interact", {"user_id": "busy", "message": "1001"})
    assert refused.is_error and kind_of(refused) == "turn_running"
    assert refused.meta[ERROR_META_KEY]["may_have_run"] is False
    assert "\n" not in text_of(refused)
    assert "A turn of conversation busy is still running" in text_of(refused)
    assert "nothing was sent now: wait for its answer, or call get_state" in text_of(refused)
    assert not answers[0].is_error  # the first turn finished as usual
    assert not after.is_error and "Order 1001" in text_of(after)
    assert len([r for r in emulator.requests if "interact" in r.path]) == 3  # none for "hi"


async def test_a_turn_cut_off_with_its_worker_is_found_recorded_and_explained(
    settings: Settings, emulator: Emulator
) -> None:
    store = in_memory_store()
    async with Client(build_server(settings, store=store)) as client:
        await client.call_tool("interact", {"user_id": "cut", "launch": True})
        await client.call_tool("interact", {"user_id": "cut", "choice": "Track an order"})
        # A worker wrote the turn as pending and sent it; the runtime ran it; the worker died
        # before the answer came back (its lease lapsed: none is held).
        memory = await store.memory.load("cut")
        assert memory is not None and memory.pending is None
        pending = PendingTurn(
            request={"user_id": "cut", "message": "1002"}, sent_at=time.time(), worker="gone:1"
        )
        await store.memory.save("cut", memory.model_copy(update={"pending": pending}))
        async with VoiceflowClient(settings) as runtime:
            await runtime.interact("cut", TextAction(payload="1002"))
        found = await client.call_tool("interact", {"user_id": "cut", "choice": 1})
        transcript = await client.call_tool("transcript", {"user_id": "cut"})
        going_on = await client.call_tool("interact", {"user_id": "cut", "launch": True})
    assert found.is_error and kind_of(found) == "turn_lost"
    line = text_of(found)
    assert "\n" not in line
    assert line.startswith("The last turn of conversation cut (message '1002', sent at ")
    assert "never had its answer recorded: worker gone:1 stopped mid-turn" in line
    assert 'the runtime\'s state moved since (order_number: unset -> "1002"' in line
    assert "so it ran" in line and "nothing was sent now" in line
    turns = transcript.structured_content["turns"]
    lost = turns[-1]
    assert lost["user"] == {"kind": "message", "text": "1002"} | {
        k: v for k, v in lost["user"].items() if k not in ("kind", "text")
    }
    assert lost["lost_in_flight"]["ran"] is True
    assert lost["lost_in_flight"]["worker"] == "gone:1"
    assert lost["error"].startswith("Lost in flight: sent at ")
    assert "Lost in flight" in text_of(transcript)
    assert not going_on.is_error  # settled: the conversation goes on


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_two_calls_at_once_on_one_conversation_run_one_turn(
    settings: Settings, emulator: Emulator, redis_url: str
) -> None:
    """Both calls find nothing pending (the store's reads and writes let the other call in
    between); taking the lease is one step, so the second is refused and sends nothing."""
    from vf_mcp.store.redis import redis_store

    store = redis_store(redis_url, ttl_seconds=60)
    users = [f"at-once-{n}" for n in range(3)]
    results: list[Any] = []
    try:
        async with (
            Client(build_server(settings, store=store)) as first,
            Client(build_server(settings, store=store)) as second,
        ):
            for user in users:
                await first.call_tool("interact", {"user_id": user, "launch": True})
            # Each answer takes long enough for the other call to arrive while it runs.
            emulator.faults.add(
                FaultPlan(match={"path_contains": "interact"}, latency_ms=500, times=-1)
            )

            async def send(client: Client, user: str, message: str) -> None:
                arguments = {"user_id": user, "message": message}
                results.append(await client.call_tool("interact", arguments))

            for user in users:
                async with anyio.create_task_group() as group:
                    group.start_soon(send, first, user, "track my order")
                    group.start_soon(send, second, user, "1001")
    finally:
        await store.aclose()
    refused = [r for r in results if r.is_error]
    assert len(results) == 6 and len(refused) == 3, [text_of(r) for r in results]
    for result in refused:
        assert kind_of(result) == "turn_running"
        assert "nothing was sent now" in text_of(result) and "\n" not in text_of(result)
    sent = [r for r in emulator.requests if "/interact" in r.path and "at-once" in r.path]
    assert len(sent) == 3 + 3  # the launches, and one turn of each pair


async def test_every_lease_store_takes_once_renews_only_its_own_and_releases(
    redis_url: str,
) -> None:
    """The lease contract each store keeps (`TurnLeases`): one taker at a time; a renewal that
    lands after its turn released the lease does not take it again; release ends only its own."""
    from vf_mcp.store.prefixed import PrefixedLeases
    from vf_mcp.store.redis import redis_store

    redis = redis_store(redis_url, ttl_seconds=60)
    try:
        stores = {
            "memory": InMemoryLeases(),
            "redis": redis.leases,
            "prefixed": PrefixedLeases(redis.leases, "agent-b/"),
        }
        for name, leases in stores.items():
            key = f"contract-{name}"
            assert await leases.take(key, "t1", 60) is None, name
            assert await leases.take(key, "t2", 60) == "t1", name
            await leases.renew(key, "t2", 60)  # not its lease: nothing changes
            await leases.release(key, "t2")
            assert await leases.holder(key) == "t1", name
            await leases.release(key, "t1")
            await leases.renew(key, "t1", 60)  # late: its turn already released the lease
            assert await leases.holder(key) is None, name
            assert await leases.take(key, "t2", 60) is None, name
    finally:
        await redis.aclose()


async def test_a_young_pending_turn_whose_worker_holds_its_lease_waits(
    settings: Settings,
) -> None:
    store = in_memory_store()
    pending = PendingTurn(request={"user_id": "held", "launch": True}, sent_at=time.time(),
                          worker="alive:2", turn_id="t1")  # fmt: skip
    await store.memory.save("held", ConversationMemory(pending=pending))
    await store.leases.take("held", "t1", LEASE_SECONDS)
    async with Client(build_server(settings, store=store)) as client:
        waiting = await client.call_tool("interact", {"user_id": "held", "launch": True})
        # The worker died; a lease it held for an earlier turn says nothing of this one.
        await store.leases.release("held", "t1")
        await store.leases.take("held", "earlier", LEASE_SECONDS)
        settled = await client.call_tool("interact", {"user_id": "held", "launch": True})
        await store.leases.release("held", "earlier")  # as it lapses, LEASE_SECONDS later
        fresh = await client.call_tool("interact", {"user_id": "held", "launch": True})
    assert kind_of(waiting) == "turn_running"
    assert kind_of(settled) == "turn_lost"
    assert "the runtime's variables show no change since, so it may not have run" in (
        text_of(settled)
    )
    assert not fresh.is_error


async def test_a_cancelled_turn_is_recorded_at_once_and_blocks_nothing(
    stream_settings: Settings, emulator: Emulator
) -> None:
    async with Client(build_server(stream_settings, heartbeat_seconds=30)) as client:
        await client.call_tool("interact", {"user_id": "cx", "launch": True})
        emulator.faults.add(
            FaultPlan(match={"path_contains": "/interact/stream"}, chunk_delay_ms=400)
        )
        with anyio.CancelScope() as scope:

            async def cancel(_p: float, _t: float | None, _m: str | None) -> None:
                scope.cancel()

            await client.call_tool(
                "interact", {"user_id": "cx", "choice": "Ask a question"}, progress_callback=cancel
            )
        assert scope.cancelled_caught
        transcript = await client.call_tool("transcript", {"user_id": "cx"})
        after = await client.call_tool("interact", {"user_id": "cx", "launch": True})
    lost = transcript.structured_content["turns"][-1]
    assert lost["lost_in_flight"]["ran"] is None
    assert "its call was cancelled, so it may have run" in lost["error"]
    assert not after.is_error


async def test_get_state_while_a_turn_runs_answers_the_state(
    settings: Settings, emulator: Emulator
) -> None:
    store = in_memory_store()
    async with (
        Client(build_server(settings, store=store)) as first,
        Client(build_server(settings, store=store)) as second,
    ):
        await first.call_tool("interact", {"user_id": "reads", "launch": True})
        emulator.faults.add(FaultPlan(match={"path_contains": "interact"}, latency_ms=1500))
        async with anyio.create_task_group() as group:
            group.start_soon(first.call_tool, "interact", {"user_id": "reads", "choice": 1})
            assert await anyio.to_thread.run_sync(emulator.wait_for_requests, 2, "interact")
            state = await second.call_tool("get_state", {"user_id": "reads"})
    assert not state.is_error, text_of(state)  # reading is never refused: it changes nothing
    assert state.structured_content["exists"] is True


class LeaseWitness(InMemoryMemory):
    """The in-process memory, noting who held the lease each time a pending record was written."""

    def __init__(self, leases: InMemoryLeases) -> None:
        super().__init__()
        self.leases = leases
        self.seen: list[tuple[str, str | None]] = []

    async def save(self, key: str, memory: ConversationMemory, *, owner: str | None = None) -> None:
        if memory.pending is not None:
            self.seen.append((memory.pending.turn_id, await self.leases.holder(key)))
        await super().save(key, memory, owner=owner)


async def test_the_lease_is_held_before_the_pending_record_is_written(settings: Settings) -> None:
    # Else a call landing between the two writes would take a live turn for a lost one.
    leases = InMemoryLeases()
    witness = LeaseWitness(leases)
    store = dataclasses.replace(in_memory_store(), memory=witness, leases=leases)
    async with Client(build_server(settings, store=store)) as client:
        await client.call_tool("interact", {"user_id": "order", "launch": True})
        await client.call_tool("interact", {"user_id": "order", "choice": 1})
    assert len(witness.seen) == 2
    assert all(turn == holder for turn, holder in witness.seen), witness.seen


async def test_a_turn_longer_than_its_lease_keeps_it_and_stops_renewing_once_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The renewals start only for a turn still running after a renewal period (most end
    sooner); they hold the lease while it runs, and none outlives the turn."""
    from vf_mcp.conversation import inflight
    from vf_mcp.conversation.inputs import TurnRequest

    monkeypatch.setattr(inflight, "RENEW_SECONDS", 0.01)
    monkeypatch.setattr(inflight, "LEASE_SECONDS", 0.05)
    leases = InMemoryLeases()
    no_runtime = cast(VoiceflowClient, None)  # nothing is reconciled: the runtime is not asked
    turns = inflight.TurnsInFlight(InMemoryMemory(), leases, no_runtime)
    pending = turns.pending(TurnRequest(user_id="long", launch=True), None)
    seen: list[str | None] = []

    async def slow_turn() -> str:
        await anyio.sleep(0.3)  # six leases long: only renewals keep it
        seen.append(await leases.holder("long"))
        return "answered"

    assert await turns.run("long", "long", None, pending, None, slow_turn) == "answered"
    await anyio.sleep(0.2)  # four leases long: a renewal still going would hold it
    assert seen == [pending.turn_id]
    assert await leases.holder("long") is None
