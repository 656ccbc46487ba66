"""The chat component shared by the HTML report and the MCP App view: what it shows, and what it
never lets through (markup, script URLs, images from origins nobody allowed)."""

from __future__ import annotations

import subprocess
import sys

from lxml import html as lxml_html

from tests.canary import CANARY_KEY
from vf_mcp.chat import ChatOptions, image_source, link_target, render_chat
from vf_mcp.domain.transcript import AgentReply, TranscriptTurn, UserAction
from vf_mcp.domain.turn import AgentMessage, Card, Choice, VariableChange

ALLOWED = frozenset({"https://cdn.example.com"})


def _turn(index: int, **agent: object) -> TranscriptTurn:
    return TranscriptTurn(
        index=index,
        user=UserAction(kind="launch") if index == 1 else UserAction(kind="message", text="hi"),
        agent=AgentReply.model_validate(agent),
        status="awaiting_user",
    )


def test_images_load_only_over_https_from_an_allowed_origin() -> None:
    assert image_source("https://cdn.example.com/a.png", ALLOWED) == "https://cdn.example.com/a.png"
    assert image_source("https://evil.example.net/a.png", ALLOWED) is None
    assert image_source("http://cdn.example.com/a.png", ALLOWED) is None
    assert image_source("data:image/png;base64,AAAA", ALLOWED) is None
    assert link_target("javascript:alert(1)") is None and link_target(" JavaScript:x") is None
    assert link_target("https://example.com/x") == "https://example.com/x"


def test_an_image_from_elsewhere_shows_as_its_description_and_link() -> None:
    card = Card(title="Pizza", image_url="https://evil.example.net/p.png")
    shown = Card(title="Salad", image_url="https://cdn.example.com/s.png")
    page = render_chat(
        [_turn(1, messages=[AgentMessage(kind="carousel", cards=[card, shown])])],
        ChatOptions(image_origins=ALLOWED),
    )
    dom = lxml_html.fromstring(page)
    assert [i.get("src") for i in dom.cssselect("img")] == ["https://cdn.example.com/s.png"]
    assert dom.cssselect("img")[0].get("alt") == "Salad"
    link = dom.cssselect("a.vf-link")[0]
    assert link.get("href") == "https://evil.example.net/p.png"
    assert link.text_content().startswith("Pizza")


def test_only_the_last_turns_buttons_act_and_only_when_interactive() -> None:
    choices = [
        Choice(number=1, label="Yes", request={}),
        Choice(number=2, label="No", request={}),
    ]
    turns = [_turn(1, choices=choices), _turn(2, choices=choices)]
    live = lxml_html.fromstring(render_chat(turns, ChatOptions(interactive=True)))
    enabled = [b for b in live.cssselect("button") if b.get("disabled") is None]
    assert [(b.get("data-choice"), b.text_content()) for b in enabled] == [
        ("1", "Yes"),
        ("2", "No"),
    ]
    assert enabled[0].getparent().getparent().get("data-turn") == "2"
    still = lxml_html.fromstring(render_chat(turns))
    assert all(b.get("disabled") is not None for b in still.cssselect("button"))


def test_the_status_and_folded_variable_changes_of_the_last_turn() -> None:
    turn = _turn(1, messages=[AgentMessage(kind="text", text="Bye")])
    turn = turn.model_copy(
        update={
            "status": "ended",
            "variables_changed": [
                VariableChange(name="order", before=0, after="1001"),  # the runtime's default
                VariableChange(name="count", before=1, after=0),
            ],
        }
    )
    dom = lxml_html.fromstring(render_chat([turn]))
    assert dom.cssselect(".vf-status")[0].get("data-status") == "ended"
    assert dom.cssselect(".vf-status")[0].text_content() == "The conversation ended"
    folded = dom.cssselect("details.vf-vars")[0]
    assert folded.get("open") is None
    shown = [dd.text_content() for dd in folded.cssselect("dd")]
    assert shown == ['unset → "1001"', "1 → 0"]


def test_an_empty_conversation_says_so() -> None:
    dom = lxml_html.fromstring(render_chat([]))
    assert dom.get("role") == "log"
    assert dom.text_content() == "The conversation has not started yet."


def test_jinja2_is_loaded_by_the_first_render_never_by_a_start() -> None:
    # A stdio server reads the chat's stylesheet for the view at start-up, and `vf-mcp eval`
    # without --html imports the report's module: neither may pay for the template engine.
    probe = (
        "import sys\n"
        "import vf_mcp.evaluation.cli\n"
        "from vf_mcp.cli import build_parser\n"
        "from vf_mcp.config import Settings\n"
        "from vf_mcp.server import build_server\n"
        "build_parser()\n"
        f"build_server(Settings.validated({{'api_key': {CANARY_KEY!r}}}))\n"
        "print('jinja2' in sys.modules)\n"
        "from vf_mcp.chat import render_chat\n"
        "render_chat([])\n"
        "print('jinja2' in sys.modules)\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.split() == ["False", "True"]
