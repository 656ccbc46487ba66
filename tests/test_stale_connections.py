"""A turn written into a kept-alive connection the runtime is closing is resent once, and only
then: the failure must be the pool's stale-connection signature, so nothing can have run."""

from __future__ import annotations

import pytest

from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import TransportError, may_have_run
from vf_mcp.voiceflow import VoiceflowClient
from vf_mcp.voiceflow.actions import launch, text

pytestmark = pytest.mark.anyio


def turns(emulator: Emulator) -> list[tuple[int | None, bool]]:
    """(client port, whether the emulator dropped it) for each turn request."""
    return [
        (r.client_port, r.fault is not None and r.fault.drop_connection)
        for r in emulator.requests
        if r.path.endswith("/interact")
    ]


async def test_a_turn_dropped_on_a_reused_connection_is_resent_once_on_another(
    settings: Settings, emulator: Emulator
) -> None:
    async with VoiceflowClient(settings) as client:
        await client.interact("stale", launch())  # opens the connection the next turn reuses
        emulator.faults.add(FaultPlan(match={"path_contains": "interact"}, drop_connection=True))
        result = await client.interact("stale", text("track an order"))
    assert "What's your order number?" in str([t.raw for t in result.traces])  # ran once, answered
    (first, _), (reused, dropped), (resent, again) = turns(emulator)
    assert reused == first and dropped  # the drop hit the kept-alive connection
    assert resent != reused and not again  # and the resend went out on a new one


async def test_a_drop_on_a_fresh_connection_is_not_resent(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.faults.add(FaultPlan(match={"path_contains": "interact"}, drop_connection=True))
    async with VoiceflowClient(settings) as client:
        with pytest.raises(TransportError) as caught:
            await client.interact("fresh", launch())
    assert len(turns(emulator)) == 1
    assert may_have_run(caught.value)  # a new connection that dies unanswered may have run it


async def test_a_drop_after_the_runtime_took_its_time_is_not_resent(
    settings: Settings, emulator: Emulator
) -> None:
    async with VoiceflowClient(settings) as client:
        await client.interact("slow", launch())
        # Long after the write: the runtime may have read the request and died working on it.
        emulator.faults.add(
            FaultPlan(match={"path_contains": "interact"}, latency_ms=500, drop_connection=True)
        )
        with pytest.raises(TransportError) as caught:
            await client.interact("slow", text("track an order"))
    assert len(turns(emulator)) == 2
    assert "may have run" in caught.value.message
