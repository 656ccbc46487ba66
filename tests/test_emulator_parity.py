"""The emulator's runtime parity beyond the recorded exchanges: defaults, traces, the new step
types, the agent format's checks, and the options that bring the hosted behaviour back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.children import spawn, stop
from tests.emulator_fixtures import EXAMPLE, KEY
from tests.sse_frames import stream_traces
from vf_mcp.emulator import (
    AgentDefinition,
    Emulator,
    OptionError,
    TurnOptions,
    load_agent,
    run_turn,
    running_emulator,
)

REPO = Path(__file__).resolve().parents[1]
AGENTS = REPO / "vf_mcp" / "emulator" / "agents"
ANY_24_HEX = "66ac4456ce370d54189e8731"
HIDDEN = ("block", "debug", "flow")
Traces = list[dict[str, Any]]


# -- fixtures and helpers ---------------------------------------------------------------------


def interact(client: httpx.Client, user: str, action: Any, **body: Any) -> Traces:
    response = client.post(f"/state/user/{user}/interact", json={"action": action, **body})
    assert response.status_code == 200, response.text
    traces: Traces = response.json()
    return traces


def kinds(traces: Traces) -> list[str]:
    return [t["type"] for t in traces]


def texts(traces: Traces) -> list[str]:
    return [t["payload"]["message"] for t in traces if t["type"] == "text"]


def paths(traces: Traces) -> list[str]:
    return [t["payload"]["path"] for t in traces if t["type"] == "path"]


def agent(nodes: dict[str, Any], **extra: Any) -> AgentDefinition:
    return AgentDefinition.model_validate(
        {"project_id": ANY_24_HEX, "name": "t", "start": next(iter(nodes)), "nodes": nodes, **extra}
    )


class Session:
    """One user's conversation with an agent, run by the engine without HTTP."""

    def __init__(self, definition: AgentDefinition, **options: Any) -> None:
        self.agent = definition
        self.state: dict[str, Any] | None = None
        self.options = TurnOptions(user_id="tester", **options)

    def send(self, action: Any) -> Traces:
        traces, self.state = run_turn(self.agent, self.state, action, self.options)
        return [t for t in traces if t["type"] not in HIDDEN]

    def all(self, action: Any) -> Traces:
        traces, self.state = run_turn(self.agent, self.state, action, self.options)
        return traces

    @property
    def variables(self) -> dict[str, Any]:
        assert self.state is not None
        variables: dict[str, Any] = self.state["variables"]
        return variables


LAUNCH = {"type": "launch"}


def text(payload: str) -> dict[str, Any]:
    return {"type": "text", "payload": payload}


def path(target: str, label: str = "x") -> dict[str, Any]:
    return {"type": f"path-{target}", "payload": {"label": label}}


# -- variables the runtime keeps --------------------------------------------------------------


def test_a_new_state_has_every_variable_at_zero_and_the_bookkeeping_ones(
    client: httpx.Client,
) -> None:
    before = int(time.time())
    interact(client, "vi", {"type": "launch"})
    variables = client.get("/state/user/vi").json()["variables"]
    assert list(variables) == [
        "sessions", "user_id", "timestamp", "platform", "locale", "intent_confidence",
        "last_utterance", "last_response", "order_number", "order_status", "question",
        "_memory_", "vf_memory", "last_event",
    ]  # fmt: skip
    assert variables["sessions"] == 2
    assert variables["user_id"] == "vi"
    assert before <= variables["timestamp"] <= int(time.time())  # unix seconds, an int
    for unset in ("platform", "locale", "intent_confidence", "last_utterance", "order_number"):
        assert variables[unset] == 0  # declared `null` in the file: no default, so 0
    assert variables["last_event"] == {"type": "launch"}


def test_sessions_count_launches_and_new_sessions(client: httpx.Client) -> None:
    interact(client, "se", text("hello"))  # a new user's text: generated state, no launch
    assert client.get("/state/user/se").json()["variables"]["sessions"] == 1
    interact(client, "se", {"type": "launch"})
    assert client.get("/state/user/se").json()["variables"]["sessions"] == 2


