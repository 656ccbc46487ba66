"""Transcript turns to chat markup, escaped on the server side.

Everything the agent or the user said reaches the page only through `html.escape`, and a URL
reaches an attribute only when it is `http(s):` (links) or `https:` from an allowed origin (images):
a `javascript:` or `data:` URL is shown as text. No markup here carries script or inline handlers,
so the same fragment is safe in a report opened from disk and in a host's sandboxed frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib.resources import files
from urllib.parse import urlsplit

from pydantic import JsonValue

from vf_mcp.transcripts.models import (
    TranscriptCard,
    TranscriptChoice,
    TranscriptMessage,
    TranscriptTurn,
    UserAction,
    VariableDelta,
)
from vf_mcp.voiceflow.variables import is_unset

STATUS_LABELS = {
    "awaiting_user": "Waiting for the user",
    "awaiting_action": "Waiting for the host to answer a custom action",
    "ended": "The conversation ended",
    "handoff": "Handed off to a person",
    "error": "The turn failed",
}


@dataclass(frozen=True)
class ChatOptions:
    """How a chat is shown: which images load, whether its buttons act, what each turn adds."""

    image_origins: frozenset[str] = frozenset()  # https origins whose images are shown
    interactive: bool = False  # the last turn's buttons can be pressed (`data-choice`)
    # Markup (already escaped) after a turn's messages: the report puts the turn's checks there.
    turn_extra: Callable[[TranscriptTurn], str] | None = None


@cache
def chat_css() -> str:
    """The component's stylesheet, read once."""
    return files("vf_mcp.chat").joinpath("chat.css").read_text(encoding="utf-8")


