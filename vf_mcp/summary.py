"""Turn a turn's traces into what an LLM needs to decide the next turn.

`summarize_turn` builds the structured `TurnResult` (the MCP structured content) and
`render_turn` its short, deterministic text (the MCP text content). Neither knows about MCP.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from vf_mcp.voiceflow.traces import (
    AudioTrace,
    BaseTrace,
    CallForwardTrace,
    CardPayload,
    CardV2Trace,
    CarouselTrace,
    ChoiceTrace,
    CompletionTrace,
    DebugTrace,
    EndTrace,
    LiveAgentHandoffTrace,
    NoReplyTrace,
    SpeakTrace,
    TextTrace,
    UnknownTrace,
    VisualTrace,
)

TurnStatus = Literal["awaiting_user", "awaiting_action", "ended", "handoff", "error"]
Verbosity = Literal["minimal", "standard", "debug"]

# Bookkeeping variables the runtime rewrites on every turn; a diff full of them hides the
# variables the agent designer actually set.
RUNTIME_VARIABLES = frozenset(
    {"timestamp", "sessions", "last_response", "last_utterance", "intent_confidence",
     "user_id", "platform", "locale", "session_id", "vf_memory", "vf_user_timezone"}
)  # fmt: skip

CREDITS_EXHAUSTED = (
    "The agent's Voiceflow workspace is out of AI credits (credit_limit_reached), so the agent "
    "could not answer; add credits or upgrade the plan in Voiceflow, then send the turn again"
)

# Traces that carry no content for the reader; counted, never rendered.
_QUIET_TYPES = frozenset({"path", "flow", "block", "goto", "log", "tool-call", "reasoning"})
_SSML_TAG = re.compile(r"<[^<>]+>")
_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<b64>;base64)?,", re.IGNORECASE)


class Choice(BaseModel):
    """A button the agent offered; `interact(choice=...)` sends its `request`."""

    number: int = Field(description="1-based position, usable as `choice`")
    label: str
    request: dict[str, Any] = Field(description="The action that pressing it sends")


class Media(BaseModel):
    """Audio, images and data URIs are described, never inlined."""

    kind: Literal["audio", "image", "data"]
    url: str | None = Field(default=None, description="Link, or None for inline data")
    media_type: str | None = None
    size_bytes: int | None = Field(default=None, description="Size of inline data")


class Card(BaseModel):
    title: str = ""
    description: str = ""
    image_url: str | None = None
    buttons: list[str] = Field(default_factory=list)


class AgentMessage(BaseModel):
    """One thing the agent showed or said, in order."""

    kind: Literal["text", "card", "carousel", "image", "audio", "handoff", "notice"]
    text: str = ""
    cards: list[Card] = Field(default_factory=list)
    media: Media | None = None


class CustomAction(BaseModel):
    """A custom action the agent asked the client to perform."""

    name: str
    payload: Any = None
    result_types: list[str] = Field(
        default_factory=list,
        description="Action types that resume the flow, e.g. send {'type': 'done'}",
    )


class VariableChange(BaseModel):
    name: str
    before: Any = None
    after: Any = None


class TurnResult(BaseModel):
    """What happened in one turn with the agent."""

    user_id: str = Field(description="Conversation handle: pass it to the next call")
    status: TurnStatus = Field(
        description="awaiting_user | awaiting_action | ended | handoff | error"
    )
    messages: list[AgentMessage] = Field(default_factory=list)
    choices: list[Choice] = Field(default_factory=list)
    custom_actions: list[CustomAction] = Field(default_factory=list)
    variables_changed: list[VariableChange] | None = Field(
        default=None, description="None when the state after the turn is unknown"
    )
    no_reply_timeout: float | None = Field(
        default=None, description="Seconds after which to send a no-reply action"
    )
    error: str | None = None
    handoff: str | None = Field(default=None, description="Who or what the conversation went to")
    trace_count: int = 0
    unknown_traces: dict[str, int] = Field(
        default_factory=dict, description="Trace types we do not render, with counts"
    )
    latency_ms: float = 0.0
    warnings: list[str] = Field(
        default_factory=list, description="Problems after the turn ran; the turn itself stands"
    )
    traces: list[dict[str, Any]] | None = Field(
        default=None, description="The raw traces (verbosity=debug only)"
    )


def strip_ssml(text: str) -> str:
    """Plain text of an SSML or lightly marked-up message, whitespace collapsed."""
    return " ".join(html.unescape(_SSML_TAG.sub(" ", text)).split())


def describe_media(src: str, kind: Literal["audio", "image"]) -> Media:
    match = _DATA_URI.match(src)
    if match is None:
        return Media(kind=kind, url=src)
    body = src[match.end() :]
    size = len(body) * 3 // 4 - body.count("=") if match.group("b64") else len(body)
    return Media(kind="data", media_type=match.group("type") or None, size_bytes=max(size, 0))


def _card(payload: CardPayload) -> Card:
    description = payload.description
    text = (
        description if isinstance(description, str) else (description.text if description else "")
    )
    return Card(
        title=strip_ssml(payload.title),
        description=strip_ssml(text),
        image_url=payload.image_url,
        buttons=[b.name for b in payload.buttons],
    )


def _legacy_request(name: str, intent: str | None) -> dict[str, Any]:
    if intent:
        return {
            "type": "intent",
            "payload": {"intent": {"name": intent}, "query": name, "entities": []},
        }
    return {"type": "text", "payload": name}


def summarize_turn(
    user_id: str,
    traces: Sequence[BaseTrace],
    *,
    variables_before: Mapping[str, Any] | None,
    variables_after: Mapping[str, Any] | None,
    latency_ms: float,
    handoff_actions: Iterable[str],
    verbosity: Verbosity = "standard",
) -> TurnResult:
    """Reduce one turn's traces to a `TurnResult`. Deterministic: same input, same output."""
    handoff_names = frozenset(handoff_actions)
    messages: list[AgentMessage] = []
    choices: list[Choice] = []
    custom_actions: list[CustomAction] = []
    unknown: Counter[str] = Counter()
    ended = False
    handoff: str | None = None
    error: str | None = None
    no_reply: float | None = None
    waiting_action = False
    completion: list[str] | None = None
    audio_bytes: int | None = None
    audio_encoding: str | None = None

    def offer(buttons: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for label, request in buttons:
            choices.append(Choice(number=len(choices) + 1, label=label, request=request))

    for trace in traces:
        # A custom action waits only if nothing but bookkeeping follows it in the turn.
        if trace.type not in _QUIET_TYPES and trace.type != "debug":
            waiting_action = False
        if isinstance(trace, TextTrace):
            if text := strip_ssml(trace.payload.message):
                messages.append(AgentMessage(kind="text", text=text))
        elif isinstance(trace, SpeakTrace):
            if text := strip_ssml(trace.payload.message):
                messages.append(AgentMessage(kind="text", text=text))
            if trace.payload.src:
                messages.append(
                    AgentMessage(kind="audio", media=describe_media(trace.payload.src, "audio"))
                )
        elif isinstance(trace, VisualTrace):
            url = trace.payload.image or trace.payload.image_url
            if url:
                messages.append(AgentMessage(kind="image", media=describe_media(url, "image")))
            else:
                unknown[trace.type] += 1
        elif isinstance(trace, ChoiceTrace):
            offer((b.name, b.request) for b in trace.payload.buttons)
            offer((c.name, _legacy_request(c.name, c.intent)) for c in trace.payload.choices or [])
        elif isinstance(trace, CardV2Trace):
            messages.append(AgentMessage(kind="card", cards=[_card(trace.payload)]))
            offer((b.name, b.request) for b in trace.payload.buttons)
        elif isinstance(trace, CarouselTrace):
            cards = [_card(c) for c in trace.payload.cards]
            messages.append(AgentMessage(kind="carousel", cards=cards))
            for card in trace.payload.cards:
                offer((b.name, b.request) for b in card.buttons)
        elif isinstance(trace, CompletionTrace):
            state = trace.payload.state
            if state == "start":
                completion = []
            elif state == "content":
                completion = (completion or []) + [trace.payload.content or ""]
            elif state == "end":
                if text := strip_ssml("".join(completion or [])):
                    messages.append(AgentMessage(kind="text", text=text))
                completion = None
        elif isinstance(trace, AudioTrace):
            state = trace.payload.state
            if state == "start":
                audio_bytes, audio_encoding = 0, None
            elif state == "content":
                chunk = trace.payload.content or ""
                audio_bytes = (audio_bytes or 0) + len(chunk) * 3 // 4 - chunk.count("=")
                audio_encoding = trace.payload.encoding or audio_encoding
            elif state == "end":
                media = Media(kind="audio", media_type=audio_encoding, size_bytes=audio_bytes or 0)
                messages.append(AgentMessage(kind="audio", media=media))
                audio_bytes = None
        elif isinstance(trace, EndTrace):
            ended = True
        elif isinstance(trace, NoReplyTrace):
            no_reply = trace.payload.timeout
        elif isinstance(trace, DebugTrace):
            message = trace.payload.message
            if "credit_limit_reached" in message:
                error = error or CREDITS_EXHAUSTED
            elif trace.payload.level in ("error", "fatal"):
                error = error or (message or "the runtime reported an error")
            else:
                unknown[trace.type] += 1
        elif isinstance(trace, LiveAgentHandoffTrace):
            payload = trace.payload
            who = payload.provider or "a live agent"
            handoff = handoff or f"live agent ({who})"
            text = strip_ssml(payload.message or "") or f"Handing off to {who}"
            messages.append(AgentMessage(kind="handoff", text=text))
        elif isinstance(trace, CallForwardTrace):
            address = trace.payload.address or "an unknown address"
            handoff = handoff or f"call forwarded to {address}"
            messages.append(AgentMessage(kind="handoff", text=f"Call forwarded to {address}"))
        elif isinstance(trace, UnknownTrace) and (paths := trace.action_paths) is not None:
            result_types = [
                str(p.event.get("type")) for p in paths if isinstance(p.event.get("type"), str)
            ]
            custom_actions.append(
                CustomAction(name=trace.type, payload=trace.payload, result_types=result_types)
            )
            if trace.type in handoff_names:
                handoff = handoff or f"custom action {trace.type}"
            waiting_action = True
        else:
            unknown[trace.type] += 1

    # A completion cut short (no `end`) is still what the agent said so far.
    if completion and (text := strip_ssml("".join(completion))):
        messages.append(AgentMessage(kind="text", text=text))

    status: TurnStatus
    if error is not None:
        status = "error"
    elif handoff is not None:
        status = "handoff"
    elif ended:
        status = "ended"
    elif waiting_action:
        status = "awaiting_action"
    else:
        status = "awaiting_user"

    return TurnResult(
        user_id=user_id,
        status=status,
        messages=messages,
        choices=choices,
        custom_actions=custom_actions,
        variables_changed=diff_variables(variables_before, variables_after),
        no_reply_timeout=no_reply,
        error=error,
        handoff=handoff,
        trace_count=len(traces),
        unknown_traces=dict(sorted(unknown.items())),
        latency_ms=round(latency_ms, 1),
        traces=[t.to_wire() for t in traces] if verbosity == "debug" else None,
    )


def diff_variables(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[VariableChange] | None:
    """Changed user variables, sorted by name; None when the state after the turn is unknown."""
    if after is None:
        return None
    before = before or {}
    changes = []
    for name in sorted(set(before) | set(after)):
        if name in RUNTIME_VARIABLES:
            continue
        old, new = before.get(name), after.get(name)
        # A variable declared but never set (null) is no change from one that is absent.
        if old != new:
            changes.append(VariableChange(name=name, before=old, after=new))
    return changes


def _compact(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_turn(turn: TurnResult, verbosity: Verbosity = "standard") -> str:
    """The text a model reads: messages, choices, then one status line."""
    lines: list[str] = []
    for message in turn.messages:
        if message.kind == "text":
            lines.append(f"Agent: {message.text}")
        elif message.kind in ("card", "carousel"):
            for card in message.cards:
                parts = [card.title or "(untitled)"]
                if card.description:
                    parts.append(card.description)
                if card.image_url and verbosity != "minimal":
                    parts.append(f"image {card.image_url}")
                lines.append(f"Agent [card]: {' — '.join(parts)}")
        elif message.kind in ("image", "audio") and verbosity == "minimal":
            continue  # minimal is words, buttons and status; media stay in structured content
        elif message.kind in ("image", "audio") and message.media is not None:
            media = message.media
            where = media.url or f"inline {media.media_type or 'data'}, {media.size_bytes} bytes"
            lines.append(f"Agent [{message.kind}]: {where}")
        elif message.kind == "handoff":
            lines.append(f"Agent [handoff]: {message.text}")
        else:
            lines.append(f"Agent: {message.text}")
    if turn.choices:
        lines.append("Choices: " + "  ".join(f"{c.number}) {c.label}" for c in turn.choices))
    if verbosity != "minimal":
        for action in turn.custom_actions:
            resume = ", ".join(action.result_types) or "any type"
            lines.append(
                f"Custom action: {action.name} {_compact(action.payload)} (resume with: {resume})"
            )
        if turn.variables_changed:
            changes = ", ".join(
                f"{c.name}: {_compact(c.before, 30)} → {_compact(c.after, 30)}"
                for c in turn.variables_changed
            )
            lines.append(f"Variables: {changes}")
        if turn.unknown_traces:
            counts = ", ".join(f"{k} x{v}" for k, v in turn.unknown_traces.items())
            lines.append(f"Not shown: {counts}")
    status = turn.status
    if turn.status == "awaiting_user" and turn.no_reply_timeout is not None:
        status = f"awaiting_user (no-reply after {turn.no_reply_timeout:g} s)"
    elif turn.status == "handoff" and turn.handoff:
        status = f"handoff to {turn.handoff}"
    elif turn.status == "error" and turn.error:
        status = f"error: {turn.error}"
    lines.extend(f"Warning: {warning}" for warning in turn.warnings)
    lines.append(f"Status: {status} · user_id {turn.user_id} · {turn.latency_ms:.0f} ms")
    return "\n".join(lines)
