"""The Voiceflow client against the emulator over real loopback HTTP: every endpoint and action."""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectError,
    NotFoundError,
    RateLimitError,
    RouteNotFoundError,
    ServerError,
    StreamInterruptedError,
    VfMcpError,
)
from vf_mcp.voiceflow import (
    StateEvent,
    TraceEvent,
    UnknownTrace,
    VoiceflowClient,
    parse_action,
    parse_trace,
)
from vf_mcp.voiceflow.actions import (
    ActionAction,
    DtmfAction,
    EndAction,
    EventAction,
    FileAction,
    GeneralAction,
    IntentAction,
    LaunchAction,
    LiveAgentHandoffAction,
    MessageAction,
    NoReplyAction,
    PathAction,
    TextAction,
    event,
    launch,
    text,
)
from vf_mcp.voiceflow.state import InteractConfig, State
from vf_mcp.voiceflow.traces import DOCUMENTED_TRACE_TYPES, ChoiceTrace, TextTrace

pytestmark = pytest.mark.anyio

ALL_TRACES = event("all_traces")


def texts(traces: list[Any]) -> list[str]:
    return [t.payload.message for t in traces if isinstance(t, TextTrace)]


def buttons(traces: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (b.name, b.request) for t in traces if isinstance(t, ChoiceTrace) for b in t.payload.buttons
    ]


async def test_launch_button_and_capture_over_plain_interact(vf: VoiceflowClient) -> None:
    first = await vf.interact("u1", launch())
    assert texts(first.traces) == ["Hi! I'm the Acme order assistant. What can I do for you?"]
    offered = buttons(first.traces)
    assert [label for label, _ in offered] == [
        "Track an order",
        "Ask a question",
        "Talk to a person",
    ]
    assert first.state is not None and first.state.stack  # verbose=true brings the state along

    track = parse_action(offered[0][1])
    assert isinstance(track, PathAction)
    second = await vf.interact("u1", track)
    assert texts(second.traces) == ["Sure. What's your order number?"]

    third = await vf.interact("u1", text("1001"))
    assert texts(third.traces)[0] == "Order 1001 has shipped and should arrive on Friday."
    assert third.state is not None
    assert third.state.variables["order_number"] == "1001"


async def test_interact_sends_the_documented_request(
    vf: VoiceflowClient, emulator: Emulator
) -> None:
    config = InteractConfig(excludeTypes=[], stopTypes=["talk_to_agent"])
    await vf.interact(
        "u2", launch(), variables={"name": "Ada"}, config=config, environment="production"
    )
    request = emulator.requests[-1]
    assert request.method == "POST"
    assert request.path == "/state/user/u2/interact"
    assert request.query.get("verbose") == "true"
    assert request.headers.get("versionid") == "production"
    assert request.json == {
        "action": {"type": "launch"},
        "config": {"excludeTypes": [], "stopTypes": ["talk_to_agent"]},
        "state": {"variables": {"name": "Ada"}},
    }


async def test_variables_given_with_a_turn_are_merged_before_it(vf: VoiceflowClient) -> None:
    result = await vf.interact("u3", launch(), variables={"customer_name": "Ada"})
    assert result.state is not None
    assert result.state.variables["customer_name"] == "Ada"


@pytest.mark.parametrize(
    "action",
    [
        LaunchAction(),
        TextAction(payload="hello"),
        IntentAction.model_validate(
            {
                "type": "intent",
                "payload": {
                    "intent": {"name": "track_order"},
                    "query": "where is 1002",
                    "entities": [{"name": "order_number", "value": "1002"}],
                },
            }
        ),
        EventAction.model_validate(
            {"type": "event", "payload": {"event": {"name": "order_shipped"}}}
        ),
        NoReplyAction(),
        PathAction.model_validate({"type": "path-abc123", "payload": {"label": "Something"}}),
        ActionAction.model_validate(
            {
                "type": "action",
                "payload": {"actions": [{"type": "open_url", "payload": {"url": "https://x"}}]},
            }
        ),
        MessageAction.model_validate({"type": "message", "payload": {"message": "hi there"}}),
        EndAction.model_validate({"type": "end", "payload": {"reason": "user left"}}),
        DtmfAction(payload="1234#"),
        FileAction.model_validate(
            {
                "type": "file",
                "payload": {
                    "text": "receipt",
                    "files": [{"url": "https://x/r.pdf", "mimeType": "application/pdf"}],
                },
            }
        ),
        LiveAgentHandoffAction.model_validate(
            {"type": "live-agent-handoff", "payload": {"type": "continue_conversation"}}
        ),
        GeneralAction.model_validate({"type": "done", "payload": {"label": "Done"}, "x-extra": 1}),
        GeneralAction.model_validate(
            {
                "type": "never-seen-before",
                "payload": [1, 2],
                "metadata": {"k": "v"},
                "diagramID": "d1",
                "time": 5,
            }
        ),
    ],
    ids=lambda a: a.type,
)
async def test_every_action_type_reaches_the_runtime_verbatim(
    vf: VoiceflowClient, emulator: Emulator, action: Any
) -> None:
    await vf.interact("u4", launch())
    await vf.interact("u4", action)
    sent = emulator.requests[-1].json["action"]
    assert sent == action.to_wire()
    assert parse_action(sent).to_wire() == sent  # parsing and dumping keeps it byte-equivalent