def test_memory_keeps_ten_messages_and_joins_one_turns_answers(client: httpx.Client) -> None:
    interact(client, "me", {"type": "launch"})
    interact(client, "me", path("ask_order", "Track an order"))
    for attempt in range(5):
        interact(client, "me", text(f"order {9000 + attempt}"))
    variables = client.get("/state/user/me").json()["variables"]
    memory = variables["_memory_"]
    assert len(memory) == 10
    assert memory[-1] == {
        "role": "assistant",
        "content": "I couldn't find order 9004. Please check the number and try again.",
    }
    assert memory[-2] == {"role": "user", "content": "order 9004"}
    assert variables["vf_memory"].splitlines()[-1] == (
        "assistant: I couldn't find order 9004. Please check the number and try again."
    )
    assert variables["vf_memory"].count("\n") == 9
    assert variables["last_utterance"] == "order 9004"
    # Text goes through the NLU: the flow (and last_event) see the `None` intent.
    assert variables["last_event"] == {
        "type": "intent",
        "payload": {"query": "order 9004", "intent": {"name": "None"}, "entities": []},
    }
    assert variables["intent_confidence"] == 100

    steps = [{"type": "text", "message": "one"}, {"type": "speak", "message": "<b>two</b>"}]
    joined = Session(agent({"a": {"steps": steps}}))
    joined.send(LAUNCH)
    assert joined.variables["_memory_"] == [{"role": "assistant", "content": "one\ntwo"}]
    assert joined.variables["last_response"] == "<b>two</b>"  # variables keep the raw SSML


def test_zero_reads_as_unset_in_conditions() -> None:
    def branch(test: dict[str, Any]) -> str:
        steps = [
            {"type": "condition", "variable": "v", "branches": [{**test, "goto": "yes"}]},
            {"type": "text", "message": "no"},
        ]
        nodes = {"start": {"steps": steps}, "yes": {"steps": [{"type": "text", "message": "yes"}]}}
        return texts(Session(agent(nodes, variables={"v": None})).send(LAUNCH))[0]

    assert branch({"exists": True}) == "no"  # declared without a default: 0, so not there
    assert branch({"exists": False}) == "yes"
    assert branch({"equals": None}) == "yes"
    assert branch({"equals": 0}) == "yes"


# -- trace details ----------------------------------------------------------------------------


def test_trace_keys_come_time_first_and_numbers_stay_integers() -> None:
    pizza = Session(load_agent(AGENTS / "pizza.yaml"))
    traces = pizza.all(LAUNCH) + pizza.all(path("lp-build", "Build a pizza"))
    for trace in traces:
        order = ["type", "payload", "time"] if trace["type"] == "entity-filling" else None
        assert list(trace)[:3] == (order or ["time", "type", "payload"]), trace
        assert isinstance(trace["time"], int)
    spoken = [t for t in traces if t["type"] == "text"]
    assert all(t["payload"]["delay"] == 1000 for t in spoken)
    assert all(t["payload"]["slate"]["messageDelayMilliseconds"] == 1000 for t in spoken)
    waits = [t["payload"]["timeout"] for t in traces if t["type"] == "no-reply"]
    assert waits == [25, 30]
    assert all(type(w) is int for w in waits)


def test_exclude_types_default_explicit_and_empty(client: httpx.Client) -> None:
    default = interact(client, "ex", {"type": "launch"})
    everything = interact(client, "ex", {"type": "launch"}, config={"excludeTypes": []})
    no_text = interact(client, "ex", {"type": "launch"}, config={"excludeTypes": ["text"]})
    assert kinds(default) == ["text", "choice"]
    assert kinds(everything) == ["flow", "block", "debug", "block", "text", "block", "choice"]
    assert everything[2]["payload"] == {"type": "start", "message": "beginning flow"}
    assert kinds(no_text) == ["flow", "block", "debug", "block", "block", "choice"]


