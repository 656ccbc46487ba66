"""Reliability promises, each with a test that fails when the promise is broken.

Retries follow a policy (safe calls only), timeouts and cancellation close upstream work, bad input
and malformed runtime answers become clear errors from our hierarchy.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp import Client

from tests.canary import CANARY_KEY
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import (
    ConnectError,
    RateLimitError,
    ResponseError,
    ResponseTimeoutError,
    ServerError,
    StreamInterruptedError,
    VfMcpError,
)
from vf_mcp.retry import RetryPolicy
from vf_mcp.server import build_server
from vf_mcp.voiceflow import VoiceflowClient, parse_trace
from vf_mcp.voiceflow.actions import event, launch, text

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.01, deadline=5)


def turns(emulator: Emulator, user_id: str) -> list[Any]:
    return [r for r in emulator.requests if f"/user/{user_id}/interact" in r.path]


def ran(requests: list[Any]) -> list[Any]:
    """Requests the runtime actually executed (not refused by an injected status)."""
    return [r for r in requests if r.fault is None or r.fault.status is None]


@pytest.fixture
async def retrying(stream_settings: Settings) -> Any:
    async with VoiceflowClient(stream_settings, retry=FAST) as client:
        yield client


# -- retries -------------------------------------------------------------------------------------


async def test_retry_reads_after_429_and_503_until_they_succeed(
    retrying: VoiceflowClient, emulator: Emulator
) -> None:
    await retrying.interact("r1", launch())
    emulator.faults.add(FaultPlan(match={"method": "GET"}, status=429, retry_after=0))
    emulator.faults.add(FaultPlan(match={"method": "GET"}, status=503))
    state = await retrying.get_state("r1")
    assert state is not None
    assert [r.fault.status if r.fault else 200 for r in emulator.requests if r.method == "GET"] == [
        429,
        503,
        200,
    ]


async def test_retry_idempotent_writes_after_502(
    retrying: VoiceflowClient, emulator: Emulator
) -> None:
    emulator.faults.add(FaultPlan(match={"method": "PATCH"}, status=502, times=2))
    state = await retrying.update_variables("r2", {"a": 1})
    assert state.variables["a"] == 1
    assert len([r for r in emulator.requests if r.method == "PATCH"]) == 3


async def test_retry_honours_retry_after(retrying: VoiceflowClient, emulator: Emulator) -> None:
    emulator.faults.add(FaultPlan(match={"method": "GET"}, status=429, retry_after=0.3))
    await retrying.get_state("r3")
    first, second = [r for r in emulator.requests if r.method == "GET"]
    assert second.time - first.time >= 0.3


async def test_retry_gives_up_at_the_deadline_and_says_so(
    stream_settings: Settings, emulator: Emulator
) -> None:
    emulator.faults.add(FaultPlan(match={"method": "GET"}, status=503, times=-1))
    # Far more retries allowed than fit in the deadline: the deadline is what stops them.
    policy = RetryPolicy(max_retries=1000, base_delay=0.05, max_delay=0.05, deadline=1.0)
    started = time.monotonic()
    async with VoiceflowClient(stream_settings, retry=policy) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_state("r4")
    assert time.monotonic() - started < 5
    attempts = len([r for r in emulator.requests if r.method == "GET"])
    assert 2 <= attempts < 1001
    assert f"Failed again after {attempts - 1} retr" in caught.value.message


async def test_turn_not_retried_after_a_5xx_because_it_may_have_run(
    retrying: VoiceflowClient, emulator: Emulator
) -> None:
    emulator.faults.add(FaultPlan(match={"path_contains": "/interact"}, status=503))
    with pytest.raises(ServerError) as caught:
        await retrying.interact("r5", launch())
    assert len(turns(emulator, "r5")) == 1
    assert "Not retried: the runtime may already have run it" in caught.value.message


async def test_turn_not_retried_after_a_timeout_because_it_may_have_run(
    stream_settings: Settings, emulator: Emulator
) -> None:
    impatient = stream_settings.model_copy(update={"timeout": 0.2})
    emulator.faults.add(FaultPlan(match={"path_contains": "/interact"}, latency_ms=1500))
    async with VoiceflowClient(impatient, retry=FAST) as client:
        with pytest.raises(ResponseTimeoutError) as caught:
            await client.interact("r6", launch())
    assert len(turns(emulator, "r6")) == 1
    assert "did not answer within 0.2 s" in caught.value.message
    assert "Not retried" in caught.value.message


async def test_turn_retried_after_429_because_it_did_not_run(
    retrying: VoiceflowClient, emulator: Emulator
) -> None:
    emulator.faults.add(FaultPlan(match={"path_contains": "/interact"}, status=429, retry_after=0))
    result = await retrying.interact("r7", launch())
    assert result.traces
    assert len(turns(emulator, "r7")) == 2
    assert len(ran(turns(emulator, "r7"))) == 1


async def test_streamed_turn_retried_after_429_but_not_after_a_cut(
    retrying: VoiceflowClient, emulator: Emulator
) -> None:
    emulator.faults.add(
        FaultPlan(match={"path_contains": "/interact/stream"}, status=429, retry_after=0)
    )
    async with aclosing(retrying.interact_stream("r8", launch())) as stream:
        assert [e async for e in stream]
    assert len(turns(emulator, "r8")) == 2
    emulator.faults.add(
        FaultPlan(match={"path_contains": "/interact/stream"}, cut_stream_after_events=1)
    )
    with pytest.raises(StreamInterruptedError):
        async with aclosing(retrying.interact_stream("r8", text("1001"))) as stream:
            async for _ in stream:
                pass
    assert len(turns(emulator, "r8")) == 3


async def test_turn_retried_when_no_connection_could_be_opened() -> None:
    policy = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.001)
    assert policy.may_retry(ConnectError("refused"), idempotent=False)
    settings = Settings.validated({"api_key": CANARY_KEY, "runtime_url": "http://127.0.0.1:9"})
    async with VoiceflowClient(settings, retry=policy) as client:
        with pytest.raises(ConnectError) as caught:
            await client.interact("r9", launch())
    assert "Failed again after 2 retries" in caught.value.message


def test_retry_policy_table() -> None:
    policy = RetryPolicy()
    server_error = ServerError("x", status_code=503, upstream_message="", method="GET", path="/")
    assert policy.may_retry(server_error, idempotent=True)
    assert not policy.may_retry(server_error, idempotent=False)
    limited = RateLimitError(
        "x", status_code=429, upstream_message="", method="POST", path="/", retry_after=60
    )
    assert (
        policy.next_delay(1, limited, idempotent=False, elapsed=0) is None
    )  # longer than the deadline
    assert 0 <= policy.delay(3, ConnectError("x")) <= 1.0


# -- timeouts and cancellation -------------------------------------------------------------------


async def test_stream_idle_timeout_is_between_events_not_total(
    stream_settings: Settings, emulator: Emulator
) -> None:
    idle = stream_settings.model_copy(update={"timeout": 0.5})
    async with VoiceflowClient(idle, retry=FAST) as client:
        await client.interact("t1", launch())
        await client.interact("t1", text("Ask a question"))
        # 8+ chunks, 0.2 s apart: longer than the timeout in total, never silent for 0.5 s.
        emulator.faults.add(
            FaultPlan(match={"path_contains": "/interact/stream"}, chunk_delay_ms=200)
        )
        started = time.monotonic()
        async with aclosing(
            client.interact_stream(
                "t1", text("what is your returns policy"), completion_events=True
            )
        ) as stream:
            events = [e async for e in stream]
        assert time.monotonic() - started > 0.5
    assert len(events) >= 4


def one_connection_pool() -> httpx.AsyncClient:
    """A pool of one connection that gives up at once when it is taken: a later call succeeds
    only if every earlier one gave its connection back (idle) or closed it."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(10, pool=2)
    )


