"""The Voiceflow emulator over real loopback HTTP: wire format, agent behaviour, faults."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.emulator_fixtures import EXAMPLE, KEY
from tests.sse_frames import parse_sse, stream_traces
from vf_mcp.emulator import (
    DEFAULT_AGENT_PATH,
    AgentDefinition,
    AgentFileError,
    Emulator,
    FaultPlan,
    TurnOptions,
    load_agent,
    run_turn,
    running_emulator,
)
from vf_mcp.emulator.wire import dumps_raw_controls

REPO = Path(__file__).resolve().parents[1]
MAIN_MENU = ["Track an order", "Ask a question", "Talk to a person"]
ANY_24_HEX = "66ac4456ce370d54189e8731"


# -- fixtures and helpers ---------------------------------------------------------------------


def visible(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the interact endpoint's default filter leaves of an engine turn."""
    return [t for t in traces if t["type"] not in ("block", "debug", "flow")]


def interact(client: httpx.Client, user: str, action: Any, **body: Any) -> list[dict[str, Any]]:
    response = client.post(f"/state/user/{user}/interact", json={"action": action, **body})
    assert response.status_code == 200, response.text
    traces: list[dict[str, Any]] = response.json()
    return traces


def texts(traces: list[dict[str, Any]]) -> list[str]:
    return [t["payload"]["message"] for t in traces if t["type"] == "text"]