def test_verbose_reports_the_request_the_flow_saw(client: httpx.Client) -> None:
    interact(client, "vb", {"type": "launch"})
    body = client.post(
        "/state/user/vb/interact?verbose=true", json={"action": text("talk to an agent")}
    ).json()
    assert body["request"] == {
        "type": "intent",
        "payload": {
            "query": "talk to an agent",
            "intent": {"name": "talk_to_agent"},
            "entities": [],
            "confidence": 1,
        },
    }
    assert paths(body["trace"]) == ["jump"]  # a global intent is a jump command


# -- how a turn moves -------------------------------------------------------------------------


def test_no_match_prompts_run_out_into_the_global_message_or_a_goto() -> None:
    acme = Session(load_agent(AGENTS / "acme.yaml"))
    acme.send(LAUNCH)
    first, second = acme.send(text("what?")), acme.send(text("eh?"))
    assert texts(first) == ["Sorry, I didn't get that. Pick one of the options."]
    assert texts(second) == ["Sorry, I didn't get that."]  # past the node's own prompts
    assert paths(second) == ["reprompt"]
    assert acme.state is not None
    assert acme.state["storage"]["noMatchesCounter"] == 2

    nodes = {
        "menu": {
            "steps": [
                {
                    "type": "choice",
                    "buttons": [{"label": "A", "goto": "a"}],
                    "no_match": {"prompts": ["Pardon?"], "goto": "help"},
                }
            ]
        },
        "a": {"steps": [{"type": "text", "message": "a"}]},
        "help": {"steps": [{"type": "text", "message": "Let me help."}]},
    }
    guided = Session(agent(nodes))
    guided.send(LAUNCH)
    assert texts(guided.send(text("?"))) == ["Pardon?"]
    gave_up = guided.send(text("??"))
    assert paths(gave_up) == ["choice:else"]
    assert texts(gave_up) == ["Let me help."]


def test_no_reply_prompts_then_the_global_timeout_then_the_end() -> None:
    acme = Session(load_agent(AGENTS / "acme.yaml"))
    acme.send(LAUNCH)
    first = acme.send({"type": "no-reply"})
    assert paths(first) == ["reprompt"]
    assert kinds(first) == ["path", "text", "choice", "no-reply"]
    assert first[-1]["payload"] == {"timeout": 10}
    last = acme.send({"type": "no-reply"})
    assert kinds(last) == ["path", "end"]  # no prompts left and nowhere to go: the flow ends
    assert paths(last) == ["choice:noReply"]
    assert acme.state is not None
    assert acme.state["stack"] == []


def test_a_text_to_a_new_user_starts_the_flow_unless_a_command_takes_it(
    client: httpx.Client,
) -> None:
    started = interact(client, "n1", text("hello there"))
    assert texts(started) == ["Hi! I'm the Acme order assistant. What can I do for you?"]
    one_shot = interact(client, "n2", text("where is my order"))  # a global intent's utterance
    assert paths(one_shot) == ["jump"]
    assert texts(one_shot) == ["Sure. What's your order number?"]


def test_a_button_for_a_new_user_with_no_command_does_nothing() -> None:
    acme = Session(load_agent(AGENTS / "acme.yaml"))
    assert acme.send(path("trk01", "Track an order")) == []
    assert acme.state is not None
    assert acme.state["stack"][-1]["nodeID"] == "start"  # stopped on the start block
    assert kinds(acme.send(LAUNCH)) == ["text", "choice", "no-reply"]


def test_a_frame_on_a_missing_diagram_or_node(client: httpx.Client) -> None:
    lost = {
        "stack": [{"diagramID": "000000000000000000000bad", "nodeID": "x"}],
        "storage": {},
        "variables": {"kept": 1},
    }
    assert client.put("/state/user/lo", json=lost).status_code == 200
    assert interact(client, "lo", text("hello")) == []
    assert client.get("/state/user/lo").json() == lost  # the conversation stays where it was

    diagram = load_agent(EXAMPLE).flow_id
    gone = {"stack": [{"diagramID": diagram, "nodeID": "nowhere"}], "storage": {}, "variables": {}}
    client.put("/state/user/gn", json=gone)
    assert kinds(interact(client, "gn", text("hello"))) == ["end"]  # nothing left to run
    assert client.get("/state/user/gn").json()["stack"] == []


