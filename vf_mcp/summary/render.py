"""`render_turn`: the short, deterministic text a model reads for one turn.

Messages, the buttons on offer, custom actions, variable changes and one status line; nothing the
model needs is left out and nothing it does not need is added (latency, the user id it already
holds and the traces stay in the structured content). However long a turn, the text stays within
a character budget and says what it left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vf_mcp.config import DEFAULT_SUMMARY_MAX_CHARS, MIN_SUMMARY_MAX_CHARS
from vf_mcp.domain.turn import AgentMessage, TurnResult, VariableChange, Verbosity
from vf_mcp.voiceflow.variables import is_unset

DEFAULT_MAX_CHARS = DEFAULT_SUMMARY_MAX_CHARS
MIN_MAX_CHARS = MIN_SUMMARY_MAX_CHARS

_NOTE_RESERVE = 120


def render_turn(
    turn: TurnResult,
    verbosity: Verbosity = "standard",
    *,
    show_user_id: bool = False,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """The text a model reads. `show_user_id` when the server chose the id (a new conversation)."""
    minimal = verbosity == "minimal"
    # (line, essential): essential lines survive any budget, the others fill what is left.
    lines = [(line, False) for m in turn.messages for line in _message_lines(m, verbosity)]
    if turn.choices:
        lines.append((_choices_line(turn), True))
    if not minimal:
        lines += [
            (_custom_action_line(a.name, a.payload, a.result_types), True)
            for a in turn.custom_actions
        ]
        lines += [(line, False) for line in _detail_lines(turn)]
    lines += [(f"Warning: {warning}", True) for warning in turn.warnings]
    lines.append((_status_line(turn, minimal=minimal, show_user_id=show_user_id), True))
    return _fit(lines, max(max_chars, MIN_MAX_CHARS))


def _message_lines(message: AgentMessage, verbosity: Verbosity) -> list[str]:
    minimal = verbosity == "minimal"
    if message.kind in ("card", "carousel"):
        lines = []
        for card in message.cards:
            parts = [card.title or "(untitled)"]
            if card.description:
                parts.append(card.description)
            # A card's picture illustrates its words; its link is for debugging, not reading.
            if card.image_url and verbosity == "debug":
                parts.append(f"image {card.image_url}")
            lines.append(f"Agent [card]: {' — '.join(parts)}")
        return lines
    if message.kind in ("image", "audio"):
        media = message.media
        if minimal or media is None:
            return []  # minimal is words, buttons and status; media stay in structured content
        where = media.url or f"inline {media.media_type or 'data'}, {media.size_bytes} bytes"
        return [f"Agent [{message.kind}]: {where}"]
    if message.kind == "handoff":
        return [f"Agent [handoff]: {message.text}"]
    return [f"Agent: {message.text}"]


def _choices_line(turn: TurnResult) -> str:
    return "Choices: " + choices_text([(c.number, c.label) for c in turn.choices])


def choices_text(choices: Sequence[tuple[int, str]]) -> str:
    """`1) Yes 2) No`: the numbers set the buttons apart, so one space between is enough (every
    byte here is read by the model on every turn)."""
    return " ".join(f"{number}) {label}" for number, label in choices)


def _custom_action_line(name: str, payload: Any, result_types: list[str]) -> str:
    resume = ", ".join(result_types) or "any type"
    # The payload is what the host must act on: longer than other values, still bounded.
    return f"Custom action: {name} {_compact(payload, 240)} (resume with: {resume})"


def _detail_lines(turn: TurnResult) -> list[str]:
    lines = []
    if turn.variables_changed:
        lines.append(f"Variables: {describe_changes(turn.variables_changed)}")
    if turn.unknown_traces:
        counts = ", ".join(f"{k} x{v}" for k, v in turn.unknown_traces.items())
        lines.append(f"Not shown: {counts}")
    return lines


def _status_line(turn: TurnResult, *, minimal: bool, show_user_id: bool) -> str:
    status: str = turn.status
    if turn.status == "awaiting_user" and turn.no_reply_timeout is not None and not minimal:
        status = f"awaiting_user (no-reply {turn.no_reply_timeout:g} s)"
    elif turn.status == "handoff" and turn.handoff:
        status = f"handoff to {turn.handoff}"
    elif turn.status == "error" and turn.error:
        status = f"error: {turn.error}"
    who = f" · new user_id {turn.user_id}" if show_user_id else ""
    return f"Status: {status}{who}"


def describe_changes(changes: Sequence[VariableChange]) -> str:
    """`name: before -> after, ...`, values cut short, the runtime's default shown as unset."""
    return ", ".join(describe_change(c.name, c.before, c.after) for c in changes)


def describe_change(name: str, before: Any, after: Any) -> str:
    """`name: unset -> 5`, as every text (summary, transcript, report, judge) says a change.
    The arrow is ASCII: one byte less than `→` in each change the model reads."""
    return f"{name}: {_before(before)} -> {_compact(after, 30)}"


def _before(value: Any) -> str:
    # The runtime's `0` for a declared variable means "never set"; say so rather than "0".
    return "unset" if is_unset(value) else _compact(value, 30)


def _compact(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(lines: list[tuple[str, bool]], max_chars: int) -> str:
    """Every line when they fit; else the essential lines (cut short if need be) and as many of
    the others, in order, as the budget allows, with a note where the first was left out."""
    whole = "\n".join(line for line, _ in lines)
    if len(whole) <= max_chars:
        return whole
    limit = max(60, min(300, max_chars // 8))
    essential_chars = sum(min(len(line), limit) + 1 for line, essential in lines if essential)
    room = max_chars - essential_chars - _NOTE_RESERVE
    kept: list[str] = []
    left_out = 0
    note_at: int | None = None
    for line, essential in lines:
        if essential:
            kept.append(_cut(line, limit))
            continue
        if note_at is None and len(line) + 1 <= room:
            kept.append(line)
            room -= len(line) + 1
            continue
        if note_at is None:
            note_at = len(kept)
            if room > 80:  # the start of a long message beats none of it
                kept.append(_cut(line, room - 1))
                note_at += 1
                left_out += len(line) - (room - 1)
                continue
        left_out += len(line) + 1
    note = (
        f"[… {left_out} characters left out to stay within {max_chars}; "
        "the structured content has the whole turn]"
    )
    kept.insert(note_at if note_at is not None else len(kept), note)
    return "\n".join(kept)[:max_chars]


def _cut(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"