def test_parse_action_picks_the_specific_model() -> None:
    assert isinstance(parse_action({"type": "launch"}), LaunchAction)
    assert isinstance(parse_action({"type": "path-x", "payload": {"label": "A"}}), PathAction)
    assert isinstance(parse_action({"type": "success"}), GeneralAction)
    assert isinstance(
        parse_action(
            {"type": "live-agent-handoff", "payload": {"type": "message", "message": "hi"}}
        ),
        LiveAgentHandoffAction,
    )


async def test_every_documented_trace_type_round_trips_and_unknown_ones_survive(
    vf: VoiceflowClient, emulator: Emulator, stream_settings: Settings
) -> None:
    await vf.interact("raw", launch())
    # The raw wire answer, fetched without our client, is the reference.
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{emulator.url}/state/user/raw/interact",
            json={"action": ALL_TRACES.to_wire(), "config": {"excludeTypes": []}},
            headers={"Authorization": CANARY_KEY},
        )
        # `end` closes a conversation, so it comes from a turn of its own.
        ending = await http.post(
            f"{emulator.url}/state/user/raw/interact",
            json={"action": event("credit_error").to_wire(), "config": {"excludeTypes": []}},
            headers={"Authorization": CANARY_KEY},
        )
    raw = response.json()
    # With every type let through, the runtime follows `end` with its "exiting session" debug.
    assert [t["type"] for t in ending.json()][-2:] == ["end", "debug"]
    raw_all = raw + ending.json()
    seen = {t["type"] for t in raw_all}
    assert seen >= DOCUMENTED_TRACE_TYPES, DOCUMENTED_TRACE_TYPES - seen
    for item in raw_all:
        parsed = parse_trace(item)
        assert parsed.to_wire() == item
        assert parsed.raw is item, "the object as received travels with the model"
        if item["type"] not in DOCUMENTED_TRACE_TYPES:
            assert isinstance(parsed, UnknownTrace)
    # The client itself returns every one of them, in order (from the same point of the flow).
    await vf.interact("raw2", launch())
    ours = await vf.interact("raw2", ALL_TRACES, config=InteractConfig(excludeTypes=[]))
    assert [t.type for t in ours.traces] == [t["type"] for t in raw]
    assert "x-custom-widget" in {t.type for t in ours.traces}


def test_a_documented_trace_of_unexpected_shape_is_kept_not_dropped() -> None:
    weird = {"type": "choice", "payload": "not an object", "time": 1}
    parsed = parse_trace(weird)
    assert isinstance(parsed, UnknownTrace)
    assert parsed.to_wire() == weird


async def test_default_exclusions_hide_debug_flow_block(vf: VoiceflowClient) -> None:
    await vf.interact("ex", launch())
    hidden = await vf.interact("ex", ALL_TRACES)
    assert not {"debug", "flow", "block"} & {t.type for t in hidden.traces}


async def test_stream_yields_traces_state_and_completion_events(
    vf: VoiceflowClient, emulator: Emulator, project_id: str
) -> None:
    await vf.interact("s1", launch())
    await vf.interact("s1", parse_action(buttons((await vf.interact("s1", launch())).traces)[1][1]))
    events = []
    async with aclosing(
        vf.interact_stream(
            "s1",
            text("What is your returns policy?"),
            completion_events=True,
            state=True,
            variables={"channel": "mcp"},
        )
    ) as stream:
        async for item in stream:
            events.append(item)
    traces = [e.trace for e in events if isinstance(e, TraceEvent)]
    states = [e.state for e in events if isinstance(e, StateEvent)]
    completion = [t.payload.state for t in traces if t.type == "completion"]
    assert completion[0] == "start" and completion[-1] == "end" and completion.count("content") >= 2
    assert len(states) == 1 and states[0].variables["channel"] == "mcp"
    request = emulator.requests[-1]
    assert request.path == f"/v2/project/{project_id}/user/s1/interact/stream"
    assert request.query["completion_events"] == "true" and request.query["state"] == "true"
    assert request.query["environment"] == "development"
    assert request.json == {
        "action": {"type": "text", "payload": "What is your returns policy?"},
        "variables": {"channel": "mcp"},
    }