def test_no_request_shows_the_waiting_step_again(client: httpx.Client) -> None:
    interact(client, "nr", {"type": "launch"})
    again = client.post("/state/user/nr/interact", json={}).json()
    assert kinds(again) == ["choice"]


def test_typing_a_button_label_presses_it(client: httpx.Client) -> None:
    interact(client, "tl", {"type": "launch"})
    pressed = interact(client, "tl", text("  ask A QUESTION "))
    assert paths(pressed) == ["choice:2"]
    assert texts(pressed) == ["What would you like to know?"]


@pytest.mark.parametrize("action", [{"payload": 1}, "launch", {"type": ""}, {}])
def test_a_request_without_a_type_crashes_like_the_runtime(
    client: httpx.Client, action: Any
) -> None:
    response = client.post("/state/user/cr/interact", json={"action": action})
    assert response.status_code == 500
    body = response.json()
    assert list(body) == ["code", "status", "dateTime", "data"]  # no `timestamp` here
    assert body["code"] == 500
    assert body["status"] == "Internal Server Error"
    assert body["data"] == "invalid runtime request type: " + json.dumps(
        action, separators=(",", ":")
    )


def test_unknown_routes_and_methods_get_express_404_pages(client: httpx.Client) -> None:
    for method, url in (("GET", "/state/user/x/interact"), ("POST", "/nowhere"), ("PATCH", "/")):
        response = client.request(method, url)
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert f"<pre>Cannot {method} {url}</pre>" in response.text
        assert response.text.startswith('<!DOCTYPE html>\n<html lang="en">')


# -- step types -------------------------------------------------------------------------------


CARD_BUTTON = {"label": "Go", "request": {"type": "path-go", "payload": {"label": "Go"}}}


def test_cards_block_or_flow_on_and_a_blocked_card_reprompts_with_a_choice() -> None:
    nodes = {
        "home": {
            "steps": [
                {"type": "card", "title": "Plain", "description": "Fee {fee}"},
                {
                    "type": "card",
                    "blocking": True,
                    "title": "{name}",
                    "image_url": "https://x/{name}.png",
                    "buttons": [CARD_BUTTON],
                    "no_match": "Use the card.",
                    "no_reply": {"timeout": 15},
                },
            ]
        },
        "gone": {"steps": [{"type": "text", "message": "went"}]},
    }
    commands = [{"request": "path-go", "goto": "gone"}]
    cards = Session(agent(nodes, variables={"name": "Ada", "fee": 2.5}, commands=commands))
    shown = cards.send(LAUNCH)
    assert kinds(shown) == ["cardV2", "cardV2", "no-reply"]
    plain, blocking = shown[0]["payload"], shown[1]["payload"]
    assert list(plain) == ["imageUrl", "description", "buttons", "title"]
    assert plain["description"] == {
        "slate": [{"children": [{"text": "Fee 2.50"}]}],
        "text": "Fee 2.50",
    }
    assert plain["buttons"] == []
    assert (blocking["title"], blocking["imageUrl"]) == ("Ada", "https://x/Ada.png")
    missed = cards.send(text("hm"))
    assert kinds(missed) == ["path", "text", "choice", "no-reply"]
    assert missed[2]["payload"]["buttons"] == [{"name": "Go", "request": CARD_BUTTON["request"]}]
    went = cards.send(CARD_BUTTON["request"])
    assert paths(went) == ["jump"]
    assert texts(went) == ["went"]