def buttons(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    choices = [t for t in traces if t["type"] == "choice"]
    assert len(choices) == 1, traces
    found: list[dict[str, Any]] = choices[0]["payload"]["buttons"]
    return found


def press(client: httpx.Client, user: str, traces: list[dict[str, Any]], label: str) -> Any:
    request = next(b["request"] for b in buttons(traces) if b["name"] == label)
    return interact(client, user, request)


def stream(
    client: httpx.Client, project: str, user: str, action: Any, query: str = "", **body: Any
) -> tuple[httpx.Response, bytes]:
    url = f"/v2/project/{project}/user/{user}/interact/stream{query}"
    with client.stream("POST", url, json={"action": action, **body}) as response:
        return response, response.read()


def event(name: str) -> dict[str, Any]:
    return {"type": "event", "payload": {"event": {"name": name}}}


# -- the agent file ---------------------------------------------------------------------------


def test_example_agent_is_shipped_inside_the_package() -> None:
    assert EXAMPLE.read_bytes() == DEFAULT_AGENT_PATH.read_bytes()
    agent = load_agent(EXAMPLE)
    assert agent.name == "Acme order support"
    assert len(agent.project_id) == 24
    assert Emulator().agents == (agent,)


def test_agent_references_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown node id"):
        AgentDefinition.model_validate(
            {
                "project_id": ANY_24_HEX,
                "name": "broken",
                "start": "a",
                "nodes": {"a": {"steps": [{"type": "goto", "node": "missing"}]}},
            }
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text("project_id: nothex\nname: x\nstart: a\nnodes: {}\n")
    with pytest.raises(AgentFileError, match=r"bad\.yaml"):
        load_agent(bad)


def test_busy_port_fails_fast_in_the_callers_thread(server: Emulator) -> None:
    with pytest.raises(OSError, match="in use"):
        Emulator().start(port=server.port)


def test_serves_on_ipv6_loopback_with_a_url_clients_can_use() -> None:
    try:
        emulator = Emulator().start(host="::1")
    except OSError as exc:  # a container without IPv6 loopback cannot hold this promise
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert emulator.url == f"http://[::1]:{emulator.port}"
        with httpx.Client(base_url=emulator.url) as anonymous:
            # The emulator's own answer (its 401 body), so the request did reach it.
            assert anonymous.get("/state/user/u").json()["data"] == "Auth Key Required"
    finally:
        emulator.stop()


def test_engine_runs_a_turn_without_http() -> None:
    agent = load_agent(EXAMPLE)
    traces, state = run_turn(agent, None, {"type": "launch"}, TurnOptions(user_id="pure"))
    # The engine gives every trace; the endpoints filter (block, debug, flow by default).
    assert [t["type"] for t in traces] == [
        "flow", "block", "debug", "block", "text", "block", "choice",
    ]  # fmt: skip
    assert [t["payload"].get("blockID") for t in traces if t["type"] == "block"] == [
        "start",
        "welcome",
        "main_menu",
    ]
    assert state["variables"]["sessions"] == 2  # a new user's first launch, as recorded
    assert state["stack"][0] == {
        "nodeID": None,
        "diagramID": agent.version,
        "storage": {"isBase": True},
        "commands": [],
        "variables": {},
    }
    assert state["stack"][1]["nodeID"] == "main_menu"
    assert set(state) == {"stack", "storage", "variables"}


# -- auth and environments --------------------------------------------------------------------


def test_missing_key_is_401_auth_key_required(emu: Emulator, project: str) -> None:
    with httpx.Client(base_url=emu.url) as anonymous:
        legacy = anonymous.post("/state/user/u/interact", json={"action": {"type": "launch"}})
        streamed = anonymous.post(
            f"/v2/project/{project}/user/u/interact/stream", json={"action": {"type": "launch"}}
        )
    for response in (legacy, streamed):
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == 401
        assert body["status"] == "Unauthorized"
        assert body["data"] == "Auth Key Required"
        assert body["dateTime"].endswith("Z")
        assert isinstance(body["timestamp"], int)


def test_key_without_dm_prefix_is_unauthorized(client: httpx.Client) -> None:
    response = client.get("/state/user/u", headers={"Authorization": "Bearer VF.DM.x.y"})
    assert response.status_code == 401
    assert response.json()["data"] == "Unauthorized"


def test_keys_select_agents_and_projects() -> None:
    def agent(project_id: str, name: str, api_key: str | None) -> AgentDefinition:
        return AgentDefinition.model_validate(
            {
                "project_id": project_id,
                "name": name,
                "api_key": api_key,
                "start": "hi",
                "nodes": {"hi": {"steps": [{"type": "text", "message": f"I am {name}"}]}},
            }
        )

    first = agent("aaaaaaaaaaaaaaaaaaaaaaaa", "first", "VF.DM.first.secret")
    second = agent("bbbbbbbbbbbbbbbbbbbbbbbb", "second", None)
    with running_emulator([first, second]) as emu, httpx.Client(base_url=emu.url) as http:
        launch = {"action": {"type": "launch"}}

        def say(key: str) -> httpx.Response:
            return http.post("/state/user/u/interact", json=launch, headers={"Authorization": key})

        assert texts(say("VF.DM.first.secret").json()) == ["I am first"]
        assert texts(say(f"VF.DM.{second.project_id}.anything").json()) == ["I am second"]
        assert say("VF.DM.unknown.key").json()["data"] == "Unauthorized"
        wrong_project = http.post(
            f"/v2/project/{second.project_id}/user/u/interact/stream",
            json=launch,
            headers={"Authorization": "VF.DM.first.secret"},
        )
        assert wrong_project.status_code == 401
        assert wrong_project.json()["data"] == "no access to project"


def test_unknown_version_alias_is_a_400_verror(client: httpx.Client) -> None:
    for response in (
        client.post(
            "/state/user/u/interact",
            json={"action": {"type": "launch"}},
            headers={"versionID": "nightly"},
        ),
        client.get("/state/user/u", headers={"versionID": "nightly"}),
    ):
        assert response.status_code == 400
        body = response.json()
        assert body["name"] == "verror"
        assert body["message"] == (
            "Cannot resolve version alias, please verify that your API key is correct."
        )
        assert body["requestID"]


@pytest.mark.parametrize("version", ["production", "main", ANY_24_HEX])
def test_known_versions_and_ids_are_accepted(client: httpx.Client, version: str) -> None:
    response = client.post(
        "/state/user/u/interact",
        json={"action": {"type": "launch"}},
        headers={"versionID": version},
    )
    assert response.status_code == 200


def test_unknown_stream_environment_is_404(client: httpx.Client, project: str) -> None:
    response, _ = stream(client, project, "u", {"type": "launch"}, "?environment=nightly")
    assert response.status_code == 404
    assert response.json()["data"] == "Environment nightly does not exist"
    response, _ = stream(client, project, "u", {"type": "launch"}, f"?environment={ANY_24_HEX}")
    assert response.status_code == 200


# -- the order-support conversation -----------------------------------------------------------


def test_launch_track_order_and_capture(client: httpx.Client, emu: Emulator) -> None:
    welcome = interact(client, "ann", {"type": "launch"})
    assert texts(welcome) == ["Hi! I'm the Acme order assistant. What can I do for you?"]
    assert [b["name"] for b in buttons(welcome)] == MAIN_MENU
    assert buttons(welcome)[0]["request"] == {
        "type": "path-ask_order",
        "payload": {"label": "Track an order"},
    }

    asked = press(client, "ann", welcome, "Track an order")
    assert texts(asked) == ["Sure. What's your order number?"]
    assert [t["type"] for t in asked] == ["path", "text", "no-reply"]
    assert asked[0]["payload"] == {"path": "choice:1"}
    assert asked[2]["payload"] == {"timeout": 30}

    missing = interact(client, "ann", {"type": "text", "payload": "9999"})
    assert texts(missing) == ["I couldn't find order 9999. Please check the number and try again."]

    found = interact(client, "ann", {"type": "text", "payload": "It's 1001"})
    assert texts(found) == ["Order 1001 has shipped and should arrive on Friday."]
    assert [b["name"] for b in buttons(found)] == [
        "Track another order",
        "Talk to a person",
        "That's all",
    ]
    state = emu.state("ann")
    assert state is not None
    assert state["variables"]["order_number"] == "1001"
    assert state["variables"]["order_status"] == "shipped"
    assert state["variables"]["sessions"] == 2
    assert state["variables"]["last_utterance"] == "It's 1001"

    again = press(client, "ann", found, "Track another order")
    assert texts(again) == ["Sure. What's your order number?"]
    second = interact(client, "ann", {"type": "text", "payload": "1002"})
    assert texts(second) == ["Order 1002 is being prepared and will ship tomorrow."]

    bye = press(client, "ann", second, "That's all")
    assert texts(bye) == ["Thanks for contacting Acme. Goodbye!"]
    assert bye[-1]["type"] == "end"
    restarted = interact(client, "ann", {"type": "text", "payload": "hello again"})
    assert texts(restarted) == ["Hi! I'm the Acme order assistant. What can I do for you?"]
    after = emu.state("ann")
    assert after is not None
    assert after["variables"]["sessions"] == 3  # an ended conversation starts a new session


def test_unrecognised_text_reprompts_with_the_same_buttons(client: httpx.Client) -> None:
    welcome = interact(client, "bo", {"type": "launch"})
    confused = interact(client, "bo", {"type": "text", "payload": "purple elephants"})
    assert texts(confused) == ["Sorry, I didn't get that."]
    assert buttons(confused) == buttons(welcome)
    by_label = interact(client, "bo", {"type": "text", "payload": "ask a question"})
    assert texts(by_label) == ["What would you like to know?"]


def test_no_reply_reasks_for_the_order_number(client: httpx.Client) -> None:
    interact(client, "cy", {"type": "launch"})
    interact(client, "cy", {"type": "path-ask_order", "payload": {"label": "Track an order"}})
    reasked = interact(client, "cy", {"type": "no-reply"})
    assert texts(reasked) == ["Are you still there? What's your order number?"]


def test_track_order_intent_with_and_without_entity(client: httpx.Client) -> None:
    interact(client, "di", {"type": "launch"})
    intent = {"type": "intent", "payload": {"intent": {"name": "track_order"}, "query": ""}}
    assert texts(interact(client, "di", intent)) == ["Sure. What's your order number?"]
    with_entity = {
        "type": "intent",
        "payload": {
            "intent": {"name": "track_order"},
            "query": "where is order 1002",
            "entities": [{"name": "order_number", "value": "1002"}],
        },
    }
    answered = interact(client, "di", with_entity)
    assert texts(answered) == ["Order 1002 is being prepared and will ship tomorrow."]


def test_knowledge_answers_and_fallback(client: httpx.Client) -> None:
    welcome = interact(client, "ed", {"type": "launch"})
    assert texts(press(client, "ed", welcome, "Ask a question")) == ["What would you like to know?"]
    answer = interact(client, "ed", {"type": "text", "payload": "How long does shipping take?"})
    assert texts(answer)[0].startswith("Standard shipping takes 3-5 business days")
    assert answer[0]["payload"] == {"path": "capture"}
    # What was retrieved comes first, in the documented knowledgeBase shape, then the answer.
    retrieved = answer[1]
    assert retrieved["type"] == "knowledgeBase"
    [chunk] = retrieved["payload"]["chunks"]
    assert chunk["documentData"] == {"type": "text", "name": "Shipping times"}
    assert chunk["content"] == texts(answer)[0] and 0 < chunk["score"] <= 1
    assert re.fullmatch(r"[0-9a-f]{24}", chunk["documentID"])
    assert retrieved["payload"]["query"]["messages"][0]["content"] == "How long does shipping take?"
    assert answer[2]["payload"]["ai"] is True
    assert [b["name"] for b in buttons(answer)] == [
        "Ask another question",
        "Talk to a person",
        "That's all",
    ]
    press(client, "ed", answer, "Ask another question")
    hours = interact(client, "ed", {"type": "text", "payload": "what are your opening hours"})
    assert texts(hours)[0].startswith("Our support team is available Monday to Friday")
    press(client, "ed", hours, "Ask another question")
    unknown = interact(client, "ed", {"type": "text", "payload": "Do you sell bicycles?"})
    assert texts(unknown) == ["I'm not sure about that. Would you like to talk to a person?"]
    assert "knowledgeBase" not in [t["type"] for t in unknown]  # nothing was retrieved


def test_talk_to_a_person_waits_for_the_custom_action(client: httpx.Client) -> None:
    welcome = interact(client, "flo", {"type": "launch"})
    handoff = press(client, "flo", welcome, "Talk to a person")
    assert texts(handoff) == ["Connecting you to a person now. Please hold on."]
    action = handoff[-1]
    assert action["type"] == "talk_to_agent"
    # A declared variable nobody set is 0, the runtime's "not set yet".
    assert action["payload"] == {"reason": "customer_request", "order_number": 0}
    assert action["paths"] == [{"event": {"type": "done"}}]
    assert action["defaultPath"] == 0
    back = interact(client, "flo", {"type": "done"})
    assert texts(back) == ["You're back with the Acme assistant. Anything else?"]
    assert [b["name"] for b in buttons(back)] == MAIN_MENU


def test_handoff_payload_carries_the_order_number(client: httpx.Client) -> None:
    interact(client, "gus", {"type": "launch"})
    interact(client, "gus", {"type": "path-ask_order", "payload": {"label": "Track an order"}})
    found = interact(client, "gus", {"type": "text", "payload": "1001"})
    handoff = press(client, "gus", found, "Talk to a person")
    assert handoff[-1]["payload"] == {"reason": "customer_request", "order_number": "1001"}


def test_custom_event_interrupts_and_returns_to_the_menu(client: httpx.Client) -> None:
    welcome = interact(client, "hal", {"type": "launch"})
    shipped = interact(client, "hal", event("order_shipped"))
    assert [t["type"] for t in shipped] == ["path", "text"]
    assert shipped[0]["payload"] == {"path": "push"}
    assert texts(shipped) == ["Good news: your order has shipped!"]
    assert texts(press(client, "hal", welcome, "Track an order")) == [
        "Sure. What's your order number?"
    ]


def test_verbose_returns_state_trace_and_request(client: httpx.Client) -> None:
    action = {"type": "launch"}
    response = client.post("/state/user/ivy/interact?verbose=true", json={"action": action})
    body = response.json()
    assert set(body) == {"state", "trace", "request"}
    assert body["request"] == action
    assert [t["type"] for t in body["trace"]] == ["text", "choice"]
    assert set(body["state"]) >= {"stack", "storage", "variables"}
    assert body["state"]["variables"]["user_id"] == "ivy"


def test_request_alias_and_state_variables_are_honoured(
    client: httpx.Client, emu: Emulator
) -> None:
    body = {"request": {"type": "launch"}, "state": {"variables": {"order_number": "1002"}}}
    response = client.post("/state/user/jo/interact", json=body)
    assert texts(response.json())[0].startswith("Hi!")
    state = emu.state("jo")
    assert state is not None
    assert state["variables"]["order_number"] == "1002"


def test_exclude_types_default_and_empty(client: httpx.Client) -> None:
    default = interact(client, "kay", event("all_traces"))
    everything = interact(client, "kay", event("all_traces"), config={"excludeTypes": []})
    default_types = {t["type"] for t in default}
    all_types = {t["type"] for t in everything}
    assert not default_types & {"block", "debug", "flow"}
    documented = {
        "text", "speak", "visual", "choice", "cardV2", "carousel", "no-reply", "path", "flow",
        "block", "debug", "goto", "entity-filling", "channel-action", "knowledgeBase", "log",
        "stream", "completion", "audio", "reasoning", "tool-call", "call-forward", "dtmf",
        "live-agent-handoff", "realtime-agent", "x-custom-widget",
    }  # fmt: skip
    assert all_types == documented
    assert all_types - default_types == {"block", "debug", "flow"}
    assert everything[-1]["type"] == "choice"  # the conversation keeps waiting


def test_credit_error_debug_trace_is_not_excluded_by_default(
    client: httpx.Client, project: str
) -> None:
    for traces in (
        interact(client, "lu", event("credit_error")),
        stream_traces(stream(client, project, "lu", event("credit_error"))[1]),
    ):
        assert [t["type"] for t in traces] == ["path", "debug", "end"]
        assert traces[1]["payload"]["level"] == "error"
        assert traces[1]["payload"]["message"] == (
            "credit_limit_reached: your workspace is out of AI credits"
        )
    explicit = interact(client, "lu", event("credit_error"), config={"excludeTypes": ["debug"]})
    # An explicit list replaces the default one: block and flow traces come through now.
    assert [t["type"] for t in explicit] == ["block", "path", "flow", "block", "end"]


def test_stop_types_stop_at_a_non_stopping_custom_action() -> None:
    agent = AgentDefinition.model_validate(
        {
            "project_id": ANY_24_HEX,
            "name": "pay",
            "start": "pay",
            "nodes": {
                "pay": {
                    "steps": [
                        {"type": "custom_action", "name": "Pay Credit Card", "stop": False},
                        {"type": "text", "message": "paid"},
                    ]
                }
            },
        }
    )
    launch = {"type": "launch"}
    flowing, _ = run_turn(agent, None, launch, TurnOptions(user_id="x"))
    assert [t["type"] for t in visible(flowing)] == ["Pay Credit Card", "text", "end"]
    stopped, state = run_turn(
        agent, None, launch, TurnOptions(user_id="x", stop_types=frozenset({"Pay Credit Card"}))
    )
    assert [t["type"] for t in visible(stopped)] == ["Pay Credit Card"]
    resumed, _ = run_turn(agent, state, {"type": "done"}, TurnOptions(user_id="x"))
    assert texts(resumed) == ["paid"]


def test_the_example_agent_prices_a_reorder_with_a_tool_and_waits_on_checkout(
    client: httpx.Client,
) -> None:
    welcome = interact(client, "rex", {"type": "launch"})
    press(client, "rex", welcome, "Track an order")
    interact(client, "rex", {"type": "text", "payload": "1001"})
    every = {"config": {"excludeTypes": []}}
    traces = interact(client, "rex", {"type": "text", "payload": "order it again"}, **every)
    kinds = [t["type"] for t in traces]
    start, ref, end = (
        kinds.index("tool-call"),
        kinds.index("tool-call") + 1,
        len(kinds) - 1 - kinds[::-1].index("tool-call"),
    )
    assert traces[start]["payload"]["state"] == "start" and traces[end]["payload"]["state"] == "end"
    assert traces[start]["payload"]["callID"] == traces[end]["payload"]["callID"]
    # The trace between them names the tool with a documented api-tool ref.
    assert traces[ref]["type"] == "debug" and end == ref + 1
    assert traces[ref]["payload"]["ref"] == {
        "type": "api-tool",
        "nodeID": "reorder_quote",
        "diagramID": "411834fa29c2b2825683eddf",
        "apiToolID": "6650f0c2a1b2c3d4e5f6a001",
        "apiToolName": "price_order",
    }
    checkout = traces[-1]
    assert checkout["type"] == "checkout" and list(checkout) == [
        "time",
        "type",
        "payload",
        "defaultPath",
        "paths",
    ]
    assert checkout["payload"] == {"order_number": "1001", "total": "42.50"}
    assert checkout["paths"] == [
        {"label": "done", "event": {"type": "done"}},
        {"label": "cancel", "event": {"type": "cancel"}},
    ]
    assert texts(interact(client, "rex", {"type": "done"})) == [
        "Payment received. Order 1001 is on its way again."
    ]
    # The default filter drops the debug trace: the call is there, its name is not.
    press(client, "rex", interact(client, "rex", {"type": "launch"}), "Track an order")
    interact(client, "rex", {"type": "text", "payload": "1002"})
    plain = interact(client, "rex", {"type": "text", "payload": "reorder"})
    assert [t["type"] for t in plain if t["type"] in ("tool-call", "debug")] == ["tool-call"] * 2
    assert texts(interact(client, "rex", {"type": "cancel"})) == [
        "Checkout cancelled. Anything else?"
    ]


def test_a_tool_step_sets_its_result_and_may_name_no_tool() -> None:
    agent = AgentDefinition.model_validate(
        {
            "project_id": ANY_24_HEX,
            "name": "tools",
            "start": "go",
            "nodes": {
                "go": {
                    "steps": [
                        {
                            "type": "tool",
                            "name": "lookup",
                            "kind": "function",
                            "result": {"found": "{who}"},
                        },
                        {"type": "tool", "name": "secret", "named": False},
                        {"type": "text", "message": "found {found}"},
                    ]
                }
            },
            "variables": {"who": "Ada"},
        }
    )
    traces, state = run_turn(agent, None, {"type": "launch"}, TurnOptions(user_id="t"))
    calls = [
        t
        for t in traces
        if t["type"] in ("tool-call", "debug")
        and t["payload"].get("callID", t["payload"].get("ref"))
    ]
    assert [t["type"] for t in calls] == [
        "tool-call",
        "debug",
        "tool-call",
        "tool-call",
        "tool-call",
    ]
    ref = calls[1]["payload"]["ref"]
    assert (ref["type"], ref["functionName"], len(ref["functionID"])) == ("function", "lookup", 24)
    assert calls[2]["payload"]["callID"] != calls[3]["payload"]["callID"]
    assert texts(traces) == ["found Ada"] and state["variables"]["found"] == "Ada"


# -- state endpoints --------------------------------------------------------------------------


def validation_message(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == ["errors"]
    assert list(body["errors"]) == [""]  # the whole body failed, hence the empty key
    message: str = body["errors"][""]["message"]
    return message


def test_state_get_put_delete_patch(client: httpx.Client) -> None:
    assert client.get("/state/user/mo").json() == {}
    interact(client, "mo", {"type": "launch"})
    interact(client, "mo", {"type": "path-ask_order", "payload": {"label": "Track an order"}})
    interact(client, "mo", {"type": "text", "payload": "1001"})
    state = client.get("/state/user/mo").json()
    assert state["stack"][-1]["nodeID"] == "after_order"
    assert state["variables"]["order_number"] == "1001"

    # The runtime's own state does not pass its PUT schema: the base frame's nodeID is null.
    round_trip = client.put("/state/user/mo", json=state)
    assert validation_message(round_trip) == "data.stack[0].nodeID should be string"

    state["variables"]["order_number"] = "1002"
    state["stack"] = state["stack"][1:]  # without the base frame, which the runtime re-adds
    put = client.put("/state/user/mo", json=state)
    assert put.status_code == 200
    assert put.json() == state
    assert put.headers["content-type"] == "application/json; charset=utf-8"

    deleted = client.delete("/state/user/mo")
    assert deleted.status_code == 200
    assert deleted.content == b""
    assert deleted.headers["content-type"].startswith("application/json")
    assert client.get("/state/user/mo").json() == {}  # the whole record, variables too

    patched = client.patch("/state/user/mo/variables", json={"order_status": "lost", "vip": True})
    assert patched.status_code == 200
    assert patched.json() == {"variables": {"order_status": "lost", "vip": True}}
    assert client.get("/state/user/mo").json() == patched.json()

    restarted = interact(client, "mo", {"type": "text", "payload": "hi"})
    assert texts(restarted) == ["Hi! I'm the Acme order assistant. What can I do for you?"]
    after = client.get("/state/user/mo").json()
    assert after["variables"]["vip"] is True
    assert after["variables"]["sessions"] == 1
    assert after["variables"]["order_number"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"variables": {}},
            "data should have required property 'stack', "
            "data should have required property 'storage'",
        ),
        (
            {"stack": [], "storage": {}},
            "data should have required property 'variables'",
        ),
        (
            {"stack": [], "storage": {}, "variables": {}, "turn": {}, "x": 1},
            "data should NOT have additional properties, "
            "data should NOT have additional properties",
        ),
        (
            {"stack": [{}, 3], "storage": [], "variables": None},
            "data.stack[0] should have required property 'diagramID', "
            "data.stack[1] should be object, data.storage should be object, "
            "data.variables should be object",
        ),
        (
            {
                "stack": [{"diagramID": 7, "nodeID": None, "commands": [1], "storage": "s"}],
                "storage": {},
                "variables": {},
            },
            "data.stack[0].nodeID should be string, data.stack[0].diagramID should be string, "
            "data.stack[0].storage should be object, data.stack[0].commands[0] should be object",
        ),
        ("nope", "data should be object"),
        (None, "data should have required property 'stack', "
         "data should have required property 'storage', "
         "data should have required property 'variables'"),
    ],
    ids=["partial", "no-variables", "extra-keys", "bad-types", "bad-frame", "not-object", "empty"],
)  # fmt: skip
def test_put_state_is_validated_like_the_runtime(
    client: httpx.Client, emu: Emulator, body: Any, message: str
) -> None:
    content = b"" if body is None else json.dumps(body).encode()  # None: no body at all
    response = client.put("/state/user/ned", content=content)
    assert validation_message(response) == message
    assert emu.state("ned") is None  # a rejected PUT stores nothing, not even part of it