async def test_cancelled_tool_call_closes_the_upstream_stream_at_once(
    stream_settings: Settings, emulator: Emulator
) -> None:
    http = one_connection_pool()
    vf = VoiceflowClient(stream_settings, http=http)
    try:
        async with Client(build_server(stream_settings, client=vf, heartbeat_seconds=30)) as client:
            await client.call_tool("interact", {"user_id": "c1", "launch": True})
            await client.call_tool("interact", {"user_id": "c1", "choice": "Ask a question"})
            emulator.faults.add(
                FaultPlan(match={"path_contains": "/interact/stream"}, chunk_delay_ms=400)
            )
            with anyio.CancelScope() as scope:

                async def cancel_on_first_progress(
                    _p: float, _t: float | None, _m: str | None
                ) -> None:
                    scope.cancel()

                await client.call_tool(
                    "interact",
                    {"user_id": "c1", "message": "what is your returns policy"},
                    progress_callback=cancel_on_first_progress,
                )
            assert scope.cancelled_caught
            # The cancelled turn's connection was closed, not parked half-read in the pool:
            # the pool's one connection is free for the next turn.
            after = await client.call_tool("interact", {"user_id": "c1", "launch": True})
            assert not after.is_error
    finally:
        await vf.aclose()
        await http.aclose()
    # The runtime side finishes once it notices the close.
    assert await anyio.to_thread.run_sync(emulator.wait_for_streams_closed, 10.0)


