"""The A2A front end's tables and translations, one promise each."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest
from a2a.types import Message, Part, Role
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from google.protobuf import json_format, struct_pb2
from starlette.requests import Request

from tests.canary import CANARY_KEY
from vf_mcp.a2a.app import base_url
from vf_mcp.a2a.card import agent_card
from vf_mcp.a2a.errors import ERROR_STATES, TURN_STATES
from vf_mcp.a2a.executor import conversation_user_id
from vf_mcp.a2a.parts import MAX_TEXT_CHARS, Ask, read_message
from vf_mcp.agents import single_agent
from vf_mcp.config import Settings
from vf_mcp.conversation import check_user_id
from vf_mcp.domain.errors import ErrorKind
from vf_mcp.domain.turn import TurnStatus
from vf_mcp.store.memory import MemoryShelf
from vf_mcp.tools import TOOLS, build_tools

pytestmark = pytest.mark.anyio
SETTINGS = Settings.validated({"api_key": CANARY_KEY})


def sent(*parts: Part) -> Message:
    return Message(role=Role.ROLE_USER, message_id="m", parts=list(parts))


def data(value: Any) -> Part:
    return Part(data=json_format.ParseDict(value, struct_pb2.Value()))


def test_every_turn_status_and_error_kind_has_a_task_state() -> None:
    assert set(TURN_STATES) == set(get_args(TurnStatus))
    assert set(ERROR_STATES) == set(get_args(ErrorKind))


def test_a_message_is_limited_like_the_interact_tools_message() -> None:
    interact = next(tool for tool in build_tools(TOOLS) if tool.name == "interact")
    schema = interact.parameters["properties"]["message"]["anyOf"][0]
    assert schema["maxLength"] == MAX_TEXT_CHARS
    assert read_message(sent(Part(text="x" * MAX_TEXT_CHARS))).text
    with pytest.raises(InvalidParamsError, match="over the 10000 limit"):
        read_message(sent(Part(text="x" * (MAX_TEXT_CHARS + 1))))


def test_data_parts_read_as_a_turn() -> None:
    # JSON numbers travel as doubles: a button number and whole variables come back whole.
    asked = read_message(sent(data({"choice": 2}), data({"variables": {"n": 3, "x": 1.5}})))
    assert asked == Ask(choice=2, variables={"n": 3, "x": 1.5})
    assert isinstance(asked.choice, int)
    assert read_message(sent(Part(text="a"), Part(text="b"))).text == "a\nb"
    assert read_message(sent(Part(text=" "), data({"choice": "Yes"}))) == Ask(choice="Yes")
    assert not read_message(sent(data({}))).has_turn  # only a launch, in a new context


@pytest.mark.parametrize(
    ("parts", "error", "says"),
    [
        ((Part(raw=b"%PDF"),), ContentTypeNotSupportedError, "is a file (raw)"),
        ((data({"choice": 1}), data({"choice": 2})), InvalidParamsError, "two data parts"),
        ((data({"action": {"payload": 1}}),), InvalidParamsError, "string `type`"),
        ((data({"choice": True}),), InvalidParamsError, "label (text) or number"),
        ((data({"variables": [1]}),), InvalidParamsError, "object of names"),
        ((data({"variables": {"big": "x" * 70_000}}),), InvalidParamsError, "byte limit"),
        ((Part(),), InvalidParamsError, "Part 0 is empty"),
    ],
)
def test_what_a_message_cannot_ask(
    parts: tuple[Part, ...], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=re.escape(says)):
        read_message(sent(*parts))


def test_a_context_id_names_a_valid_conversation() -> None:
    assert conversation_user_id("6f1c2e0a-9f0e-4c61-8d7f-0c9b2f1e5a77").startswith("6f1c2e0a")
    for odd in ("ctx with spaces/and slashes", "x" * 65):
        named = conversation_user_id(odd)
        assert check_user_id(named) == named == conversation_user_id(odd)
        assert len(named) == 36  # room for the namespace and an agent prefix within 128


def test_the_oauth_card_names_the_issuer_and_its_scopes() -> None:
    oauth = Settings.validated(
        {
            "api_key": CANARY_KEY,
            "oauth_issuer": "https://auth.example.com/",
            "oauth_introspection_url": "https://auth.example.com/introspect",
            "oauth_scopes": "voiceflow:talk",
            "public_url": "https://agents.example.com/mcp",
        }
    )
    directory = single_agent(oauth)
    card = agent_card(
        directory.agents["default"], directory, oauth, base="https://x", converses=True
    )
    scheme = card.security_schemes["oauth"].oauth2_security_scheme
    assert scheme.oauth2_metadata_url == (
        "https://auth.example.com/.well-known/oauth-authorization-server"
    )
    assert list(card.security_requirements[0].schemes["oauth"].list) == ["voiceflow:talk"]
    assert CANARY_KEY not in json_format.MessageToJson(card)


def scope(server: tuple[str, int], host: str = "127.0.0.1:8765") -> Request:
    return Request(
        {
            "type": "http",
            "scheme": "http",
            "server": server,
            "path": "/",
            "headers": [(b"host", host.encode())],
        }
    )


def test_the_card_url_is_the_public_url_else_the_bound_address() -> None:
    public = SETTINGS.model_copy(update={"public_url": "https://mcp.example.com/mcp"})
    assert base_url(scope(("127.0.0.1", 8765)), public) == "https://mcp.example.com"
    assert base_url(scope(("127.0.0.1", 9000)), SETTINGS) == "http://127.0.0.1:9000"
    assert base_url(scope(("::1", 9000)), SETTINGS) == "http://[::1]:9000"
    everywhere = scope(("0.0.0.0", 9000), host="agents.example.com:9000")
    assert base_url(everywhere, SETTINGS) == "http://agents.example.com:9000"


async def test_the_memory_shelf_expires_and_claims_once() -> None:
    shelf = MemoryShelf(ttl_seconds=60, max_items=2)
    assert await shelf.add("a", b"1")
    assert not await shelf.add("a", b"2")
    await shelf.put("b", b"2")
    await shelf.put("c", b"3")  # over the bound: the oldest goes
    assert (await shelf.get("a"), await shelf.get("c")) == (None, b"3")
    expired = MemoryShelf(ttl_seconds=-1)
    await expired.put("k", b"v")
    await expired.index("g", "k")
    assert (await expired.get("k"), await expired.members("g")) == (None, [])