def test_visual_and_carousel_payloads() -> None:
    nodes = {
        "a": {
            "steps": [
                {"type": "visual", "image": "https://x/{n}.jpg"},
                {
                    "type": "carousel",
                    "cards": [
                        {"id": "c1", "title": "One", "description": "d", "buttons": [CARD_BUTTON]},
                        {"id": "empty"},
                    ],
                },
            ]
        }
    }
    traces = Session(agent(nodes, variables={"n": 7})).send(LAUNCH)
    assert kinds(traces) == ["visual", "carousel", "end"]
    assert traces[0]["payload"] == {
        "visualType": "image",
        "image": "https://x/7.jpg",
        "device": None,
        "dimensions": None,
        "canvasVisibility": "full",
    }
    carousel = traces[1]["payload"]
    assert carousel["layout"] == "Carousel"
    assert [c["id"] for c in carousel["cards"]] == ["c1"]  # a card with nothing on it is left out
    assert list(carousel["cards"][0]) == ["id", "title", "imageUrl", "description", "buttons"]


def test_speak_keeps_ssml_on_the_stream_and_loses_it_on_legacy_interact() -> None:
    pizza = load_agent(AGENTS / "pizza.yaml")
    with (
        running_emulator([pizza]) as emulator,
        httpx.Client(base_url=emulator.url, headers={"Authorization": KEY}) as http,
    ):
        legacy = http.post("/state/user/sp/interact", json={"action": LAUNCH}).json()
        url = f"/v2/project/{pizza.project_id}/user/sp2/interact/stream"
        streamed = stream_traces(http.post(url, json={"action": LAUNCH}).content)
    spoken = [next(t for t in traces if t["type"] == "speak") for traces in (legacy, streamed)]
    assert spoken[0]["payload"]["message"] == (
        "Our wood-fired oven is at 450 degrees. A pizza takes about ninety seconds."
    )
    assert '<break time="300ms"/>' in spoken[1]["payload"]["message"]


def test_random_without_repeats_uses_every_path_before_starting_over() -> None:
    nodes = {
        "pick": {"steps": [{"type": "random", "unique": True, "paths": ["a", "b", "c"]}]},
        **{
            name: {
                "steps": [
                    {"type": "text", "message": name},
                    {"type": "choice", "buttons": [{"label": "Again", "goto": "pick"}]},
                ]
            }
            for name in ("a", "b", "c")
        },
    }
    draws = Session(agent(nodes))
    said = texts(draws.send(LAUNCH))
    for _ in range(2):
        said += texts(draws.send(path("pick", "Again")))
    assert sorted(said) == ["a", "b", "c"]
    assert draws.state is not None
    assert sorted(draws.state["storage"]["randoms"]["pick"]) == ["a", "b", "c"]
    fourth = texts(draws.send(path("pick", "Again")))
    assert draws.state["storage"]["randoms"]["pick"] == fourth  # a new round has begun


SIZES = {"entities": {"size": ["small", "large", "2"]}, "intents": {
    "choose": {"utterances": ["a {size} one please", "{size}"]},
    "home": {"goto": "start", "utterances": ["go home"]}}}  # fmt: skip


def entity_agent() -> AgentDefinition:
    capture = {
        "type": "capture",
        "intent": "choose",
        "entity": "size",
        "scope": "node",
        "no_match": ["Which size?"],
        "no_reply": {"timeout": 30, "prompts": ["Still there?"]},
    }
    nodes = {
        "start": {"steps": [capture, {"type": "text", "message": "Size {size}."}]},
    }
    return agent(nodes, **SIZES)


def test_entity_capture_waits_fills_from_a_value_or_a_sentence_and_reprompts() -> None:
    sizes = Session(entity_agent())
    waiting = sizes.send(LAUNCH)
    assert kinds(waiting) == ["no-reply", "entity-filling"]
    assert waiting[1]["payload"] == {
        "entityToFill": "size",
        "intent": {
            "type": "intent",
            "payload": {"intent": {"name": "choose"}, "query": "", "entities": []},
            "requiredEntities": ["size"],
            "ELICIT": True,
        },
    }
    assert sizes.variables["size"] == 0  # entities are variables too, at 0 until filled
    quiet = sizes.send({"type": "no-reply"})
    assert kinds(quiet) == ["path", "text", "no-reply"]  # no entity-filling after a no-reply
    assert quiet[-1]["payload"] == {"timeout": 10}
    commands_ignored = sizes.send(text("go home"))  # scope node: the global intent is not asked
    assert kinds(commands_ignored) == ["path", "text", "no-reply", "entity-filling"]
    assert texts(commands_ignored) == ["Which size?"]
    filled = sizes.send(text("I guess a LARGE one please"))
    assert paths(filled) == ["capture"]
    assert texts(filled) == ["Size large."]

    again = Session(entity_agent())
    again.send(LAUNCH)
    assert texts(again.send(text("make it 2"))) == ["Size 2."]  # a bare value in a sentence
    assert again.variables["size"] == 2  # entity values that read as numbers become numbers