async def test_stream_without_completion_events_sends_one_text(vf: VoiceflowClient) -> None:
    await vf.interact("s2", launch())
    await vf.interact("s2", parse_action(buttons((await vf.interact("s2", launch())).traces)[1][1]))
    async with aclosing(vf.interact_stream("s2", text("returns policy"))) as stream:
        items = [e async for e in stream]
    assert all(isinstance(e, TraceEvent) for e in items)
    kinds = [e.trace.type for e in items if isinstance(e, TraceEvent)]
    assert "completion" not in kinds and "text" in kinds


async def test_stream_tolerates_raw_control_characters(vf: VoiceflowClient) -> None:
    await vf.interact("cc", launch())
    async with aclosing(vf.interact_stream("cc", ALL_TRACES)) as stream:
        traces = [e.trace async for e in stream if isinstance(e, TraceEvent)]
    joined = "".join(t.payload.message for t in traces if isinstance(t, TextTrace))
    assert any(0 < ord(ch) < 32 and ch not in "\n\r" for ch in joined)


async def test_a_stream_cut_mid_way_is_an_error_not_a_short_answer(
    vf: VoiceflowClient, emulator: Emulator
) -> None:
    await vf.interact("cut", launch())
    emulator.faults.add(
        FaultPlan(match={"path_contains": "/interact/stream"}, cut_stream_after_events=1)
    )
    received = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with aclosing(vf.interact_stream("cut", launch())) as stream:
            async for item in stream:
                received.append(item)
    assert len(received) <= 1
    assert "before its closing 'end' event" in caught.value.message


async def test_state_get_replace_patch_delete(vf: VoiceflowClient) -> None:
    assert await vf.get_state("fresh") is None
    await vf.interact("st", launch())
    state = await vf.get_state("st")
    assert state is not None and state.stack
    patched = await vf.update_variables("st", {"order_number": "1002", "vip": True})
    assert patched.variables["order_number"] == "1002" and patched.variables["vip"] is True
    replaced = await vf.replace_state("st", State(stack=[], storage={}, variables={"only": 1}))
    assert replaced.variables == {"only": 1} and replaced.stack == []
    again = await vf.get_state("st")
    assert again is not None and again.variables == {"only": 1}
    await vf.update_variables("st", {"kept": "yes"})
    await vf.delete_state("st")
    after = await vf.get_state("st")
    # The conversation is reset, but variables survive a state reset (the seed says so).
    assert after is None or (not after.stack and after.variables.get("kept") == "yes")


async def test_emit_event_is_recorded(
    vf: VoiceflowClient, emulator: Emulator, project_id: str
) -> None:
    result = await vf.emit_event("call-42", event("form_submitted"))
    assert 200 <= result.status_code < 300
    recorded = emulator.session_events[-1]
    assert recorded.session_id == "call-42"
    assert recorded.action == {"type": "event", "payload": {"event": {"name": "form_submitted"}}}
    assert emulator.requests[-1].path == f"/v2/project/{project_id}/session/call-42/event"


async def test_missing_project_id_is_a_configuration_error(settings: Settings) -> None:
    async with VoiceflowClient(settings) as client:
        with pytest.raises(ConfigurationError, match="VOICEFLOW_PROJECT_ID"):
            async with aclosing(client.interact_stream("u", launch())) as stream:
                async for _ in stream:
                    pass
        with pytest.raises(ConfigurationError, match="VOICEFLOW_PROJECT_ID"):
            await client.emit_event("s", event("x"))


# -- errors --------------------------------------------------------------------------------------


async def test_bad_key_is_401_with_the_response_builder_message(emulator: Emulator) -> None:
    settings = Settings.validated({"api_key": "VF.DM.wrong.key", "runtime_url": emulator.url})
    emulator.faults.add(
        FaultPlan(
            status=401, body={"code": 401, "status": "Unauthorized", "data": "Auth Key Required"}
        )
    )
    async with VoiceflowClient(settings) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.interact("u", launch())
    assert caught.value.status_code == 401
    assert caught.value.upstream_message == "Auth Key Required"
    assert "VOICEFLOW_API_KEY" in caught.value.message


async def test_unknown_environment_gives_the_verror_shape(vf: VoiceflowClient) -> None:
    with pytest.raises(BadRequestError) as caught:
        await vf.interact("u", launch(), environment="nope")
    assert caught.value.status_code == 400
    assert caught.value.upstream_message.startswith("Cannot resolve version alias")
    assert caught.value.request_id


