"""A2A v0.3 beside v1.0 on the same endpoints, through the SDK's own compatibility layer.

v0.3 clients (Gemini Enterprise registers only v0.3 agents; ServiceNow without Premium Chat,
Langflow) send `message/send`, `message/stream`, `tasks/get` and `tasks/cancel`, usually without an
`A2A-Version` header, and read the card's `url` and `protocolVersion`. Here the official a2a-sdk
client in its v0.3 mode holds a whole conversation; raw requests without the header show what
any v0.3 client gets; and one conversation is continued across the two dialects.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from a2a.compat.v0_3.jsonrpc_transport import CompatJsonRpcTransport
from a2a.types import TaskState

from tests.a2a_helpers import CARD_PATH, a2a_server, caller, data_of, message, metadata_of, texts
from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.test_a2a import TOKEN_A, TOKEN_B, turns_sent
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator

pytestmark = pytest.mark.anyio

INPUT_REQUIRED = TaskState.TASK_STATE_INPUT_REQUIRED
COMPLETED = TaskState.TASK_STATE_COMPLETED
V03_METHODS = {"message/send", "message/stream", "tasks/get", "tasks/cancel"}


@pytest.fixture
def a2a_settings(stream_settings: Settings) -> Settings:
    # talk_to_agent is then a plain custom action: the task waits for its result.
    return stream_settings.model_copy(update={"handoff_actions": frozenset({"handoff"})})


def v03_message(*parts: dict[str, Any], message_id: str, **ids: str) -> dict[str, Any]:
    """A v0.3 `message/send` params object, as v0.3 clients write it."""
    sent = {"kind": "message", "messageId": message_id, "role": "user", "parts": list(parts)}
    return {"message": {**sent, **ids}}


@pytest.mark.parametrize("streaming", [False, True], ids=["send", "stream"])
async def test_a_v03_client_holds_a_whole_conversation(
    a2a_settings: Settings, emulator: Emulator, streaming: bool
) -> None:
    with a2a_server(a2a_settings) as running:
        async with caller(running.url, streaming=streaming, dialect="0.3") as agent:
            first = await agent.send(message("track my order"))
            ids = {"context_id": first.context_id, "task_id": first.id}
            shipped = await agent.send(message("1001", **ids))
            person = await agent.send(message(data={"choice": "talk to a PERSON"}, **ids))
            back = await agent.send(message(data={"action": {"type": "done"}}, **ids))
            await agent.send(message(data={"choice": 1}, **ids))
            await agent.send(message("1002", **ids))
            end = await agent.send(message(data={"choice": "That's all"}, **ids))
            stored = await agent.get_task(first.id)
            transport = (await agent.client())._transport  # type: ignore[attr-defined]
    assert isinstance(transport, CompatJsonRpcTransport)  # the SDK really spoke v0.3
    assert set(agent.methods) <= V03_METHODS
    assert ("message/stream" if streaming else "message/send") in agent.methods
    assert first.status.state == INPUT_REQUIRED
    assert texts(first)[-1] == "Sure. What's your order number?"
    assert texts(shipped) == ["Order 1001 has shipped and should arrive on Friday."]
    assert [c["label"] for c in data_of(shipped)["choices"]][1] == "Talk to a person"
    assert data_of(person)["customActions"][0]["resultTypes"] == ["done"]
    assert texts(back)[0] == "You're back with the Acme assistant. Anything else?"
    assert end.status.state == COMPLETED
    assert metadata_of(end)["status"] == "ended"
    assert stored.status.state == COMPLETED
    assert [a.name for a in stored.artifacts] == ["transcript"]
    for body in agent.bodies:
        assert CANARY_KEY not in body and CANARY_SECRET not in body


async def test_one_conversation_from_both_dialects(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with (
            caller(running.url) as modern,
            caller(running.url, dialect="0.3") as legacy,
        ):
            first = await modern.send(message("track my order"))
            ids = {"context_id": first.context_id, "task_id": first.id}
            shipped = await legacy.send(message("1001", **ids))
            seen_by_modern = await modern.get_task(first.id)
            person = await modern.send(message(data={"choice": "Talk to a person"}, **ids))
            seen_by_legacy = await legacy.get_task(first.id)
    assert set(modern.methods) == {"SendMessage", "GetTask"}
    assert set(legacy.methods) == {"message/send", "tasks/get"}
    assert shipped.id == first.id
    assert texts(shipped) == ["Order 1001 has shipped and should arrive on Friday."]
    assert texts(seen_by_modern) == texts(shipped)
    assert seen_by_legacy.status.state == INPUT_REQUIRED
    assert texts(seen_by_legacy) == texts(person)
    sent = turns_sent(emulator)
    assert (sent["launch"], sent["text"], sum(sent.values())) == (1, 2, 4)  # each turn ran once


async def test_v03_requests_without_a_version_header(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    """What any v0.3 client sends: no `A2A-Version`, v0.3 method names and part shapes."""
    tokens = {"auth_tokens": (TOKEN_A, TOKEN_B)}
    settings = Settings.validated({**a2a_settings.model_dump(), **tokens})
    launch = {"kind": "data", "data": {}}  # a launch, nothing more: the menu's buttons
    with a2a_server(settings) as running:
        async with caller(running.url, token=TOKEN_A) as alice:
            started = await alice.rpc("message/send", v03_message(launch, message_id="v1"))
            again = await alice.rpc("message/send", v03_message(launch, message_id="v1"))
            task = started["result"]
            ids = {"contextId": task["contextId"], "taskId": task["id"]}
            choice = {"kind": "data", "data": {"choice": "Track an order"}}
            nine = {"kind": "data", "data": {"choice": 9}}
            wrong = await alice.rpc("message/send", v03_message(nine, message_id="v2", **ids))
            before = sum(turns_sent(emulator).values())
            async with caller(running.url, token=TOKEN_B) as mallory:
                stolen = await mallory.rpc("tasks/get", {"id": task["id"]})
            chose = await alice.rpc("message/send", v03_message(choice, message_id="v3", **ids))
            got = await alice.rpc("tasks/get", {"id": task["id"]})
            cancelled = await alice.rpc("tasks/cancel", {"id": task["id"]})
        async with httpx.AsyncClient() as http:
            anonymous = await http.post(
                f"{running.url}/a2a/default",
                json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}},
            )
    assert "A2A-Version" not in alice.http.headers
    assert task["kind"] == "task" and task["status"]["state"] == "input-required"
    assert task["status"]["message"]["parts"][0]["text"].startswith("Hi! I'm the Acme order")
    assert again["result"]["id"] == task["id"]  # the resend got its answer and ran nothing
    assert wrong["result"]["status"]["state"] == "input-required"
    assert "no choice number 9" in wrong["result"]["status"]["message"]["parts"][0]["text"]
    assert stolen["error"]["code"] == -32001  # another caller's task is not found
    assert sum(turns_sent(emulator).values()) - before == 1  # only the chosen button ran
    assert chose["result"]["status"]["message"]["parts"] == [
        {"kind": "text", "text": "Sure. What's your order number?"}
    ]
    assert got["result"]["status"]["state"] == "input-required"
    assert cancelled["result"]["status"]["state"] == "canceled"
    assert anonymous.status_code == 401


async def test_the_card_speaks_both_dialects_at_both_paths(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            card = (await http.get(CARD_PATH)).json()
            legacy = (await http.get("/.well-known/agent.json")).json()
            per_agent = (await http.get("/a2a/default/.well-known/agent.json")).json()
    endpoint = f"{running.url}/a2a/default"
    assert card["supportedInterfaces"] == [
        {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ]
    # The v0.3 fields, from the SDK's own rendering of the v0.3 interface.
    assert (card["url"], card["protocolVersion"], card["preferredTransport"]) == (
        endpoint,
        "0.3",
        "JSONRPC",
    )
    assert legacy == per_agent == card