def test_choices_try_their_interactions_then_commands_unless_scoped_to_the_node() -> None:
    def menu(scope: str) -> Session:
        choice = {
            "type": "choice",
            "buttons": [{"label": "Home", "request": {"type": "intent", "payload": {
                "intent": {"name": "home"}, "query": "Home", "entities": []}}}],
            "interactions": [{"intent": "choose", "goto": "chosen"}],
            "scope": scope,
        }  # fmt: skip
        nodes = {
            "start": {"steps": [choice]},
            "chosen": {"steps": [{"type": "text", "message": "chose {size}"}]},
        }
        session = Session(agent(nodes, **SIZES))
        session.send(LAUNCH)
        return session

    chose = menu("global").send(text("small"))
    assert paths(chose) == ["choice:1"]  # counted after the buttons that have a goto: none here
    assert paths(menu("global").send(text("go home"))) == ["jump"]
    assert paths(menu("node").send(text("go home"))) == ["reprompt"]


def test_code_takes_a_labelled_path_success_or_fail() -> None:
    def run(assign: dict[str, str], returns: str | None) -> tuple[list[str], Session]:
        code: dict[str, Any] = {"type": "code", "assign": assign, "success": "ok", "fail": "bad"}
        if returns is not None:
            code.update(returns=returns, paths=[{"label": "big", "goto": "big"}])
        nodes = {
            "start": {"steps": [code]},
            **{n: {"steps": [{"type": "text", "message": n}]} for n in ("big", "ok", "bad")},
        }
        session = Session(agent(nodes, variables={"total": 5}))
        return texts(session.send(LAUNCH)), session

    said, session = run({"total": "total * 3"}, "'big' if total > 10 else 'small'")
    assert said == ["big"]
    assert session.variables["total"] == 15
    assert "__RESOLVED_PATH__" not in session.variables
    assert run({"total": "total + 1"}, "'small'")[0] == ["ok"]  # no label matched: success
    said, session = run({"total": "total + 1", "other": "missing * 2"}, None)
    assert said == ["bad"]
    assert session.variables["total"] == 5  # a failed step keeps none of its changes


def test_set_and_if_debug_traces_word_it_like_the_runtime() -> None:
    nodes = {
        "start": {
            "steps": [
                {"type": "set", "legacy": True, "expressions": {"n": "n + 1", "x": "nope"}},
                {"type": "set", "expressions": {"fresh": "'new'"}},
                {
                    "type": "if",
                    "legacy": True,
                    "conditions": [{"expression": "n - 3", "goto": "zero"}],
                },
            ]
        },
        "zero": {"steps": [{"type": "text", "message": "zero counts as true here"}]},
    }
    traces = Session(agent(nodes, variables={"n": 2})).all(LAUNCH)
    debug = [t["payload"] for t in traces if t["type"] == "debug"][1:]  # past "beginning flow"
    assert debug == [
        {"type": "set", "message": "setting `{n}`  \nevaluating `{n} + 1` to `3`"},
        {
            "type": "set",
            "message": "unable to resolve expression `{nope}` for `{x}`  \n"
            "`Error: nope is not defined`",
        },
        {"type": "code", "message": 'evaluating code - changes:\n`{fresh}`: `0` => `"new"`'},
        {"type": "if", "message": "evaluating path 1: `{n} - 3` to `0`"},
        {"type": "if", "message": "condition true - taking path 1"},
    ]
    assert texts(traces) == ["zero counts as true here"]