def test_patch_on_a_new_user_stores_only_the_variables(client: httpx.Client) -> None:
    patched = client.patch("/state/user/ola/variables", json={"order_number": "1001"})
    assert patched.json() == {"variables": {"order_number": "1001"}}
    not_an_object = client.patch("/state/user/ola/variables", json=[1])
    assert validation_message(not_an_object) == "Invalid value"


def test_hosted_state_semantics_keep_variables_on_delete() -> None:
    with (
        running_emulator([load_agent(EXAMPLE)], state_semantics="hosted") as emu,
        httpx.Client(base_url=emu.url, headers={"Authorization": KEY}) as http,
    ):
        assert emu.state_semantics == "hosted"
        http.post("/state/user/mo/interact", json={"action": {"type": "launch"}})
        http.patch("/state/user/mo/variables", json={"order_number": "1002"})
        assert http.delete("/state/user/mo").status_code == 200
        after = http.get("/state/user/mo").json()
        assert after["stack"] == []
        assert after["storage"] == {}
        assert after["variables"]["order_number"] == "1002"  # variables survive the reset
        fresh = http.patch("/state/user/new/variables", json={"vip": True}).json()
        assert set(fresh) == {"stack", "storage", "variables"}
        assert fresh["stack"] == []
        assert fresh["variables"]["vip"] is True
        assert fresh["variables"]["user_id"] == "new"


