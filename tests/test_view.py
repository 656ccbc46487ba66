"""The conversation view (MCP Apps) through the official Python client, in memory, against the
emulator: what a client with and without the extension sees, the app-only tools, the allow-list
and read-only mode, and that nothing the agent sends reaches the page as markup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from lxml import html as lxml_html
from mcp import Client
from mcp.client.extension import advertise
from mcp.client.streamable_http import streamable_http_client
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult, Tool

from tests.processes import http_server, server_env
from tests.test_server import TOOLS as MODEL_TOOLS
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import AgentReply, Transcript, TranscriptTurn, UserAction
from vf_mcp.domain.turn import AgentMessage, Card, Choice, Media
from vf_mcp.emulator import Emulator
from vf_mcp.server import build_server
from vf_mcp.store import Store
from vf_mcp.store.memory import in_memory_store
from vf_mcp.tools import TOOLS, build_tools
from vf_mcp.transcripts.book import book_key
from vf_mcp.view import VIEW_URI, view_html

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.anyio

APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
VIEW_TOOLS = {"view_conversation", "view_reply"}


@asynccontextmanager
async def connected(
    settings: Settings, *, apps: bool, mode: str = "auto", store: Store | None = None
) -> AsyncIterator[Client]:
    server = build_server(settings, store=store)
    async with Client(server, mode=mode, extensions=[APPS] if apps else None) as client:  # type: ignore[arg-type]
        yield client


def dom(result: CallToolResult) -> Any:
    assert result.is_error is False, result.content
    assert result.structured_content is not None
    return lxml_html.fromstring(result.structured_content["html"])


def labels(page: Any, *, enabled: bool) -> list[str]:
    buttons = page.cssselect("button.vf-choice")
    return [b.text_content() for b in buttons if (b.get("disabled") is None) == enabled]


def comparable(result: CallToolResult) -> tuple[Any, ...]:
    content = dict(result.structured_content or {})
    content.pop("latency_ms", None)  # the one field that differs between two runs
    return ([block.model_dump() for block in result.content], content, result.is_error)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_without_apps_sees_the_server_as_before(
    settings: Settings, mode: str
) -> None:
    # Today's server: the same model tools with no view (an allow-list without the view tools).
    before = settings.model_copy(update={"tools": frozenset(MODEL_TOOLS)})
    async with connected(before, apps=False, mode=mode) as client:
        expected = [t.model_dump() for t in (await client.list_tools()).tools]
        expected_resources = (await client.list_resources()).model_dump()
        then = await client.call_tool("interact", {"user_id": "same-user", "launch": True})
    async with connected(settings, apps=False, mode=mode) as client:
        listed = (await client.list_tools()).tools
        resources = (await client.list_resources()).model_dump()
        now = await client.call_tool("interact", {"user_id": "same-user", "launch": True})
        refused = await client.call_tool("view_conversation", {"user_id": "same-user"})
    assert [t.model_dump() for t in listed] == expected
    assert resources == expected_resources  # the view's ui:// resource is not listed
    assert {t.name for t in listed} == MODEL_TOOLS
    # No `ui` metadata; only the size the large tools declare (tests/test_result_sizes.py).
    assert all(not t.meta or set(t.meta) == {"anthropic/maxResultSizeChars"} for t in listed)
    assert comparable(now) == comparable(then)
    assert refused.is_error is True
    assert refused.content[0].text == (  # type: ignore[union-attr]
        "view_conversation serves the MCP App conversation view, and this client did not "
        "negotiate MCP Apps (io.modelcontextprotocol/ui); use interact or transcript instead"
    )


class HttpListing(NamedTuple):
    protocol: str
    tools: list[Tool]
    resources: dict[str, Any]
    launch: CallToolResult
    shown: CallToolResult


async def over_http(emulator: Emulator, **env: str) -> HttpListing:
    """A real HTTP server (this checkout) through the Python SDK client speaking 2025-11-25
    (mode legacy: the `initialize` handshake): tools, resources, a launch and the view's read."""
    with http_server(server_env(emulator.url, PYTHONPATH=str(ROOT), **env)) as (base, _):
        async with Client(streamable_http_client(f"{base}/mcp"), mode="legacy") as client:
            return HttpListing(
                client.protocol_version,
                (await client.list_tools()).tools,
                (await client.list_resources()).model_dump(),
                await client.call_tool("interact", {"user_id": "same-user", "launch": True}),
                await client.call_tool("view_conversation", {"user_id": "same-user"}),
            )