def test_an_exit_inside_a_component_leaves_the_caller_to_resume() -> None:
    nodes = {
        "start": {"steps": [{"type": "flow", "component": "c"}, {"type": "goto", "node": "after"}]},
        "after": {"steps": [{"type": "text", "message": "after"}]},
    }
    component = {
        "diagram_id": "cccccccccccccccccccccccc",
        "name": "C",
        "start": "inner",
        "nodes": {"inner": {"steps": [{"type": "text", "message": "inner"}, {"type": "end"}]}},
    }
    session = Session(agent(nodes, components={"c": component}))
    traces = session.all(LAUNCH)
    assert [t["payload"]["diagramID"] for t in traces if t["type"] == "flow"] == [
        session.agent.flow_id,
        "cccccccccccccccccccccccc",
    ]
    assert kinds([t for t in traces if t["type"] not in HIDDEN]) == ["text", "end"]
    assert session.state is not None
    assert [f["nodeID"] for f in session.state["stack"]] == [None, "after"]
    assert texts(session.send(text("anything"))) == []  # a text node takes no request
    assert texts(session.send(None)) == ["after"]


def test_custom_action_payload_strings_and_default_path() -> None:
    action = {
        "type": "custom_action",
        "name": "pay_{currency}",
        "payload": {"total": "{total}", "nested": {"who": "{name}"}, "raw": 3},
        "paths": [{"event": "paid", "label": "paid", "goto": "paid"}, {"event": "failed"}],
        "default_path": 1,
    }
    nodes = {
        "start": {"steps": [action, {"type": "text", "message": "default"}]},
        "paid": {"steps": [{"type": "text", "message": "paid"}]},
    }
    variables = {"currency": "eur", "total": 16, "name": "Ada"}
    session = Session(agent(nodes, variables=variables))
    [trace] = session.send(LAUNCH)
    assert list(trace) == ["time", "type", "payload", "defaultPath", "paths"]
    assert trace["type"] == "pay_eur"
    assert trace["payload"] == {"total": "16", "nested": {"who": "Ada"}, "raw": 3}
    assert trace["paths"] == [
        {"label": "paid", "event": {"type": "paid"}},
        {"event": {"type": "failed"}},
    ]
    assert texts(session.send(text("hello?"))) == ["default"]
    session.send(LAUNCH)
    paid = session.send({"type": "paid"})
    assert kinds(paid) == ["text", "end"]  # no path trace when an action's path is taken


# -- the agent format's checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"nodes": {"a": {"steps": [{"type": "text", "mesage": "typo"}]}}}, "mesage"),
        ({"nodes": {"a": {"steps": [{"type": "goto", "node": "b"}]}}}, "unknown node id"),
        ({"nodes": {"a": {"steps": [{"type": "flow", "component": "x"}]}}}, "unknown component"),
        (
            {"nodes": {"a": {"steps": [{"type": "set", "expressions": {"x": "open('f')"}}]}}},
            "only these functions",
        ),
        ({"nodes": {"a": {"steps": [{"type": "choice"}]}}}, "`buttons` or `interactions`"),
        (
            {"nodes": {"a": {"steps": [{"type": "capture", "intent": "i", "entity": "e"}]}}},
            "unknown intent",
        ),
        (
            {"nodes": {"a": {"steps": [{"type": "code", "paths": [{"label": "x", "goto": "a"}]}]}}},
            "need a `returns`",
        ),
        ({"commands": [{"request": "path-x", "intent": "i", "goto": "a"}]}, "exactly one"),
        ({"intents": {"i": {"utterances": ["a {thing}"]}}}, "unknown entity"),
        (
            {
                "components": {
                    "c": {
                        "diagram_id": ANY_24_HEX.replace("6", "7"),
                        "name": "C",
                        "start": "a",
                        "nodes": {"a": {"steps": [{"type": "text", "message": "dup"}]}},
                    }
                }
            },
            "is used in the main diagram and component 'c'",
        ),
        (
            {
                "components": {
                    "c": {
                        "diagram_id": ANY_24_HEX.replace("6", "7"),
                        "name": "C",
                        "start": "in_c",
                        "nodes": {"in_c": {"steps": [{"type": "goto", "node": "a"}]}},
                    }
                }
            },
            "unknown node id(s) referenced in component 'c': a",
        ),
    ],
)
def test_agent_files_are_checked_when_loaded(extra: dict[str, Any], problem: str) -> None:
    data = {
        "project_id": ANY_24_HEX,
        "name": "t",
        "start": "a",
        "nodes": {"a": {"steps": [{"type": "text", "message": "hi"}]}},
        **extra,
    }
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        AgentDefinition.model_validate(data)