# -- SSE --------------------------------------------------------------------------------------


def test_sse_framing_with_state_and_end(client: httpx.Client, project: str) -> None:
    response, raw = stream(client, project, "pia", {"type": "launch"}, "?state=true")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = parse_sse(raw)
    assert [e.event for e in events] == ["trace", "trace", "state", "end"]
    assert [e.id for e in events] == ["1", "2", "3", "4"]
    assert raw.startswith(b"event: trace\nid: 1\ndata: {")
    assert raw.endswith(b"event: end\nid: 4\n\n")
    assert events[-1].data is None
    assert events[0].json()["payload"]["message"].startswith("Hi!")
    assert events[2].json()["variables"]["sessions"] == 2
    assert events[2].json()["stack"][-1]["nodeID"] == "main_menu"


def test_stream_variables_merge_and_no_state_event_by_default(
    client: httpx.Client, project: str, emu: Emulator
) -> None:
    _, raw = stream(client, project, "quin", {"type": "launch"}, variables={"order_number": "7"})
    assert [e.event for e in parse_sse(raw)] == ["trace", "trace", "end"]
    state = emu.state("quin")
    assert state is not None
    assert state["variables"]["order_number"] == "7"


def test_completion_events_stream_the_knowledge_answer(client: httpx.Client, project: str) -> None:
    question = {"type": "text", "payload": "How do I return an item?"}
    interact(client, "rae", {"type": "launch"})
    interact(client, "rae", {"type": "path-ask_question", "payload": {"label": "Ask a question"}})
    plain = texts(interact(client, "rae", question))[0]

    interact(client, "rae", {"type": "path-ask_question", "payload": {"label": "Ask a question"}})
    _, raw = stream(client, project, "rae", question, "?completion_events=true")
    traces = stream_traces(raw)
    completions = [t for t in traces if t["type"] == "completion"]
    states = [t["payload"]["state"] for t in completions]
    assert states[0] == "start"
    assert states[-1] == "end"
    assert states.count("content") >= 3
    assert completions[0]["payload"]["messageID"]
    streamed = "".join(t["payload"]["content"] for t in completions if "content" in t["payload"])
    assert streamed == plain
    assert not [t for t in traces if t["type"] == "text"]
    # Produced lazily, with the agent's per-chunk delay between them.
    assert completions[-1]["time"] > completions[0]["time"]