async def test_a_legacy_http_client_of_unknown_support_is_not_offered_the_view_tools(
    emulator: Emulator,
) -> None:
    # Stateless HTTP keeps no capabilities of a 2025-11-25 client: most such clients (Claude
    # Code) lack Apps, so the listing is today's; an Apps host still finds the view by _meta.
    before = await over_http(emulator, VF_MCP_TOOLS=",".join(sorted(MODEL_TOOLS)))
    now = await over_http(emulator)
    assert now.protocol == before.protocol == "2025-11-25"
    names = [t.name for t in now.tools]
    assert names == [t.name for t in before.tools] and not VIEW_TOOLS & set(names)
    plain = [t.model_dump(exclude={"meta"}) for t in now.tools]
    assert plain == [t.model_dump(exclude={"meta"}) for t in before.tools]
    interact = next(t for t in now.tools if t.name == "interact")
    assert interact.meta == {"ui": {"resourceUri": VIEW_URI}, "ui/resourceUri": VIEW_URI}
    assert now.resources == before.resources  # the view's ui:// resource is not listed
    assert comparable(now.launch) == comparable(before.launch)
    # Still callable: an Apps host on this protocol lets its view read the conversation.
    assert "What can I do for you?" in dom(now.shown).text_content()
    assert before.shown.is_error is True  # the server without the view has no such tool


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_apps_client_gets_the_view_and_its_app_only_tools(
    settings: Settings, mode: str
) -> None:
    settings = settings.model_copy(
        update={"view_image_origins": frozenset({"https://cdn.example.com"})}
    )
    async with connected(settings, apps=True, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        read = await client.read_resource(VIEW_URI)
        plain = await client.call_tool("interact", {"user_id": "same-user", "launch": True})
    assert set(tools) == MODEL_TOOLS | VIEW_TOOLS
    assert VIEW_URI in resources
    assert tools["interact"].meta == {"ui": {"resourceUri": VIEW_URI}, "ui/resourceUri": VIEW_URI}
    assert tools["transcript"].meta == {
        "ui": {"resourceUri": VIEW_URI},
        "ui/resourceUri": VIEW_URI,
        "anthropic/maxResultSizeChars": 500_000,
    }
    for name in VIEW_TOOLS:
        assert tools[name].meta is not None
        assert tools[name].meta["ui"] == {"resourceUri": VIEW_URI, "visibility": ["app"]}
    assert tools["view_conversation"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["view_reply"].annotations.read_only_hint is False  # type: ignore[union-attr]
    (content,) = read.contents
    assert content.mime_type == APP_MIME_TYPE
    assert content.meta == {
        "ui": {"csp": {"resourceDomains": ["https://cdn.example.com"]}, "prefersBorder": True}
    }
    assert content.text == view_html()  # type: ignore[union-attr]
    # The turn's own result is the same for every client: text and structured content.
    assert "Choices: 1) Track an order" in plain.content[0].text  # type: ignore[union-attr]


def test_handoff_declares_the_view_too() -> None:
    tools = {tool.name: tool for tool in build_tools(TOOLS)}
    assert tools["handoff"].meta == {"ui": {"resourceUri": VIEW_URI}, "ui/resourceUri": VIEW_URI}
    assert tools["get_state"].meta is None


async def test_the_view_shows_the_conversation_and_answers_in_it(settings: Settings) -> None:
    async with connected(settings, apps=True) as client:
        launch = await client.call_tool("interact", {"launch": True})
        user_id = launch.structured_content["user_id"]  # type: ignore[index]
        shown = await client.call_tool("view_conversation", {"user_id": user_id})
        pressed = await client.call_tool("view_reply", {"user_id": user_id, "choice": 1})
        typed = await client.call_tool("view_reply", {"user_id": user_id, "message": "1001"})
        both = await client.call_tool(
            "view_reply", {"user_id": user_id, "message": "x", "choice": 1}
        )
    page = dom(shown)
    assert "What can I do for you?" in page.text_content()
    assert labels(page, enabled=True) == ["Track an order", "Ask a question", "Talk to a person"]
    state = shown.structured_content
    assert state is not None
    assert (state["agent"], state["status"], state["turns"]) == ("default", "awaiting_user", 1)
    assert state["interactive"] is True and state["context"] == ""
    assert pressed.structured_content is not None
    assert pressed.structured_content["context"] == (
        f'In the conversation view the user pressed "Track an order" (user_id {user_id}). '
        "The agent answered:\nAgent: Sure. What's your order number?\n"
        "Status: awaiting_user (no-reply 30 s)"
    )
    answer = dom(typed)
    assert "Order 1001 has shipped and should arrive on Friday." in answer.text_content()
    folded = answer.cssselect("section.vf-turn")[-1].cssselect("details.vf-vars")[0]
    assert folded.get("open") is None
    assert [dd.text_content() for dd in folded.cssselect("dd")] == [
        'unset → "1001"',
        'unset → "shipped"',
    ]
    assert typed.structured_content is not None
    assert typed.structured_content["summary"] == typed.content[0].text  # type: ignore[union-attr]
    assert both.is_error is True
    assert "view_reply takes exactly one of message or choice" in both.content[0].text  # type: ignore[union-attr]


async def test_read_only_shows_the_view_without_controls(settings: Settings) -> None:
    store = in_memory_store()  # one store, as several workers share one
    async with connected(settings, apps=True, store=store) as client:
        launch = await client.call_tool("interact", {"launch": True})
    user_id = launch.structured_content["user_id"]  # type: ignore[index]
    read_only = settings.model_copy(update={"read_only": True})
    async with connected(read_only, apps=False, store=store) as client:
        model_tools = {t.name for t in (await client.list_tools()).tools}
    async with connected(read_only, apps=True, store=store) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        shown = await client.call_tool("view_conversation", {"user_id": user_id})
    # The read-only tools, and of the view's only the one that reads.
    assert "transcript" in model_tools and "interact" not in model_tools
    assert names == model_tools | {"view_conversation"}
    assert shown.structured_content is not None
    assert shown.structured_content["interactive"] is False
    assert labels(dom(shown), enabled=True) == []
    assert labels(dom(shown), enabled=False) == [
        "Track an order",
        "Ask a question",
        "Talk to a person",
    ]


@pytest.mark.parametrize(
    ("allowed", "listed"),
    [
        ({"interact", "get_state"}, {"interact", "get_state"}),
        ({"interact", "view_conversation"}, {"interact", "view_conversation"}),
        # view_reply alone: no view to serve, so not offered (else the model would get it).
        ({"interact", "view_reply"}, {"interact"}),
    ],
)
async def test_the_allow_list_chooses_the_view_tools(
    settings: Settings, allowed: set[str], listed: set[str]
) -> None:
    async with connected(settings.model_copy(update={"tools": frozenset(allowed)}), apps=True) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        resources = {str(r.uri) for r in (await c.list_resources()).resources}
        launch = await c.call_tool("interact", {"launch": True})
        user_id = launch.structured_content["user_id"]  # type: ignore[index]
        if "view_conversation" in allowed:
            shown = await c.call_tool("view_conversation", {"user_id": user_id})
    assert set(tools) == listed
    if "view_conversation" in allowed:
        # The view reads the conversation but cannot act in it: view_reply is not offered.
        assert tools["interact"].meta is not None
        assert VIEW_URI in resources
        assert shown.structured_content is not None
        assert shown.structured_content["interactive"] is False
    else:
        # No tool could read the view's conversation, so no tool names the view.
        assert tools["interact"].meta is None
        assert VIEW_URI not in resources


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def hostile_transcript(user_id: str, markup: str = HOSTILE) -> tuple[Transcript, TranscriptTurn]:
    """One turn of `markup` everywhere the agent and the user put text (the browser test seeds
    it too)."""
    head = Transcript(
        suite="live",
        test_id=user_id,
        name=f"conversation {user_id}",
        user_id=user_id,
        started_at=datetime.now(UTC),
        outcome="passed",
    )
    cards = [
        Card(title=markup, description=markup, image_url="javascript:alert(3)"),
        Card(title="Allowed", image_url="https://cdn.example.com/a.png"),
        Card(title="Elsewhere", image_url="https://evil.example/b.png"),
    ]
    agent = AgentReply(
        messages=[
            AgentMessage(kind="text", text=markup),
            AgentMessage(kind="carousel", cards=cards),
            AgentMessage(
                kind="image", media=Media(kind="image", url="data:text/html;base64,PHNjcmlwdD4=")
            ),
        ],
        choices=[Choice(number=1, label=markup, request={})],
    )
    turn = TranscriptTurn(
        index=1, user=UserAction(kind="message", text=markup), agent=agent, status="awaiting_user"
    )
    return head, turn


async def test_nothing_the_agent_sends_runs_or_loads_in_the_view(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"view_image_origins": frozenset({"https://cdn.example.com"})}
    )
    store = in_memory_store()
    await store.transcripts.append(book_key(None, "default", "hostile"), *hostile_transcript("x"))
    async with connected(settings, apps=True, store=store) as client:
        shown = await client.call_tool("view_conversation", {"user_id": "hostile"})
    page = dom(shown)
    assert page.cssselect("script") == []
    attributes = [(name, value) for el in page.iter() for name, value in el.attrib.items()]
    assert not [name for name, _ in attributes if name.startswith("on")]
    assert not [v for _, v in attributes if v.strip().lower().startswith(("javascript:", "data:"))]
    assert [img.get("src") for img in page.cssselect("img")] == ["https://cdn.example.com/a.png"]
    assert "https://evil.example/b.png" in page.text_content()  # shown as a link instead
    # As text: the user, the agent, the card title, its image (described by the title), its
    # description and the button.
    assert page.text_content().count(HOSTILE) == 6
    assert labels(page, enabled=True) == [HOSTILE]


def test_the_view_is_one_document_that_loads_nothing() -> None:
    document = view_html()
    page = lxml_html.document_fromstring(document)
    assert page.get("lang") == "en"
    assert page.cssselect("title")[0].text_content()
    # Inline scripts and styles only: no element points anywhere.
    assert not [el for el in page.iter() if el.get("src") or el.get("href")]
    assert len(page.cssselect("script")) == 2 and not page.cssselect("link")
    assert len(document.encode()) < 300_000
    # Keyboard and screen readers: the reply box is labelled, the status is announced.
    assert page.cssselect("label[for=vf-message]")[0].text_content() == "Your reply"
    assert page.cssselect("#vf-state")[0].get("aria-live") == "polite"
    assert page.cssselect("#vf-problem")[0].get("role") == "alert"
