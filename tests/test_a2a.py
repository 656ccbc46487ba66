"""The A2A agent, driven by the official a2a-sdk client over real HTTP against the emulator.

A whole conversation with the example agent (first message, a button by label, a custom action,
the end), streamed and not; a resent message run once; two callers kept apart; the SDK's errors
for what cannot run; cancel; and no trace of the API key in anything the server sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from a2a.types import TaskState
from a2a.utils.errors import TaskNotFoundError
from google.protobuf import json_format

from tests.a2a_helpers import (
    CARD_PATH,
    a2a_server,
    caller,
    data_of,
    introspection_server,
    message,
    metadata_of,
    texts,
    with_oauth,
)
from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan

pytestmark = pytest.mark.anyio

TOKEN_A = "a2a-token-a-0123456789abcdef"
TOKEN_B = "a2a-token-b-fedcba9876543210"
INPUT_REQUIRED = TaskState.TASK_STATE_INPUT_REQUIRED
COMPLETED = TaskState.TASK_STATE_COMPLETED


@pytest.fixture
def a2a_settings(stream_settings: Settings) -> Settings:
    # talk_to_agent is then a plain custom action: the task waits for its result.
    return stream_settings.model_copy(update={"handoff_actions": frozenset({"handoff"})})


def turns_sent(emulator: Emulator) -> Counter[str]:
    """The interact requests the runtime answered, by the action type they carried."""
    return Counter(
        str((r.json or {}).get("action", {}).get("type"))
        for r in emulator.requests
        if "/interact" in r.path
    )


def assert_no_key(bodies: list[str]) -> None:
    everything = "\n".join(bodies)
    assert everything, "nothing was read"
    assert CANARY_KEY not in everything
    assert CANARY_SECRET not in everything


@pytest.mark.parametrize("streaming", [False, True], ids=["send", "stream"])
async def test_a_whole_conversation(
    a2a_settings: Settings, emulator: Emulator, streaming: bool
) -> None:
    with a2a_server(a2a_settings) as running:
        async with caller(running.url, streaming=streaming) as agent:
            first = await agent.send(message("track my order"))
            # The launch and the first text, in one reply: the welcome, then the question.
            assert first.status.state == INPUT_REQUIRED
            assert texts(first)[0].startswith("Hi! I'm the Acme order assistant.")
            assert texts(first)[-1] == "Sure. What's your order number?"
            assert metadata_of(first)["turns"] == 2
            ids = {"context_id": first.context_id, "task_id": first.id}

            shipped = await agent.send(message("1001", **ids))
            assert texts(shipped) == ["Order 1001 has shipped and should arrive on Friday."]
            labels = [c["label"] for c in data_of(shipped)["choices"]]
            assert labels == ["Track another order", "Talk to a person", "That's all"]
            changed = {c["name"]: c["after"] for c in metadata_of(shipped)["variablesChanged"]}
            assert changed == {"order_number": "1001", "order_status": "shipped"}

            person = await agent.send(message(data={"choice": "talk to a PERSON"}, **ids))
            assert person.status.state == INPUT_REQUIRED
            action = data_of(person)["customActions"][0]
            assert (action["name"], action["resultTypes"]) == ("talk_to_agent", ["done"])
            assert '"type": "done"' in metadata_of(person)["expectedInput"]

            back = await agent.send(message(data={"action": {"type": "done"}}, **ids))
            assert texts(back)[0] == "You're back with the Acme assistant. Anything else?"
            await agent.send(message(data={"choice": 1}, **ids))
            await agent.send(message("1002", **ids))
            end = await agent.send(message(data={"choice": "That's all"}, **ids))

            assert end.status.state == COMPLETED
            assert texts(end) == ["Thanks for contacting Acme. Goodbye!"]
            assert metadata_of(end)["status"] == "ended"
            transcript = next(a for a in end.artifacts if a.name == "transcript")
            record = json_format.MessageToDict(transcript.parts[1].data)
            assert [t["user"]["kind"] for t in record["turns"]] == [
                "launch", "message", "message", "choice", "action", "choice", "message", "choice"
            ]  # fmt: skip
            stored = await agent.get_task(first.id)
        assert stored.status.state == COMPLETED
        assert_no_key(agent.bodies)


async def test_streaming_reports_the_agent_as_it_answers(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with caller(running.url, streaming=True) as agent:
            events = await agent.events(message("track my order"))
    kinds = [event.WhichOneof("payload") for event in events]
    assert kinds[0] == "task"
    working = [
        e.status_update.status.message.parts[0].text
        for e in events
        if e.HasField("status_update")
        and e.status_update.status.state == TaskState.TASK_STATE_WORKING
        and e.status_update.status.message.parts
    ]
    # Each of the agent's messages, as its trace arrived, before the reply that holds them all.
    assert working == [
        "Agent: Hi! I'm the Acme order assistant. What can I do for you?",
        "Agent: Sure. What's your order number?",
    ]
    assert events[-1].status_update.status.state == INPUT_REQUIRED


async def test_a_resent_message_returns_its_answer_and_runs_nothing(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with caller(running.url) as agent, caller(running.url, streaming=True) as streams:
            first = message("track my order")
            answered = await agent.send(first)
            again = await agent.send(first)  # no context yet: the same message, sent again
            ids = {"context_id": answered.context_id, "task_id": answered.id}
            number = message("1001", **ids)
            shipped = await agent.send(number)
            before = turns_sent(emulator)
            resent = await agent.send(number)
            streamed = await streams.send(number)
    assert (again.id, again.context_id) == (answered.id, answered.context_id)
    assert texts(again) == texts(answered)
    assert texts(resent) == texts(streamed) == texts(shipped)
    assert resent.status.message.message_id == shipped.status.message.message_id
    assert turns_sent(emulator) == before  # the resends reached no runtime
    assert before == Counter({"launch": 1, "text": 2})


async def test_two_callers_are_kept_apart(a2a_settings: Settings, emulator: Emulator) -> None:
    tokens = {"auth_tokens": (TOKEN_A, TOKEN_B)}
    settings = Settings.validated({**a2a_settings.model_dump(), **tokens})
    with a2a_server(settings) as running:
        async with caller(running.url, token=TOKEN_A) as alice:
            mine = await alice.send(message("track my order"))
            async with caller(running.url, token=TOKEN_B) as mallory:
                with pytest.raises(TaskNotFoundError):
                    await mallory.get_task(mine.id)
                with pytest.raises(TaskNotFoundError):
                    await mallory.send(message("1001", context_id=mine.context_id, task_id=mine.id))
                with pytest.raises(TaskNotFoundError):
                    await mallory.cancel(mine.id)
                # The same context id from another caller is another conversation: it starts anew.
                theirs = await mallory.send(message("hello", context_id=mine.context_id))
            assert texts(theirs)[0].startswith("Hi! I'm the Acme order assistant.")
            still_mine = await alice.send(
                message("1001", context_id=mine.context_id, task_id=mine.id)
            )
    assert texts(still_mine) == ["Order 1001 has shipped and should arrive on Friday."]
    paths = [r.path for r in emulator.requests if "/user/" in r.path]
    users = {path.split("/user/")[1].split("/")[0] for path in paths}
    assert len(users) == 2  # two upstream conversations, neither named by the bare context id
    assert mine.context_id not in users


async def test_tokens_guard_everything_but_the_cards(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    settings = Settings.validated({**a2a_settings.model_dump(), "auth_tokens": (TOKEN_A,)})
    with a2a_server(settings) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            card = (await http.get(CARD_PATH)).json()
            agent_card = await http.get(f"/a2a/default{CARD_PATH}")
            legacy_card = await http.get("/.well-known/agent.json")
            anonymous = await http.post("/a2a/default", json={"jsonrpc": "2.0", "id": 1})
    assert agent_card.json() == legacy_card.json() == card
    described = {"scheme": "Bearer",
        "description": "One of the tokens the operator set in VF_MCP_AUTH_TOKENS"}  # fmt: skip
    # v1.0's scheme, and beside it (the SDK's rendering of the v0.3 interface) v0.3's.
    assert card["securitySchemes"] == {
        "bearer": {"httpAuthSecurityScheme": described, **described, "type": "http"}
    }
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}]
    assert card["security"] == [{"bearer": []}]
    assert anonymous.status_code == 401
    assert_no_key([str(card), anonymous.text])


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Host": "evil.example"}, 421), ({"Origin": "http://evil.example"}, 403)],
    ids=["host", "origin"],
)
async def test_dns_rebinding_checks_cover_the_a2a_routes(
    a2a_settings: Settings, emulator: Emulator, headers: dict[str, str], status: int
) -> None:
    with a2a_server(a2a_settings) as running:
        async with httpx.AsyncClient(base_url=running.url, headers=headers) as http:
            card = await http.get(CARD_PATH)
            rpc = await http.post("/a2a/default", json={"jsonrpc": "2.0", "id": 1})
    assert (card.status_code, rpc.status_code) == (status, status)
    assert not emulator.requests


async def test_the_card_names_the_endpoint_that_serves_it(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with httpx.AsyncClient() as http:
            card = (await http.get(running.url + CARD_PATH)).json()
    assert card["name"] == "Voiceflow agent"
    assert card["capabilities"]["streaming"] is True
    assert [s["id"] for s in card["skills"]] == ["converse"]
    interface = card["supportedInterfaces"][0]
    assert interface == {
        "url": f"{running.url}/a2a/default",
        "protocolBinding": "JSONRPC",
        "protocolVersion": "1.0",
    }
    # The same endpoint as v0.3 (tests/test_a2a_v03.py), whose clients read `url`.
    assert card["supportedInterfaces"][1] == {**interface, "protocolVersion": "0.3"}
    assert (card["url"], card["protocolVersion"]) == (interface["url"], "0.3")
    assert "securitySchemes" not in card  # loopback without tokens: nothing is enforced


def error_of(answer: dict[str, Any]) -> tuple[int, str]:
    return answer["error"]["code"], answer["error"]["message"]


async def test_what_cannot_run_gets_the_sdks_errors_and_no_task(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    def params(*parts: dict[str, Any], **ids: str) -> dict[str, Any]:
        sent = {"messageId": "m-1", "role": "ROLE_USER", "parts": list(parts), **ids}
        return {"message": sent}

    with a2a_server(a2a_settings) as running:
        async with caller(running.url) as agent:
            agent.http.headers["A2A-Version"] = "1.0"
            file_part = await agent.rpc("SendMessage", params({"url": "https://x.example/a.pdf"}))
            not_object = await agent.rpc("SendMessage", params({"data": [1, 2]}))
            unknown_key = await agent.rpc("SendMessage", params({"data": {"launch": True}}))
            two_turns = await agent.rpc(
                "SendMessage", params({"text": "hi"}, {"data": {"choice": 1}})
            )
            no_task = await agent.rpc("SendMessage", params({"text": "hi"}, taskId="nope"))
            get_none = await agent.rpc("GetTask", {"id": "nope"})
            listed = await agent.rpc("ListTasks", {})
    assert error_of(file_part)[0] == -32005  # ContentTypeNotSupportedError
    assert error_of(not_object) == (
        -32602,
        "Data part 0 is not an object; send one of "
        '{"choice": "Track an order"}, {"action": {"type": "done"}} or {"variables": {...}}',
    )
    assert error_of(unknown_key)[0] == -32602
    assert "launch" in error_of(unknown_key)[1]
    assert error_of(two_turns)[0] == -32602
    assert error_of(no_task)[0] == error_of(get_none)[0] == -32001  # TaskNotFoundError
    assert listed["result"]["tasks"] == []
    assert not emulator.requests


async def test_a_wrong_button_asks_again_and_an_upstream_failure_fails_the_task(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with caller(running.url) as agent:
            started = await agent.send(message(data={}))  # a launch, nothing more
            ids = {"context_id": started.context_id, "task_id": started.id}
            wrong = await agent.send(message(data={"choice": "Order pizza"}, **ids))
            emulator.faults.add(FaultPlan(match={"path_contains": "/interact"}, status=503))
            failed = await agent.send(message(data={"choice": "Track an order"}, **ids))
    assert texts(started)[0].startswith("Hi! I'm the Acme order assistant.")
    assert wrong.status.state == INPUT_REQUIRED  # nothing was sent: the agent still waits
    assert (
        "No button is labelled 'Order pizza'; valid choices: 1) Track an order" in texts(wrong)[0]
    )
    assert metadata_of(wrong)["errorKind"] == "invalid_input"
    assert failed.status.state == TaskState.TASK_STATE_FAILED
    assert "Voiceflow runtime answered 503" in metadata_of(failed)["error"]
    assert metadata_of(failed)["errorKind"] == "upstream"
    assert metadata_of(failed)["mayHaveRun"] is True  # a 5xx: check before repeating the turn
    assert metadata_of(wrong)["mayHaveRun"] is False
    assert_no_key(agent.bodies)


async def test_cancel_ends_the_task_and_forgets_the_conversation(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with caller(running.url) as agent:
            started = await agent.send(message("track my order"))
            cancelled = await agent.cancel(started.id)
            stored = await agent.get_task(started.id)
            # The server forgot the conversation: the next message in the context starts it over.
            again = await agent.send(message("1001", context_id=started.context_id))
    assert cancelled.status.state == stored.status.state == TaskState.TASK_STATE_CANCELED
    assert again.id != started.id
    assert texts(again)[0].startswith("Hi! I'm the Acme order assistant.")
    assert not [r for r in emulator.requests if r.method == "DELETE"]  # the runtime keeps it


async def test_read_only_publishes_no_skill_and_takes_no_message(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    read_only = a2a_settings.model_copy(update={"read_only": True})
    with a2a_server(read_only) as running:
        async with caller(running.url) as agent:
            card = (await agent.http.get(running.url + CARD_PATH)).json()
            agent.http.headers["A2A-Version"] = "1.0"
            refused = await agent.rpc(
                "SendMessage",
                {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
            )
    assert card["skills"] == []
    assert error_of(refused)[0] == -32004  # UnsupportedOperationError
    assert "read-only" in error_of(refused)[1]
    assert not emulator.requests


async def test_a_message_resent_while_it_runs_waits_for_its_answer(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    with a2a_server(a2a_settings) as running:
        async with caller(running.url) as agent, caller(running.url, streaming=True) as again:
            started = await agent.send(message("track my order"))
            number = message("1001", context_id=started.context_id, task_id=started.id)
            # The runtime is slow to answer, so the second delivery arrives while the first runs.
            emulator.faults.add(FaultPlan(match={"path_contains": "/interact"}, latency_ms=300))
            answers: list[Any] = []

            async def deliver(who: Any) -> None:
                answers.append(await who.send(number))

            async with anyio.create_task_group() as group:
                group.start_soon(deliver, agent)
                group.start_soon(deliver, again)
    assert [texts(a) for a in answers] == [
        ["Order 1001 has shipped and should arrive on Friday."]
    ] * 2
    assert turns_sent(emulator) == Counter({"launch": 1, "text": 2})


async def test_a_handoff_completes_the_task_with_its_details(
    stream_settings: Settings, emulator: Emulator
) -> None:
    # By default talk_to_agent is a handoff action (VF_MCP_HANDOFF_ACTIONS).
    with a2a_server(stream_settings) as running:
        async with caller(running.url) as agent:
            handed = await agent.send(message(data={"choice": "Talk to a person"}))
            later = await agent.send(
                message(data={"action": {"type": "done"}}, context_id=handed.context_id)
            )
    assert handed.status.state == COMPLETED
    assert metadata_of(handed)["status"] == "handoff"
    assert data_of(handed)["handoff"] == "custom action talk_to_agent"
    assert data_of(handed)["customActions"][0]["payload"]["reason"] == "customer_request"
    # The conversation goes on in the context, in a new task: the person handed it back.
    assert later.id != handed.id
    assert texts(later)[0] == "You're back with the Acme assistant. Anything else?"


async def test_mcp_and_a2a_share_one_conversation_store_per_caller(
    a2a_settings: Settings, emulator: Emulator
) -> None:
    from tests.test_security import as_caller

    settings = Settings.validated({**a2a_settings.model_dump(), "auth_tokens": (TOKEN_A, TOKEN_B)})
    with a2a_server(settings) as running:
        async with caller(running.url, token=TOKEN_A) as alice:
            started = await alice.send(message("track my order"))
        mcp = f"{running.url}/mcp"
        arguments = {"user_id": started.context_id}
        async with as_caller(mcp, TOKEN_A) as same, as_caller(mcp, TOKEN_B) as other:
            mine = await same.call_tool("transcript", arguments)
            theirs = await other.call_tool("transcript", arguments)
    assert [t["user"]["kind"] for t in mine.structured_content["turns"]] == ["launch", "message"]
    assert theirs.is_error


@pytest.fixture
def introspection() -> Iterator[str]:
    with introspection_server() as url:
        yield url


async def test_oauth_tokens_guard_the_a2a_endpoint(
    a2a_settings: Settings, emulator: Emulator, introspection: str
) -> None:
    settings = with_oauth(a2a_settings, introspection)
    with a2a_server(settings) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            card = (await http.get(CARD_PATH)).json()
            anonymous = await http.post("/a2a/default", json={"jsonrpc": "2.0", "id": 1})
            bad = await http.post("/a2a/default", json={}, headers={"Authorization": "Bearer nope"})
        # The card names the public URL; the test reaches the same routes on loopback.
        assert card["supportedInterfaces"][0]["url"] == "https://agents.example.com/a2a/default"
        assert card["url"] == "https://agents.example.com/a2a/default"  # v0.3 clients read it
        async with caller(running.url, token="good-oauth-token") as alice:
            alice.http.headers["A2A-Version"] = "1.0"
            sent = {"messageId": "o1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}
            answer = await alice.rpc("SendMessage", {"message": {**sent, "contextId": "ctx-1"}})
    assert "oauth" in card["securitySchemes"]
    assert (anonymous.status_code, bad.status_code) == (401, 401)
    assert 'error="invalid_token"' in anonymous.headers["www-authenticate"]
    assert answer["result"]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    paths = [r.path for r in emulator.requests if "/user/" in r.path]
    upstream = {path.split("/user/")[1].split("/")[0] for path in paths}
    assert upstream  # the turns reached the runtime, namespaced by the token's subject
    assert all(u.endswith(".ctx-1") and u != "ctx-1" for u in upstream)