def test_audio_events_add_audio_traces(client: httpx.Client, project: str) -> None:
    _, raw = stream(client, project, "sam", {"type": "launch"}, "?audio_events=true")
    audio = [t for t in stream_traces(raw) if t["type"] == "audio"]
    assert [t["payload"]["state"] for t in audio] == ["start", "content", "end"]
    assert audio[1]["payload"]["encoding"] == "audio/mp3"


def test_control_characters_are_written_raw(client: httpx.Client, project: str) -> None:
    _, raw = stream(client, project, "tia", event("all_traces"))
    data_lines = [line for line in raw.split(b"\n") if line.startswith(b"data: ")]
    text_line = next(line for line in data_lines if b'"type":"text"' in line)
    assert b"\t" in text_line
    assert b"\x01" in text_line
    assert b"\\u0001" not in raw
    assert b"\x1f" in next(line for line in data_lines if b"x-custom-widget" in line)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text_line[6:])
    trace = json.loads(text_line[6:], strict=False)
    assert trace["payload"]["message"].startswith("Every trace type follows.\tTabs")
    legacy = client.post("/state/user/tia/interact", json={"action": event("all_traces")})
    assert "\\u0001" in legacy.text  # the non-stream endpoint is plain strict JSON


def test_raw_serializer_keeps_framing_and_backslash_escapes() -> None:
    value = {"s": 'a\x01b\tc\nd\re\\u0001f\\\x02"g'}
    text = dumps_raw_controls(value)
    assert "\n" not in text
    assert "\r" not in text
    assert "\x01" in text
    assert "\x02" in text
    assert "\t" in text
    assert "\\\\u0001f" in text  # an escaped backslash before "u0001" is not an escape
    assert json.loads(text, strict=False) == value


