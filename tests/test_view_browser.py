"""The conversation view in a real MCP Apps host: headless Chromium, one launch.

tests/clients/view_host.mjs is the host: the official host side of ext-apps (`AppBridge`) shows
the view in a sandboxed frame with the CSP a host derives from the resource, and relays the
view's tool calls through the MCP TypeScript SDK client to a real vf-mcp HTTP server on loopback
(the page never reaches the server, so the product needs no CORS). The person's session: the
launch, a button, a typed order number, the answer and its variables, another button and a typed
reply of markup that must stay text in the page; the host must receive a
`ui/update-model-context` for each turn the view sent. Then the host forwards a later `interact`
result whose images show as links, and following one must ask the host to open it. Last the
host shows the transcript of a conversation seeded in the server's store (a real Redis) whose
agent sent markup in card titles, descriptions and a button: all of it must stay text.

The host speaks 2025-11-25 over stateless HTTP, so the server cannot tell it speaks Apps: it is
not listed the app-only tools, finds the view through `interact`'s `_meta.ui`, and its view
calls them anyway.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio

from tests.browser import chromium, launch_flags
from tests.node_tools import CLIENTS, require, system_node
from tests.processes import http_server, server_env
from tests.services import redis_server
from tests.test_server import TOOLS as MODEL_TOOLS
from tests.test_view import hostile_transcript
from vf_mcp.emulator import Emulator
from vf_mcp.store import open_store
from vf_mcp.transcripts.book import book_key

ROOT = Path(__file__).resolve().parent.parent
HOST = CLIENTS / "view_host.mjs"
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
SEEDED = "seeded-hostile"


async def seed(redis_url: str) -> None:
    """A conversation whose agent sent `HOSTILE` in every text it has, as the server stores it
    (the example agents send no markup in cards or buttons)."""
    store = open_store(redis_url, ttl_seconds=600)
    try:
        key = book_key(None, "default", SEEDED)
        await store.transcripts.append(key, *hostile_transcript(SEEDED, HOSTILE))
    finally:
        await store.aclose()


def run_host(mcp_url: str, shots: Path) -> dict[str, Any]:
    require(CLIENTS / "node_modules" / "puppeteer-core" / "package.json", "puppeteer-core")
    # One Chromium, started as every other browser test starts it (tests/browser.py).
    browser = {"VF_MCP_CHROMIUM": chromium(), "VF_MCP_CHROMIUM_ARGS": json.dumps(launch_flags())}
    done = subprocess.run(
        [system_node(), str(HOST), mcp_url, str(shots), SEEDED],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=CLIENTS,
        env={**os.environ, **browser},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_person_holds_the_conversation_in_the_view(emulator: Emulator, tmp_path: Path) -> None:
    # PYTHONPATH: the server child runs this checkout's vf_mcp, whatever the venv has installed.
    with redis_server() as redis_url:
        anyio.run(seed, redis_url)
        env = server_env(emulator.url, PYTHONPATH=str(ROOT), VF_MCP_STORE_URL=redis_url)
        with http_server(env) as (base, _process):
            seen = run_host(f"{base}/mcp", tmp_path)

    assert set(seen["listed"]) == MODEL_TOOLS  # no app-only tool listed to this client
    assert seen["uri"] == "ui://vf-mcp/conversation.html"
    assert seen["mimeType"] == "text/html;profile=mcp-app"
    launched, asked, answered = seen["launched"], seen["asked"], seen["answered"]
    assert "What can I do for you?" in launched["text"]
    assert launched["buttons"] == [
        {"label": "Track an order", "disabled": False},
        {"label": "Ask a question", "disabled": False},
        {"label": "Talk to a person", "disabled": False},
    ]
    assert launched["replyBox"] is True
    assert launched["status"] == "Waiting for the user · 1 turn"
    # Pressed: the old buttons stay, disabled, as in a web chat; focus goes to the reply box.
    assert "What's your order number?" in asked["text"]
    assert all(button["disabled"] for button in asked["buttons"])
    assert asked["focused"] == "vf-message"
    assert "Order 1001 has shipped and should arrive on Friday." in answered["text"]
    assert answered["status"] == "Waiting for the user · 3 turns"
    assert answered["focused"] == "Track another order"
    assert [b["label"] for b in answered["buttons"] if not b["disabled"]] == [
        "Track another order",
        "Talk to a person",
        "That's all",
    ]
    folded = 'Variables changed (2)\norder_number\nunset → "1001"\norder_status\nunset → "shipped"'
    assert seen["variables"] == {"open": True, "text": folded}

    # The typed markup went through view.js's innerHTML as text: shown, never parsed or run.
    hostile = seen["hostile"]
    assert hostile["typed"] == HOSTILE
    assert "I couldn't find order 1." in hostile["text"]
    assert (hostile["scripts"], hostile["images"], hostile["handlers"]) == (0, 0, [])

    contexts = [update["content"][0]["text"] for update in seen["modelContext"]]
    assert len(contexts) == 4
    assert contexts[0].startswith('In the conversation view the user pressed "Track an order"')
    assert "Agent: Sure. What's your order number?" in contexts[0]
    assert contexts[1].startswith('In the conversation view the user typed "1001"')
    assert "Agent: Order 1001 has shipped and should arrive on Friday." in contexts[1]
    assert contexts[2].startswith('In the conversation view the user pressed "Track another')
    assert contexts[3].startswith(f'In the conversation view the user typed "{HOSTILE}"')

    # A link asks the host to open it (the sandbox allows no popups); the view stays in place.
    link = seen["link"]
    assert link["href"] == "https://cdn.acme.example/img/parcel.png"
    assert link["openedLinks"] == [{"url": link["href"]}]
    assert link["after"]["url"] == "about:srcdoc"
    after = link["after"]
    assert (after["pwned"], after["scripts"], after["images"], after["handlers"]) == (
        "undefined",
        0,
        0,
        [],
    )
    assert "Every trace type follows." in after["text"]

    # The agent's markup (card title, its image's description, card description, button, text)
    # and the user's, all as text: six times, as the server-side test counts it.
    from_agent = seen["fromAgent"]
    assert from_agent["shownAsText"] == 6
    assert (from_agent["pwned"], from_agent["scripts"], from_agent["images"]) == ("undefined", 0, 0)
    assert from_agent["handlers"] == []
    assert [call["name"] for call in seen["calls"]] == [
        "view_conversation",
        "view_reply",
        "view_reply",
        "view_reply",
        "view_reply",
        "view_conversation",
        "view_conversation",
    ]
    # Nothing loaded from the network, and nothing failed in the page.
    assert seen["viewRequests"] == []
    assert seen["consoleErrors"] == []
    for name in ("view-launch.png", "view-answer.png"):
        assert (tmp_path / name).stat().st_size > 1000