async def test_unknown_stream_environment_is_404(vf: VoiceflowClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        async with aclosing(vf.interact_stream("u", launch(), environment="nope")) as stream:
            async for _ in stream:
                pass
    assert caught.value.status_code == 404
    assert "nope" in caught.value.upstream_message


async def test_429_carries_retry_after(vf: VoiceflowClient, emulator: Emulator) -> None:
    emulator.faults.add(FaultPlan(status=429, retry_after=7))
    with pytest.raises(RateLimitError) as caught:
        await vf.get_state("u")
    assert caught.value.retry_after == 7
    assert "Wait 7 s" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_a_server_error(vf: VoiceflowClient, emulator: Emulator, status: int) -> None:
    emulator.faults.add(FaultPlan(status=status))
    with pytest.raises(ServerError) as caught:
        await vf.interact("u", launch())
    assert caught.value.status_code == status
    assert "check get_state before repeating" in caught.value.message


async def test_plain_text_error_bodies_are_kept(vf: VoiceflowClient, emulator: Emulator) -> None:
    emulator.faults.add(FaultPlan(status=403, body="Forbidden: Invalid Origin"))
    with pytest.raises(AuthenticationError) as caught:
        await vf.get_state("u")
    assert caught.value.upstream_message == "Forbidden: Invalid Origin"


async def test_validation_error_body_is_summarized(vf: VoiceflowClient) -> None:
    with pytest.raises(BadRequestError) as caught:
        await vf.replace_state(
            "u", State.model_validate({"stack": [], "storage": {}, "variables": {}, "bogus": 1})
        )
    assert caught.value.status_code == 400


EXPRESS_404 = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
    "</head>\n<body>\n<pre>Cannot POST /v2/project/p/user/u/interact/stream</pre>\n</body>\n"
    "</html>\n"
)


async def test_the_empty_key_validation_body_reads_as_one_clean_sentence(
    vf: VoiceflowClient, emulator: Emulator
) -> None:
    body = {
        "errors": {
            "": {
                "message": "data should have required property 'stack', "
                "data should have required property 'storage'"
            }
        }
    }
    emulator.faults.add(FaultPlan(status=400, body=body))
    with pytest.raises(BadRequestError) as caught:
        await vf.get_state("u")
    assert caught.value.upstream_message == (
        "data should have required property 'stack', data should have required property 'storage'"
    )
    assert ": :" not in caught.value.message and ": data should" in caught.value.message


async def test_an_html_404_is_a_missing_route_never_an_environment_problem(
    vf: VoiceflowClient, emulator: Emulator
) -> None:
    emulator.faults.add(
        FaultPlan(status=404, body=EXPRESS_404, content_type="text/html; charset=utf-8")
    )
    with pytest.raises(RouteNotFoundError) as caught:
        await vf.get_state("u")
    message = caught.value.message
    assert "this runtime has no such route" in message
    assert "Cannot POST /v2/project/p/user/u/interact/stream" in message
    assert "<" not in message and "environment" not in message.lower()


async def test_the_runtimes_own_404_still_points_at_the_environment(
    vf: VoiceflowClient, emulator: Emulator
) -> None:
    emulator.faults.add(
        FaultPlan(
            status=404,
            body={"code": 404, "data": "Model not found. Ensure project is properly rendered."},
        )
    )
    with pytest.raises(NotFoundError) as caught:
        await vf.get_state("u")
    assert not isinstance(caught.value, RouteNotFoundError)
    assert "'development' exists only after" in caught.value.message


async def test_other_html_error_pages_are_summarized_without_markup(
    vf: VoiceflowClient, emulator: Emulator
) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"
    emulator.faults.add(FaultPlan(status=502, body=page, content_type="text/html", times=-1))
    with pytest.raises(ServerError) as caught:
        await vf.interact("u", LaunchAction())
    assert "502 Bad Gateway" in caught.value.upstream_message
    assert "<" not in caught.value.message


async def test_unreachable_runtime_is_a_connect_error() -> None:
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    settings = Settings.validated({"api_key": CANARY_KEY, "runtime_url": "http://127.0.0.1:9"})
    async with VoiceflowClient(settings) as client:
        with pytest.raises(ConnectError) as caught:
            await client.get_state("u")
    assert "nothing was sent" in caught.value.message


async def test_the_key_never_leaks_into_errors_reprs_or_logs(
    vf: VoiceflowClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # An upstream that echoes the key back in its error body.
    emulator.faults.add(FaultPlan(status=401, body={"data": f"bad key {CANARY_KEY}"}, times=2))
    errors: list[VfMcpError] = []
    for call in (vf.get_state("u"), vf.interact("u", launch())):
        with pytest.raises(APIError) as caught:
            await call
        errors.append(caught.value)
    texts_ = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(vf)]
    texts_ += [e.upstream_message for e in errors if isinstance(e, APIError)]
    texts_ += [r.getMessage() for r in caplog.records]
    for item in texts_:
        assert CANARY_SECRET not in item


async def test_connections_are_reused(vf: VoiceflowClient, emulator: Emulator) -> None:
    for _ in range(5):
        await vf.get_state("reuse")
    peers = {r.client_port for r in emulator.requests[-5:]}
    assert len(peers) == 1