async def test_connections_return_to_idle_after_every_kind_of_failure(
    stream_settings: Settings, emulator: Emulator
) -> None:
    http = one_connection_pool()
    async with VoiceflowClient(stream_settings, retry=FAST, http=http) as client:
        emulator.faults.add(FaultPlan(status=500, times=2))
        for call in (client.get_state("i1"), client.interact("i1", launch())):
            with pytest.raises(VfMcpError):
                await call
        emulator.faults.add(
            FaultPlan(match={"path_contains": "/interact/stream"}, cut_stream_after_events=1)
        )
        with pytest.raises(StreamInterruptedError):
            async with aclosing(client.interact_stream("i1", launch())) as stream:
                async for _ in stream:
                    pass
        async with aclosing(client.interact_stream("i1", launch())) as stream:
            await stream.__anext__()  # walk away after one event
        # Every failure gave the pool's one connection back: the next call gets it at once.
        assert (await client.interact("i1", launch())).traces
    await http.aclose()


# -- bad input and malformed answers -------------------------------------------------------------


async def test_oversize_answers_are_refused(stream_settings: Settings, emulator: Emulator) -> None:
    emulator.faults.add(FaultPlan(status=200, body={"stack": [], "variables": {"big": "x" * 4096}}))
    async with VoiceflowClient(stream_settings) as client:
        client.max_response_bytes = 1024
        with pytest.raises(ResponseError, match="larger than"):
            await client.get_state("o1")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ('"a string"', "application/json"),
        ("event: trace\ndata: {broken\n\n", "text/event-stream"),
        ("event: trace\ndata: [1, 2]\n\n", "text/event-stream"),
        ("<html>proxy error</html>", "text/html"),
    ],
)
async def test_malformed_answers_are_clear_errors(
    stream_settings: Settings, emulator: Emulator, body: str, content_type: str
) -> None:
    async with VoiceflowClient(stream_settings) as client:
        emulator.faults.add(FaultPlan(status=200, body=body, content_type=content_type, times=3))
        with pytest.raises(ResponseError):
            await client.interact("m1", launch())
        with pytest.raises(ResponseError):
            async with aclosing(client.interact_stream("m1", launch())) as stream:
                async for _ in stream:
                    pass


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"user_id": "a" * 200, "launch": True}, "user_id"),
        ({"user_id": "bad id!", "launch": True}, "user_id"),
        (
            {"user_id": "ok", "launch": True, "variables": {"blob": "x" * 70_000}},
            "over the 65536 byte limit",
        ),
        ({"user_id": "ok", "action": {"type": ""}}, "string `type`"),
        ({"user_id": "ok", "action": "launch"}, "action"),
        ({"user_id": "ok", "message": "x" * 10_001}, "message"),
        ({"user_id": "ok", "verbosity": "loud", "launch": True}, "verbosity"),
    ],
)
async def test_every_bad_argument_gets_a_clear_message(
    settings: Settings, emulator: Emulator, arguments: dict[str, Any], expected: str
) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("interact", arguments)
    assert result.is_error
    text_ = result.content[0].text
    assert expected in text_
    assert not emulator.requests


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    raw=JSON
    | st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "text",
                    "choice",
                    "cardV2",
                    "carousel",
                    "completion",
                    "audio",
                    "debug",
                    "no-reply",
                    "end",
                    "visual",
                    "x",
                ]
            ),
            "payload": JSON,
        },
        optional={"paths": JSON, "time": JSON},
    )
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_property_trace_parser_never_escapes_the_error_hierarchy(raw: Any) -> None:
    try:
        trace = parse_trace(raw)
    except VfMcpError:
        return
    assert trace.to_wire()["type"] == raw["type"]