def test_the_mirrored_agents_load_with_the_recorded_ids() -> None:
    acme, pizza = load_agent(AGENTS / "acme.yaml"), load_agent(AGENTS / "pizza.yaml")
    assert (acme.project_id, acme.version, acme.flow_id) == (
        "64f1a0000000000000000002",
        "64f1a0000000000000000001",
        "64f1a0000000000000000003",
    )
    assert pizza.components["build_pizza"].diagram_id == "66d2e0a00000000000000104"
    recorded = json.loads((REPO / "tests/fixtures/real_runtime/pizza.vfr").read_text())
    programs = recorded["programs"]
    recorded_nodes = {
        node
        for program in programs.values()
        for node, line in program["lines"].items()
        if line["type"] != "start"
    }
    ours = set(pizza.nodes) | set(pizza.components["build_pizza"].nodes)
    assert ours == recorded_nodes
    assert set(pizza.declared_variables()) == set(recorded["version"]["variables"])


# -- options ----------------------------------------------------------------------------------


def test_only_the_open_source_routes() -> None:
    example = load_agent(EXAMPLE)
    with (
        running_emulator([example], routes="open-source") as emulator,
        httpx.Client(base_url=emulator.url, headers={"Authorization": KEY}) as http,
    ):
        assert emulator.routes == "open-source"
        project = example.project_id
        for url in (
            f"/v2/project/{project}/user/u/interact/stream",
            f"/v2/project/{project}/session/s/event",
            f"/v4/project/{project}/session",
            "/v4/interact",
            "/v4/interact/stream",
        ):
            response = http.post(url, json={"action": LAUNCH})
            assert response.status_code == 404, url
            assert f"<pre>Cannot POST {url}</pre>" in response.text
        assert http.post("/state/user/u/interact", json={"action": LAUNCH}).status_code == 200
        assert http.get("/_emulator/health").status_code == 200
        assert emulator.requests == [r for r in emulator.requests if r.path.startswith("/state")]


def test_bad_option_values_are_one_line_errors() -> None:
    with pytest.raises(OptionError) as routes:
        Emulator(routes="cloud")  # type: ignore[arg-type]
    assert str(routes.value) == "routes must be one of: hosted, open-source (got 'cloud')"
    with pytest.raises(OptionError, match="state_semantics must be one of: recorded, hosted"):
        Emulator(state_semantics="mixed")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "vf_mcp", "emulator", "--routes", "cloud"],
        [sys.executable, "-m", "vf_mcp.emulator", "--state-semantics", "mixed"],
    ],
    ids=["vf-mcp", "module"],
)
def test_bad_option_values_on_the_command_line(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert "must be one of" in line
    assert "Traceback" not in result.stderr


def test_the_command_line_serves_the_chosen_modes() -> None:
    command = [sys.executable, "-m", "vf_mcp", "emulator", "--routes", "open-source",
               "--state-semantics", "hosted"]  # fmt: skip
    process = spawn(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the emulator announces its address
        url = line.strip().rsplit(" ", 1)[-1]
        with httpx.Client(base_url=url, headers={"Authorization": KEY}) as http:
            project = load_agent(EXAMPLE).project_id
            stream = http.post(f"/v2/project/{project}/user/u/interact/stream", json={})
            assert stream.status_code == 404
            http.post("/state/user/u/interact", json={"action": LAUNCH})
            http.patch("/state/user/u/variables", json={"kept": True})
            http.delete("/state/user/u")
            assert http.get("/state/user/u").json()["variables"]["kept"] is True
    finally:
        stop(process)
