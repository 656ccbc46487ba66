"""The MCP tools through the official client, in memory, against the emulator over loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan, default_agent, running_emulator
from vf_mcp.server import build_server
from vf_mcp.tools.errors import ERROR_META_KEY
from vf_mcp.voiceflow.traces import DOCUMENTED_TRACE_TYPES

TOOLS_LIST_BYTES = 24_000
"""The whole tools/list answer, compact JSON, for one agent's tools (issue 24: 67.7 KB for 11)."""

pytestmark = pytest.mark.anyio

TOOLS = {
    "interact",
    "get_state",
    "replace_state",
    "delete_state",
    "update_variables",
    "emit_event",
    "run_conversation",
    "start_run",
    "get_run",
    "cancel_run",
    "transcript",
    "import_transcripts",
}


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def turn_requests(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.path.endswith(("/interact", "/interact/stream"))]


@pytest.fixture(params=["legacy", "v4"])
def generation(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both runtime generations (VOICEFLOW_API_VERSION)."""
    return str(request.param)


@pytest.fixture
def settings(settings: Settings, generation: str, project_id: str) -> Settings:
    """Plain (unstreamed) turns: legacy without a project id; v4 needs one, so streaming is off."""
    if generation == "legacy":
        return settings
    return settings.model_copy(
        update={"api_version": "v4", "project_id": project_id, "stream": False}
    )


@pytest.fixture
def stream_settings(stream_settings: Settings, generation: str) -> Settings:
    return stream_settings.model_copy(update={"api_version": generation})


@pytest.fixture(params=["plain", "stream"])
def any_settings(
    request: pytest.FixtureRequest, settings: Settings, stream_settings: Settings
) -> Settings:
    """Both turn endpoints: plain interact (no project id) and SSE (project id set)."""
    return settings if request.param == "plain" else stream_settings


async def call(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    return await client.call_tool(tool, arguments)


async def test_tools_are_listed_with_schemas_and_truthful_annotations(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.output_schema
        assert tool.annotations is not None
        # Only the transcript and the run handles' reads and cancels stay inside the server;
        # every other tool reaches the runtime.
        inside = tool.name in ("transcript", "get_run", "cancel_run")
        assert tool.annotations.open_world_hint is not inside
    assert tools["get_state"].annotations.read_only_hint is True
    assert tools["replace_state"].annotations.destructive_hint is True
    assert tools["delete_state"].annotations.destructive_hint is True
    assert tools["interact"].annotations.idempotent_hint is False
    assert tools["update_variables"].annotations.idempotent_hint is True
    assert "wiped" in (tools["replace_state"].description or "")
    assert "socket" in (tools["emit_event"].description or "")
    interact_props = tools["interact"].input_schema["properties"]
    assert {
        "user_id",
        "message",
        "choice",
        "launch",
        "action",
        "variables",
        "environment",
        "verbosity",
    } <= set(interact_props)


async def test_full_conversation_reaches_a_handoff(
    any_settings: Settings, emulator: Emulator
) -> None:
    async with Client(build_server(any_settings)) as client:
        first = await call(client, "interact", launch=True)
        assert not first.is_error
        user_id = first.structured_content["user_id"]
        assert text_of(first).splitlines()[:2] == [
            "Agent: Hi! I'm the Acme order assistant. What can I do for you?",
            "Choices: 1) Track an order 2) Ask a question 3) Talk to a person",
        ]
        second = await call(client, "interact", user_id=user_id, choice="track AN order")
        assert text_of(second).startswith("Agent: Sure. What's your order number?")
        third = await call(client, "interact", user_id=user_id, message="1001")
        summary = text_of(third)
        assert "Agent: Order 1001 has shipped and should arrive on Friday." in summary
        if any_settings.api_version == "legacy":
            assert 'order_number: unset -> "1001"' in summary
        else:  # v4 returns no state with the turn: the diff is unknown, never fetched
            assert third.structured_content["variables_changed"] is None
        assert "Choices: 1) Track another order 2) Talk to a person 3) That's all" in summary
        fourth = await call(client, "interact", user_id=user_id, choice=2)
    result = fourth.structured_content
    assert result["status"] == "handoff"
    assert result["custom_actions"][0]["name"] == "talk_to_agent"
    assert result["custom_actions"][0]["payload"]["order_number"] == "1001"
    assert text_of(fourth).endswith("Status: handoff to custom action talk_to_agent")
    assert f"new user_id {user_id}" in text_of(first), "the id the server chose is shown once"
    assert user_id not in text_of(second), "the caller already holds the id"
    # One upstream request per turn: the state for the diff came in the same request.
    assert len(turn_requests(emulator)) == 4
    if any_settings.api_version == "v4":  # plus the one session start
        assert len([r for r in emulator.requests if r.path.endswith("/session")]) == 1
    assert not [r for r in emulator.requests if r.method == "GET"]


async def test_a_fresh_user_id_is_generated_and_reported(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        a = await call(client, "interact", launch=True)
        b = await call(client, "interact", launch=True)
    assert a.structured_content["user_id"] != b.structured_content["user_id"]
    assert f"user_id {a.structured_content['user_id']}" in text_of(a)


async def test_choice_errors_list_the_valid_options(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        none_yet = await call(client, "interact", user_id="c1", choice="Track an order")
        assert none_yet.is_error and "knows of no buttons" in text_of(none_yet)
        await call(client, "interact", user_id="c1", launch=True)
        wrong = await call(client, "interact", user_id="c1", choice="Refund")
        assert wrong.is_error
        assert (
            "valid choices: 1) Track an order, 2) Ask a question, 3) Talk to a person"
            in text_of(wrong)
        )
        too_far = await call(client, "interact", user_id="c1", choice=9)
        assert too_far.is_error and "no choice number 9" in text_of(too_far)


@pytest.mark.parametrize(
    "arguments",
    [{}, {"message": "hi", "launch": True}, {"choice": 1, "action": {"type": "launch"}}],
    ids=["none", "message+launch", "choice+action"],
)
async def test_exactly_one_way_to_speak(settings: Settings, arguments: dict[str, Any]) -> None:
    async with Client(build_server(settings)) as client:
        result = await call(client, "interact", user_id="x1", **arguments)
    assert result.is_error
    assert "Give exactly one of message, choice, launch=true or action" in text_of(result)


async def test_bad_arguments_are_refused_before_any_request(
    settings: Settings, emulator: Emulator
) -> None:
    async with Client(build_server(settings)) as client:
        bad_id = await call(client, "interact", user_id="has spaces/and slashes", launch=True)
        no_type = await call(client, "interact", user_id="ok", action={"payload": 1})
    assert bad_id.is_error and "user_id" in text_of(bad_id)
    assert no_type.is_error and "string `type`" in text_of(no_type)
    assert not emulator.requests


async def test_raw_actions_pass_through_verbatim(settings: Settings, emulator: Emulator) -> None:
    action = {"type": "event", "payload": {"event": {"name": "order_shipped"}}, "x-extra": [1]}
    async with Client(build_server(settings)) as client:
        await call(client, "interact", user_id="raw", launch=True)
        result = await call(client, "interact", user_id="raw", action=action)
    assert "Good news: your order has shipped!" in text_of(result)
    assert turn_requests(emulator)[-1].json["action"] == action


async def test_awaiting_action_then_resume(emulator: Emulator, settings: Settings) -> None:
    not_handoff = settings.model_copy(update={"handoff_actions": frozenset()})
    async with Client(build_server(not_handoff)) as client:
        await call(client, "interact", user_id="aa", launch=True)
        waiting = await call(client, "interact", user_id="aa", choice="Talk to a person")
        assert waiting.structured_content["status"] == "awaiting_action"
        assert "Custom action: talk_to_agent" in text_of(waiting)
        assert "(resume with: done)" in text_of(waiting)
        back = await call(client, "interact", user_id="aa", action={"type": "done"})
    assert "You're back with the Acme assistant" in text_of(back)
    assert back.structured_content["status"] == "awaiting_user"


async def test_ended_and_error_statuses(any_settings: Settings) -> None:
    async with Client(build_server(any_settings)) as client:
        await call(client, "interact", user_id="st1", launch=True)
        await call(client, "interact", user_id="st1", choice="Track an order")
        await call(client, "interact", user_id="st1", message="1002")
        ended = await call(client, "interact", user_id="st1", choice="That's all")
        assert ended.structured_content["status"] == "ended"
        assert "Thanks for contacting Acme. Goodbye!" in text_of(ended)
        await call(client, "interact", user_id="st2", launch=True)
        credit = await call(
            client,
            "interact",
            user_id="st2",
            action={"type": "event", "payload": {"event": {"name": "credit_error"}}},
        )
    assert credit.structured_content["status"] == "error"
    assert "credit_limit_reached" in credit.structured_content["error"]


async def test_no_reply_status(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await call(client, "interact", user_id="nr", launch=True)
        asked = await call(client, "interact", user_id="nr", choice="Track an order")
        assert asked.structured_content["no_reply_timeout"] == 30
        assert "awaiting_user (no-reply 30 s)" in text_of(asked)
        again = await call(client, "interact", user_id="nr", action={"type": "no-reply"})
    assert "Are you still there? What's your order number?" in text_of(again)


async def test_every_trace_type_in_debug_and_unknown_counted_in_standard(
    any_settings: Settings,
) -> None:
    all_traces = {"type": "event", "payload": {"event": {"name": "all_traces"}}}
    async with Client(build_server(any_settings)) as client:
        await call(client, "interact", user_id="t1", launch=True)
        standard = await call(client, "interact", user_id="t1", action=all_traces)
        await call(client, "interact", user_id="t1", launch=True)
        debug = await call(client, "interact", user_id="t1", action=all_traces, verbosity="debug")
    assert standard.structured_content["unknown_traces"].get("x-custom-widget") == 1
    assert "x-custom-widget x1" in text_of(standard)
    assert standard.structured_content["traces"] is None
    raw_types = {t["type"] for t in debug.structured_content["traces"]}
    assert "x-custom-widget" in raw_types
    assert len(raw_types & DOCUMENTED_TRACE_TYPES) >= 20
    kinds = {m["kind"] for m in standard.structured_content["messages"]}
    assert {"text", "card", "carousel", "image", "audio", "handoff"} <= kinds


async def test_progress_arrives_before_the_result_on_a_slow_streamed_answer(
    stream_settings: Settings, emulator: Emulator
) -> None:
    seen: list[tuple[float, str | None]] = []
    finished = False

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        assert not finished
        seen.append((progress, message))

    async with Client(build_server(stream_settings, heartbeat_seconds=0.05)) as client:
        await call(client, "interact", user_id="slow", launch=True)
        await call(client, "interact", user_id="slow", choice="Ask a question")
        emulator.faults.add(
            FaultPlan(match={"path_contains": "/interact/stream"}, chunk_delay_ms=150)
        )
        result = await client.call_tool(
            "interact",
            {"user_id": "slow", "message": "What is your returns policy?"},
            progress_callback=on_progress,
        )
        finished = True
    assert not result.is_error
    messages = [m or "" for _, m in seen]
    assert any(m.startswith("Waiting for the agent") for m in messages)
    assert "Agent is writing an answer" in messages
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)


@pytest.mark.parametrize(
    ("fault", "arguments", "expected", "kind"),
    [
        (
            FaultPlan(
                status=401,
                body={"code": 401, "status": "Unauthorized", "data": "Auth Key Required"},
            ),
            {},
            "401 Unauthorized",
            "unauthorized",
        ),
        (FaultPlan(status=429, retry_after=3), {}, "429", "rate_limited"),
        (FaultPlan(status=503), {}, "503", "upstream"),
        (None, {"environment": "nope"}, "Cannot resolve version alias", "refused"),
    ],
    ids=["401", "429", "503", "400"],
)
async def test_upstream_errors_reach_the_model_with_status_and_message(
    settings: Settings,
    emulator: Emulator,
    fault: FaultPlan | None,
    arguments: dict[str, Any],
    expected: str,
    kind: str,
) -> None:
    if settings.api_version == "v4" and expected.startswith("Cannot resolve"):
        expected = "Environment nope does not exist"  # v4 picks the environment at session start
    if fault is not None:
        emulator.faults.add(fault)
    async with Client(build_server(settings)) as client:
        result = await call(client, "interact", user_id="e1", launch=True, **arguments)
        state = (
            await call(client, "get_state", user_id="e1", **arguments) if fault is None else None
        )
    assert result.is_error
    assert expected in text_of(result)
    if settings.api_version == "v4" and kind == "refused":
        kind = "not_found"
    ran = kind == "upstream"  # of these, only the 503 may have run the turn
    assert result.structured_content is None
    assert (result.meta or {})[ERROR_META_KEY] == {
        "kind": kind,
        "message": text_of(result),
        "may_have_run": ran,
    }
    assert text_of(result) != "Error executing tool interact"
    if state is not None:
        assert state.is_error
        assert "Cannot resolve version alias" in text_of(state)  # state calls are legacy on both


async def test_stream_errors_reach_the_model(stream_settings: Settings, emulator: Emulator) -> None:
    async with Client(build_server(stream_settings)) as client:
        missing = await call(client, "interact", user_id="e2", launch=True, environment="nope")
        emulator.faults.add(
            FaultPlan(match={"path_contains": "/interact/stream"}, cut_stream_after_events=1)
        )
        cut = await call(client, "interact", user_id="e2", launch=True)
    assert missing.is_error and "404" in text_of(missing)
    assert cut.is_error and "before its closing 'end' event" in text_of(cut)


async def test_unreachable_runtime_reaches_the_model() -> None:
    settings = Settings.validated({"api_key": CANARY_KEY, "runtime_url": "http://127.0.0.1:9"})
    async with Client(build_server(settings)) as client:
        result = await call(client, "interact", user_id="e3", launch=True)
    assert result.is_error and "Could not connect" in text_of(result)


async def test_state_tools(settings: Settings, emulator: Emulator, project_id: str) -> None:
    async with Client(build_server(settings)) as client:
        empty = await call(client, "get_state", user_id="s1")
        assert empty.structured_content == {"user_id": "s1", "exists": False, "state": None}
        assert "no state" in text_of(empty)
        await call(client, "interact", user_id="s1", launch=True)
        state = await call(client, "get_state", user_id="s1")
        assert state.structured_content["exists"] is True
        assert "stack frame(s)" in text_of(state)
        merged = await call(
            client, "update_variables", user_id="s1", variables={"order_number": "1002"}
        )
        assert merged.structured_content["state"]["variables"]["order_number"] == "1002"
        assert text_of(merged) == "Set order_number for s1."
        # The next turn's diff starts from what the merge left, not from before it.
        turn = await call(client, "interact", user_id="s1", message="hello there")
        assert "order_number" not in text_of(turn)
        whole = dict(state.structured_content["state"])
        whole["variables"] = {"only": 1}
        replaced = await call(client, "replace_state", user_id="s1", state=whole)
        assert replaced.structured_content["state"]["variables"] == {"only": 1}
        sent = len(emulator.requests)
        partial = await call(client, "replace_state", user_id="s1", state={"variables": {}})
        assert partial.is_error and "'stack' and 'storage'" in text_of(partial)
        assert len(emulator.requests) == sent, "a partial state is refused before any request"
        bad = await call(
            client, "replace_state", user_id="s1", state={"stack": "nope", "storage": {}}
        )
        assert bad.is_error and "send the whole object" in text_of(bad)
        deleted = await call(client, "delete_state", user_id="s1")
        assert deleted.structured_content == {"user_id": "s1", "deleted": True}
        # The server forgot the buttons it kept for s1.
        after = await call(client, "interact", user_id="s1", choice=1)
        assert after.is_error and "knows of no buttons" in text_of(after)


async def test_emit_event_tool(stream_settings: Settings, emulator: Emulator) -> None:
    v4 = stream_settings.api_version == "v4"
    async with Client(build_server(stream_settings)) as client:
        if v4:  # v4 targets the session by its key, so the user must have one
            early = await call(client, "emit_event", session_id="call-7", event="x")
            assert early.is_error and "No v4 session is open" in text_of(early)
            await call(client, "interact", user_id="call-7", launch=True)
        result = await call(
            client,
            "emit_event",
            session_id="call-7",
            event="form_submitted",
            payload={"label": "Form"},
        )
    assert not result.is_error
    assert result.structured_content["status_code"] == (201 if v4 else 200)
    assert emulator.session_events[-1].v4_session is v4
    assert emulator.session_events[-1].action == {
        "type": "event",
        "payload": {"label": "Form", "event": {"name": "form_submitted"}},
    }
    assert "Event 'form_submitted' sent to session call-7" in text_of(result)
    assert "vfsk_" not in text_of(result) + result.model_dump_json()  # the session key stays hidden


async def test_no_tool_output_holds_the_key(settings: Settings, emulator: Emulator) -> None:
    emulator.faults.add(FaultPlan(status=401, body={"data": f"key {CANARY_KEY} rejected"}))
    async with Client(build_server(settings)) as client:
        results = [
            await call(client, "interact", user_id="k", launch=True),
            await call(client, "interact", user_id="k", launch=True, verbosity="debug"),
            await call(client, "get_state", user_id="k"),
        ]
    for result in results:
        assert CANARY_SECRET not in result.model_dump_json()


@pytest.fixture(scope="module", params=["recorded", "hosted"])
def semantics_runtime(request: pytest.FixtureRequest) -> Iterator[tuple[str, Emulator]]:
    """The emulator with each state semantics: what the open-source runtime does, and what
    Voiceflow's hosted docs say, where the two disagree (DELETE and the variables)."""
    with running_emulator([default_agent()], state_semantics=request.param) as emulator:
        yield str(request.param), emulator


@pytest.mark.parametrize("generation", ["legacy"])
async def test_state_tools_say_what_each_runtime_does(
    semantics_runtime: tuple[str, Emulator], settings: Settings
) -> None:
    semantics, emulator = semantics_runtime
    settings = settings.model_copy(update={"runtime_url": emulator.url})
    async with Client(build_server(settings)) as client:
        await call(client, "update_variables", user_id="sem", variables={"tier": "gold"})
        await call(client, "interact", user_id="sem", launch=True)
        whole = (await call(client, "get_state", user_id="sem")).structured_content["state"]
        # What get_state returned goes back unchanged (its base frame's null nodeID included).
        replaced = await call(client, "replace_state", user_id="sem", state=whole)
        assert not replaced.is_error, text_of(replaced)
        deleted = await call(client, "delete_state", user_id="sem")
        assert not deleted.is_error
        after = await call(client, "get_state", user_id="sem")
    if semantics == "recorded":  # the whole record goes, variables included
        assert after.structured_content == {"user_id": "sem", "exists": False, "state": None}
    else:  # the conversation resets, the user's variables stay
        assert after.structured_content["state"]["variables"]["tier"] == "gold"
        assert after.structured_content["state"]["stack"] == []


async def test_output_schemas_are_compact_and_still_describe_every_result(
    settings: Settings, emulator: Emulator
) -> None:
    from jsonschema import Draft202012Validator

    async with Client(build_server(settings)) as client:
        listed = await client.list_tools()
        tools = {t.name: t for t in listed.tools}
        turn = await call(client, "interact", user_id="flat", launch=True)
        state = await call(client, "get_state", user_id="flat")
        record = await call(client, "transcript", user_id="flat")
    # What every client receives on every connection: the bound on the whole answer.
    wire = listed.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert len(json.dumps(wire, separators=(",", ":"))) <= TOOLS_LIST_BYTES
    from vf_mcp.tools import TOOLS

    offered = {spec.name for spec in TOOLS if not (spec.needs_agents or spec.app_only)}
    assert set(tools) == offered  # every tool one agent offers (12 since import_transcripts)
    for tool in tools.values():
        text = json.dumps(tool.output_schema)
        assert '"title": "' not in text and '"description": "' not in text, tool.name
        Draft202012Validator.check_schema(tool.output_schema)
    assert tools["get_run"].output_schema == tools["cancel_run"].output_schema
    # The client's own check (it validates every result) passed; so does a strict validator.
    Draft202012Validator(tools["interact"].output_schema).validate(turn.structured_content)
    Draft202012Validator(tools["get_state"].output_schema).validate(state.structured_content)
    Draft202012Validator(tools["transcript"].output_schema).validate(record.structured_content)
    bad = {**(turn.structured_content or {}), "status": "asleep"}
    assert list(Draft202012Validator(tools["interact"].output_schema).iter_errors(bad))
    shown = {**(turn.structured_content or {}), "choices": [{"number": "one", "label": "x"}]}
    assert list(Draft202012Validator(tools["interact"].output_schema).iter_errors(shown))


def test_the_shipped_output_schemas_are_what_the_result_models_generate() -> None:
    """Run scripts/output-schemas after changing a result model; a start reads the file."""
    from vf_mcp.tools import TOOLS
    from vf_mcp.tools.schemas import generated_schemas, published_schemas

    generated = generated_schemas([(spec.name, spec.function) for spec in TOOLS])
    assert published_schemas() == generated


def test_a_run_result_pins_each_tests_transcript_by_its_version() -> None:
    from jsonschema import Draft202012Validator

    from vf_mcp.domain.transcript import SCHEMA_VERSION
    from vf_mcp.tools.schemas import published_schemas

    def run(test: dict[str, Any]) -> dict[str, Any]:
        suite = {"name": "s", "started_at": "2026-01-01T00:00:00Z", "tests": [test]}
        return {"schema_version": SCHEMA_VERSION, "suites": [suite]}

    valid = Draft202012Validator(published_schemas()["run_conversation"]).is_valid
    assert valid(run({"schema_version": SCHEMA_VERSION}))  # the rest: transcript-v2.json
    assert not valid(run({"schema_version": "vf-mcp/transcript/v0"}))
    assert not valid(run({}))
    shared = published_schemas()["interact"]["$defs"]  # used twice, defined once
    assert list(shared) == ["VariableChange"]