TOOL_ARGUMENTS = {
    "interact": st.fixed_dictionaries(
        {},
        optional={
            "user_id": st.text(max_size=140),
            "message": st.text(max_size=50),
            "choice": st.one_of(st.integers(), st.text(max_size=10)),
            "launch": st.booleans(),
            "action": JSON,
            "variables": JSON,
            "environment": st.text(max_size=70),
            "verbosity": st.sampled_from(["minimal", "standard", "debug", "x"]),
        },
    ),
    "get_state": st.fixed_dictionaries(
        {"user_id": st.text(max_size=140)}, optional={"environment": st.text(max_size=10)}
    ),
    "replace_state": st.fixed_dictionaries({"user_id": st.text(max_size=20), "state": JSON}),
    "delete_state": st.fixed_dictionaries({"user_id": st.text(max_size=140)}),
    "update_variables": st.fixed_dictionaries({"user_id": st.text(max_size=20), "variables": JSON}),
    "emit_event": st.fixed_dictionaries(
        {"session_id": st.text(max_size=20), "event": st.text(max_size=20)},
        optional={"payload": JSON},
    ),
}


@pytest.mark.parametrize("tool", sorted(TOOL_ARGUMENTS))
def test_property_random_tool_arguments_never_crash_a_tool(
    stream_settings: Settings, emulator: Emulator, tool: str
) -> None:
    # Hypothesis drives a synchronous test, so the MCP client lives in a portal's event loop and
    # each example is one real round trip; a failing example is shrunk like any other.
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(build_server(stream_settings))) as client,
    ):

        @given(arguments=TOOL_ARGUMENTS[tool])
        @hypothesis_settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        def never_crashes(arguments: dict[str, Any]) -> None:
            result = portal.call(client.call_tool, tool, arguments)
            text_ = result.content[0].text if result.content else ""
            # An unexpected exception shows as the bare SDK message with no reason after it.
            assert text_.strip() != f"Error executing tool {tool}", arguments
            if not result.is_error:
                assert result.structured_content is not None

        never_crashes()


SSE_BODIES = st.text(max_size=300) | st.lists(
    st.sampled_from(
        [
            "event: trace",
            "event: end",
            "event: state",
            "data: {}",
            'data: {"type": "text"}',
            "data: [",
            "id: 1",
            ": keep-alive",
            "retry: 10",
            "",
            "data: null",
            "event: x",
        ]
    ),
    max_size=12,
).map("\n".join)


def test_property_sse_reader_turns_random_bodies_into_errors_or_events(
    stream_settings: Settings, emulator: Emulator
) -> None:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(VoiceflowClient(stream_settings)) as client,
    ):

        async def read(body: str) -> None:
            emulator.faults.add(FaultPlan(status=200, body=body, content_type="text/event-stream"))
            try:
                async with aclosing(client.interact_stream("p", launch())) as stream:
                    async for _ in stream:
                        pass
            except VfMcpError:
                pass  # the one way a malformed body may end: an error of ours, never another

        @given(body=SSE_BODIES)
        @hypothesis_settings(
            max_examples=80,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        def never_escapes(body: str) -> None:
            portal.call(read, body)

        never_escapes()


def test_error_messages_are_single_lines_even_when_upstream_text_is_not() -> None:
    error = ServerError(
        "Voiceflow runtime answered 503\nService Unavailable",
        status_code=503,
        upstream_message="",
        method="GET",
        path="/",
    )
    assert error.message == "Voiceflow runtime answered 503 Service Unavailable"
    error.add_detail("Failed again after\n2 retries")
    assert "\n" not in error.message
    assert error.message.endswith("Service Unavailable. Failed again after 2 retries")


async def test_a_refused_turn_is_not_called_possibly_run(
    retrying: VoiceflowClient, emulator: Emulator
) -> None:
    with pytest.raises(VfMcpError) as caught:
        await retrying.interact("r10", launch(), environment="nope")
    assert "may already have run" not in caught.value.message
    assert ".." not in caught.value.message


async def test_a_stream_larger_than_the_cap_is_refused(stream_settings: Settings) -> None:
    async with VoiceflowClient(stream_settings) as client:
        await client.interact("big", launch())
        client.max_response_bytes = 2048  # all_traces streams far more than this in total
        with pytest.raises(ResponseError, match="grew past"):
            async with aclosing(client.interact_stream("big", event("all_traces"))) as stream:
                async for _ in stream:
                    pass