def test_stream_types_match_legacy_default_exclusions(client: httpx.Client, project: str) -> None:
    _, raw = stream(client, project, "uma", event("all_traces"))
    streamed = {t["type"] for t in stream_traces(raw)}
    assert not streamed & {"block", "debug", "flow"}
    assert {"x-custom-widget", "completion", "knowledgeBase"} <= streamed


# -- faults -----------------------------------------------------------------------------------


def test_fault_429_with_retry_after(client: httpx.Client, emu: Emulator) -> None:
    emu.faults.add(FaultPlan(status=429, retry_after=3))
    limited = client.post("/state/user/vi/interact", json={"action": {"type": "launch"}})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["code"] == 429
    assert limited.json()["data"] == "Too Many Requests"
    assert emu.faults.pending == []
    assert emu.requests[-1].fault is not None
    assert emu.requests[-1].fault.status == 429
    assert client.post("/state/user/vi/interact", json={"action": {"type": "launch"}}).is_success


def test_fault_503_with_text_body_and_matching(client: httpx.Client, emu: Emulator) -> None:
    emu.faults.add(
        FaultPlan.model_validate(
            {"match": {"method": "GET", "path_contains": "/state/user/"}, "status": 503,
             "body": "upstream unavailable", "times": 2}
        )
    )  # fmt: skip
    assert client.post("/state/user/wu/interact", json={"action": {"type": "launch"}}).is_success
    for _ in range(2):
        failed = client.get("/state/user/wu")
        assert failed.status_code == 503
        assert failed.text == "upstream unavailable"
    assert client.get("/state/user/wu").is_success
    assert len(emu.faults.applied) == 2