def link_target(url: str | None) -> str | None:
    """`url` when it is safe as a link (`http:` or `https:` with a host), else None."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def image_source(url: str | None, origins: frozenset[str]) -> str | None:
    """`url` when the page may load it: `https:` and from one of `origins`."""
    target = link_target(url)
    if target is None:
        return None
    parts = urlsplit(target)
    origin = f"{parts.scheme}://{parts.netloc}"
    return target if parts.scheme == "https" and origin in origins else None


def render_chat(turns: Sequence[TranscriptTurn], options: ChatOptions | None = None) -> str:
    """The conversation as one `<div class="vf-chat">`, oldest turn first."""
    options = options or ChatOptions()
    body = [_turn(turn, options, last=number == len(turns)) for number, turn in enumerate(turns, 1)]
    if not turns:
        body.append('<p class="vf-note">The conversation has not started yet.</p>')
    return (
        '<div class="vf-chat" role="log" aria-label="Conversation with the agent">'
        + "".join(body)
        + "</div>"
    )


def _turn(turn: TranscriptTurn, options: ChatOptions, *, last: bool) -> str:
    parts = [_user(turn.user)]
    if turn.error is not None:
        parts.append(f'<p class="vf-error" role="alert">{escape(turn.error)}</p>')
    parts += [_message(m, options) for m in turn.agent.messages]
    parts += [_custom_action(a.name) for a in turn.agent.custom_actions]
    parts += [_host_reply(r.action, r.reply.get("type")) for r in turn.host_replies]
    if turn.agent.choices:
        parts.append(_choices(turn.agent.choices, active=options.interactive and last))
    if turn.variables_changed:
        parts.append(_variables(turn.variables_changed))
    if last and turn.status is not None:
        label = STATUS_LABELS.get(turn.status, turn.status)
        parts.append(
            f'<p class="vf-status" data-status="{escape(turn.status)}" role="status">'
            f"{escape(label)}</p>"
        )
    if options.turn_extra is not None:
        parts.append(options.turn_extra(turn))
    return f'<section class="vf-turn" data-turn="{turn.index}">{"".join(parts)}</section>'


def _user(user: UserAction) -> str:
    match user.kind:
        case "launch":
            return '<p class="vf-note">Conversation started</p>'
        case "message":
            return _bubble("user", "You", user.text or "")
        case "choice" | "button":
            label = user.text if user.text is not None else str(user.choice or "")
            return _bubble("user", "You pressed", label)
        case "event":
            return f'<p class="vf-note">Event {escape(user.text or "")}</p>'
        case _:
            kind = (user.action or {}).get("type", user.kind)
            return f'<p class="vf-note">Sent a {escape(str(kind))} action</p>'


def _bubble(side: str, who: str, text: str) -> str:
    return (
        f'<div class="vf-msg vf-{side}"><span class="vf-who">{escape(who)}</span>'
        f'<p class="vf-text">{escape(text)}</p></div>'
    )


def _message(message: TranscriptMessage, options: ChatOptions) -> str:
    if message.kind in ("card", "carousel"):
        cards = "".join(_card(c, options) for c in message.cards)
        return f'<div class="vf-msg vf-agent vf-{message.kind}">{cards}</div>'
    if message.kind == "image":
        return f'<div class="vf-msg vf-agent">{_image(message.url, "Image", options)}</div>'
    if message.kind == "audio":
        return f'<div class="vf-msg vf-agent">{_link(message.url, "Audio")}</div>'
    if message.kind in ("handoff", "notice"):
        return f'<p class="vf-note vf-{message.kind}">{escape(message.text)}</p>'
    return _bubble("agent", "Agent", message.text)


def _card(card: TranscriptCard, options: ChatOptions) -> str:
    parts = ['<article class="vf-card">']
    if card.image_url:
        parts.append(_image(card.image_url, card.title or "Card image", options))
    if card.title:
        parts.append(f'<h3 class="vf-card-title">{escape(card.title)}</h3>')
    if card.description:
        parts.append(f'<p class="vf-text">{escape(card.description)}</p>')
    if card.buttons:
        labels = "".join(f'<li class="vf-chip">{escape(b)}</li>' for b in card.buttons)
        parts.append(f'<ul class="vf-card-buttons" aria-label="Card buttons">{labels}</ul>')
    return "".join(parts) + "</article>"


def _image(url: str | None, description: str, options: ChatOptions) -> str:
    source = image_source(url, options.image_origins)
    if source is not None:
        return f'<img class="vf-image" src="{escape(source)}" alt="{escape(description)}">'
    return f'<p class="vf-media">{_link(url, description)}</p>'


def _link(url: str | None, description: str) -> str:
    """A link when the URL is safe, else the description and the URL as plain text."""
    target = link_target(url)
    if target is not None:
        return (
            f'<a class="vf-link" href="{escape(target)}" rel="noopener noreferrer" '
            f'target="_blank">{escape(description)}: {escape(target)}</a>'
        )
    shown = f" ({url})" if url and not url.startswith("data:") else ""
    return f'<span class="vf-link">{escape(description)}{escape(shown)}</span>'


def _choices(choices: Sequence[TranscriptChoice], *, active: bool) -> str:
    buttons = []
    for choice in choices:
        label = escape(choice.label)
        state = "" if active else " disabled"
        buttons.append(
            f'<button type="button" class="vf-choice" data-choice="{choice.number}"{state}>'
            f"{label}</button>"
        )
    return f'<div class="vf-choices" role="group" aria-label="Buttons">{"".join(buttons)}</div>'


def _custom_action(name: str) -> str:
    return f'<p class="vf-note">Custom action <code>{escape(name)}</code></p>'


def _host_reply(action: str, reply: JsonValue) -> str:
    answer = escape(str(reply))
    return f'<p class="vf-note">The host answered <code>{escape(action)}</code> with {answer}</p>'


def _variables(changes: Sequence[VariableDelta]) -> str:
    rows = "".join(
        f"<dt>{escape(c.name)}</dt><dd>{escape(_before(c.before))} → {escape(_short(c.after))}</dd>"
        for c in changes
    )
    return (
        f'<details class="vf-vars"><summary>Variables changed ({len(changes)})</summary>'
        f"<dl>{rows}</dl></details>"
    )


def _before(value: JsonValue) -> str:
    # The runtime's `0` for a declared variable means "never set", as the summaries say.
    return "unset" if is_unset(value) else _short(value)


def _short(value: JsonValue, limit: int = 60) -> str:
    text = "unset" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