def test_latency_fault_is_consumed_and_recorded(client: httpx.Client, emu: Emulator) -> None:
    emu.faults.add(FaultPlan(latency_ms=5, times=-1))
    assert client.get("/state/user/xia").is_success
    assert client.get("/state/user/xia").is_success
    assert [r.fault.latency_ms for r in emu.requests if r.fault] == [5, 5]
    assert emu.faults.pending[0].used == 2
    assert emu.faults.pending[0].remaining == -1


def test_cut_stream_has_no_end_event(client: httpx.Client, emu: Emulator, project: str) -> None:
    emu.faults.add(FaultPlan(cut_stream_after_events=2))
    assert client.get("/state/user/yan").is_success  # stream-only faults wait for a stream
    received = bytearray()
    url = f"/v2/project/{project}/user/yan/interact/stream"
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", url, json={"action": event("all_traces")}) as response,
    ):
        for chunk in response.iter_raw():
            received.extend(chunk)
    events = parse_sse(bytes(received))
    assert [e.event for e in events] == ["trace", "trace"]
    assert emu.faults.pending == []
    state = emu.state("yan")
    assert state is not None
    assert state["stack"][-1]["nodeID"] == "all_traces"  # the turn still completed server-side


def test_slow_stream_fault_still_delivers_everything(
    client: httpx.Client, emu: Emulator, project: str
) -> None:
    emu.faults.add(FaultPlan(chunk_delay_ms=1))
    _, raw = stream(client, project, "zed", {"type": "launch"})
    assert [e.event for e in parse_sse(raw)] == ["trace", "trace", "end"]
    assert emu.requests[-1].fault is not None
    assert emu.requests[-1].fault.chunk_delay_ms == 1


# -- session events and recordings ------------------------------------------------------------


def test_session_event_is_recorded_not_applied(
    client: httpx.Client, emu: Emulator, project: str
) -> None:
    interact(client, "al", {"type": "launch"})
    before = emu.state("al")
    response = client.post(
        f"/v2/project/{project}/session/al/event", json={"action": event("order_shipped")}
    )
    assert response.status_code == 200
    assert response.json() == "Event broadcasted, does not guarantee if the session exists"
    [recorded] = emu.session_events
    assert recorded.session_id == "al"
    assert recorded.project_id == project
    assert recorded.action == event("order_shipped")
    assert emu.state("al") == before
    bad = client.post(f"/v2/project/{project}/session/al/event", json={"nope": 1})
    assert bad.status_code == 400


def test_requests_are_recorded_without_the_key(client: httpx.Client, emu: Emulator) -> None:
    client.post(
        "/state/user/bea/interact?logs=off",
        json={"action": {"type": "launch"}},
        headers={"versionID": "production"},
    )
    [recorded] = emu.requests
    assert recorded.method == "POST"
    assert recorded.path == "/state/user/bea/interact"
    assert recorded.query == {"logs": "off"}
    assert recorded.headers["versionid"] == "production"
    assert KEY not in json.dumps(recorded.to_dict())
    assert recorded.json == {"action": {"type": "launch"}}
    assert recorded.client_port is not None
    client.get("/state/user/bea")
    assert emu.requests[-1].client_port == recorded.client_port  # keep-alive connection reused


def test_control_endpoints(client: httpx.Client, emu: Emulator) -> None:
    with httpx.Client(base_url=emu.url) as control:
        health = control.get("/_emulator/health").json()
        assert health["status"] == "ok"
        assert health["agents"][0]["name"] == "Acme order support"

        added = control.post("/_emulator/faults", json={"status": 500, "times": 3})
        assert added.status_code == 201
        assert control.get("/_emulator/faults").json()["pending"][0]["remaining"] == 3
        failed = client.get("/state/user/cat")
        assert failed.status_code == 500
        assert failed.json()["data"] == "Unknown error"
        assert control.delete("/_emulator/faults").json() == {"cleared": 1}
        assert client.get("/state/user/cat").is_success
        assert control.post("/_emulator/faults", json={"times": "lots"}).status_code == 400

        requests = control.get("/_emulator/requests").json()
        assert [r["path"] for r in requests] == ["/state/user/cat", "/state/user/cat"]
        assert requests[0]["fault"]["status"] == 500
        assert requests[0]["headers"]["authorization"] == "<redacted>"

        client.post(
            f"/v2/project/{emu.agents[0].project_id}/session/s1/event",
            json={"action": event("order_shipped")},
        )
        [session_event] = control.get("/_emulator/session-events").json()
        assert session_event["session_id"] == "s1"

        interact(client, "cat", {"type": "launch"})
        assert control.post("/_emulator/reset").json() == {"reset": True}
        assert control.get("/_emulator/requests").json() == []
        assert control.get("/_emulator/session-events").json() == []
        assert emu.state("cat") is None


def test_engine_step_types_in_isolation() -> None:
    agent = AgentDefinition.model_validate(
        {
            "project_id": ANY_24_HEX,
            "name": "steps",
            "start": "start",
            "variables": {"tier": "gold"},
            "nodes": {
                "start": {
                    "steps": [
                        {
                            "type": "speak",
                            "message": "<speak>Hello <break time='1s'/>{tier}</speak>",
                        },
                        {"type": "set", "variables": {"greeting": "hi {tier}", "count": 2}},
                        {
                            "type": "condition",
                            "variable": "tier",
                            "branches": [
                                {"in": ["silver", "gold"], "goto": "vip"},
                                {"exists": False, "goto": "loop"},
                            ],
                        },
                        {"type": "text", "message": "not reached"},
                    ]
                },
                "vip": {
                    "steps": [
                        {"type": "text", "message": "{greeting}, {unknown}", "delay": 250},
                        {"type": "handoff", "mode": "live_agent", "message": "Agent for {tier}"},
                        {"type": "text", "message": "welcome back"},
                    ]
                },
                "loop": {"steps": [{"type": "goto", "node": "loop"}]},
            },
        }
    )
    options = TurnOptions(user_id="steps")
    first, state = run_turn(agent, None, {"type": "launch"}, options)
    first = visible(first)
    assert [t["type"] for t in first] == ["speak", "text", "live-agent-handoff"]
    assert first[0]["payload"]["message"] == "Hello gold"
    assert first[1]["payload"] == {
        "slate": {
            "id": first[1]["payload"]["slate"]["id"],
            "content": [{"children": [{"text": "hi gold, {unknown}"}]}],
            "messageDelayMilliseconds": 250,
        },
        "message": "hi gold, {unknown}",
        "delay": 250,
    }
    assert first[2]["payload"]["message"] == "Agent for gold"
    assert state["variables"]["count"] == 2

    chatting, state = run_turn(
        agent, state, {"type": "live-agent-handoff", "payload": {"type": "message"}}, options
    )
    assert visible(chatting) == []  # only the block of the waiting node
    returned = {"type": "live-agent-handoff", "payload": {"type": "return_to_voiceflow"}}
    back, state = run_turn(agent, state, returned, options)
    assert texts(back) == ["welcome back"]
    assert back[-1]["type"] == "end"
    assert state["stack"] == []  # out of steps: the base frame goes too

    looping, state = run_turn(
        agent, None, {"type": "launch"}, TurnOptions(user_id="loop", variables={"tier": None})
    )
    assert looping[-2]["payload"]["message"] == "ERROR: turn timeout - check for infinite loops"
    assert looping[-1]["type"] == "end"
