"""One handler per trace type: how each thing the runtime sends shows up in a turn's summary.

A handler reads one trace and records what it means in a `TurnDraft`. Adding a trace type is
adding a handler (and its test); `handle` dispatches on the trace's model, so a type with no
handler is either quiet bookkeeping (counted, never shown) or genuinely unknown (counted and
named in the summary, kept whole in the structured content).
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from vf_mcp.domain.turn import AgentMessage, Card, Choice, CustomAction, Media
from vf_mcp.redaction import mask_secrets
from vf_mcp.voiceflow.traces import (
    AudioTrace,
    BaseTrace,
    BlockTrace,
    CallForwardTrace,
    CardPayload,
    CardV2Trace,
    CarouselTrace,
    ChoiceTrace,
    CompletionTrace,
    DebugTrace,
    EndTrace,
    EntityFillingTrace,
    FlowTrace,
    GotoTrace,
    KnowledgeBaseTrace,
    LiveAgentHandoffTrace,
    LogTrace,
    NoReplyTrace,
    PathTrace,
    ReasoningTrace,
    SpeakTrace,
    TextTrace,
    ToolCallTrace,
    UnknownTrace,
    VisualTrace,
)

CREDITS_EXHAUSTED = (
    "The agent's Voiceflow workspace is out of AI credits (credit_limit_reached), so the agent "
    "could not answer; add credits or upgrade the plan in Voiceflow, then send the turn again"
)

QUIET_TRACES: tuple[type[BaseTrace], ...] = (
    PathTrace,
    FlowTrace,
    BlockTrace,
    GotoTrace,
    LogTrace,
    ToolCallTrace,
    ReasoningTrace,
    EntityFillingTrace,
    KnowledgeBaseTrace,
)
"""The runtime's bookkeeping: which path a turn took, which flow and block it passed, what it
retrieved or was about to ask. Counted in `trace_count`, never shown or reported as unknown."""

_SSML_TAG = re.compile(r"<[^<>]+>")
_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<b64>;base64)?,", re.IGNORECASE)


@dataclass
class TurnDraft:
    """What the traces of one turn said so far, in the order they came."""

    handoff_actions: frozenset[str]
    messages: list[AgentMessage] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    custom_actions: list[CustomAction] = field(default_factory=list)
    unknown: Counter[str] = field(default_factory=Counter)
    ended: bool = False
    handoff: str | None = None
    error: str | None = None
    no_reply: float | None = None
    waiting_action: bool = False
    completion: list[str] | None = None
    audio_bytes: int | None = None
    audio_encoding: str | None = None

    def say(self, text: str) -> None:
        if text := strip_ssml(text):
            self.messages.append(AgentMessage(kind="text", text=text))

    def offer(self, buttons: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for label, request in buttons:
            self.choices.append(Choice(number=len(self.choices) + 1, label=label, request=request))

    def fail(self, message: str) -> None:
        # The first error is the cause; later ones are usually its consequences.
        self.error = self.error or message

    def hand_off(self, to: str) -> None:
        self.handoff = self.handoff or to

    def finish(self) -> None:
        """A completion cut short (no `end`) is still what the agent said so far."""
        if self.completion:
            # Each streamed chunk was masked as it was read, but a credential the model split
            # across chunks is whole only here.
            self.say(mask_secrets("".join(self.completion)))
            self.completion = None


Handler = Callable[[TurnDraft, Any], None]
_T = TypeVar("_T", bound=BaseTrace)
HANDLERS: dict[type[BaseTrace], Handler] = {}


def handles(kind: type[_T]) -> Callable[[Callable[[TurnDraft, _T], None]], Handler]:
    def register(handler: Callable[[TurnDraft, _T], None]) -> Handler:
        HANDLERS[kind] = handler
        return handler

    return register


def handle(draft: TurnDraft, trace: BaseTrace) -> None:
    """Record one trace in the draft, in turn order."""
    quiet = isinstance(trace, QUIET_TRACES) or _is_quiet_debug(trace)
    if not quiet:
        # A custom action waits only if nothing but bookkeeping follows it in the turn.
        draft.waiting_action = False
    handler = HANDLERS.get(type(trace))
    if handler is not None:
        handler(draft, trace)
    elif isinstance(trace, UnknownTrace) and trace.action_paths is not None:
        _custom_action(draft, trace)
    elif not quiet:
        draft.unknown[trace.type] += 1


def _is_quiet_debug(trace: BaseTrace) -> bool:
    return isinstance(trace, DebugTrace) and trace.payload.level not in ("error", "fatal")


# -- what the agent says and shows ----------------------------------------------------------------


@handles(TextTrace)
def _text(draft: TurnDraft, trace: TextTrace) -> None:
    draft.say(trace.payload.message)


@handles(SpeakTrace)
def _speak(draft: TurnDraft, trace: SpeakTrace) -> None:
    draft.say(trace.payload.message)
    if trace.payload.src:
        media = describe_media(trace.payload.src, "audio")
        draft.messages.append(AgentMessage(kind="audio", media=media))


@handles(VisualTrace)
def _visual(draft: TurnDraft, trace: VisualTrace) -> None:
    url = trace.payload.image or trace.payload.image_url
    if url:
        draft.messages.append(AgentMessage(kind="image", media=describe_media(url, "image")))
    else:
        draft.unknown[trace.type] += 1  # an APL document or another visual we cannot describe


@handles(ChoiceTrace)
def _choice(draft: TurnDraft, trace: ChoiceTrace) -> None:
    draft.offer((b.name, b.request) for b in trace.payload.buttons)
    draft.offer((c.name, _legacy_request(c.name, c.intent)) for c in trace.payload.choices or [])


@handles(CardV2Trace)
def _card_v2(draft: TurnDraft, trace: CardV2Trace) -> None:
    draft.messages.append(AgentMessage(kind="card", cards=[_card(trace.payload)]))
    draft.offer((b.name, b.request) for b in trace.payload.buttons)


@handles(CarouselTrace)
def _carousel(draft: TurnDraft, trace: CarouselTrace) -> None:
    cards = [_card(c) for c in trace.payload.cards]
    draft.messages.append(AgentMessage(kind="carousel", cards=cards))
    for card in trace.payload.cards:
        draft.offer((b.name, b.request) for b in card.buttons)


@handles(CompletionTrace)
def _completion(draft: TurnDraft, trace: CompletionTrace) -> None:
    state = trace.payload.state
    if state == "start":
        draft.completion = []
    elif state == "content":
        draft.completion = [*(draft.completion or []), trace.payload.content or ""]
    elif state == "end":
        draft.finish()


@handles(AudioTrace)
def _audio(draft: TurnDraft, trace: AudioTrace) -> None:
    state = trace.payload.state
    if state == "start":
        draft.audio_bytes, draft.audio_encoding = 0, None
    elif state == "content":
        chunk = trace.payload.content or ""
        draft.audio_bytes = (draft.audio_bytes or 0) + _base64_size(chunk)
        draft.audio_encoding = trace.payload.encoding or draft.audio_encoding
    elif state == "end":
        media = Media(kind="audio", media_type=draft.audio_encoding, size_bytes=draft.audio_bytes)
        draft.messages.append(AgentMessage(kind="audio", media=media))
        draft.audio_bytes = None


# -- how the conversation goes on -----------------------------------------------------------------


@handles(EndTrace)
def _end(draft: TurnDraft, trace: EndTrace) -> None:
    draft.ended = True


@handles(NoReplyTrace)
def _no_reply(draft: TurnDraft, trace: NoReplyTrace) -> None:
    draft.no_reply = trace.payload.timeout


@handles(DebugTrace)
def _debug(draft: TurnDraft, trace: DebugTrace) -> None:
    message = trace.payload.message
    if "credit_limit_reached" in message:
        draft.fail(CREDITS_EXHAUSTED)
    elif trace.payload.level in ("error", "fatal"):
        draft.fail(message or "the runtime reported an error")


@handles(LiveAgentHandoffTrace)
def _live_agent(draft: TurnDraft, trace: LiveAgentHandoffTrace) -> None:
    who = trace.payload.provider or "a live agent"
    draft.hand_off(f"live agent ({who})")
    text = strip_ssml(trace.payload.message or "") or f"Handing off to {who}"
    draft.messages.append(AgentMessage(kind="handoff", text=text))


@handles(CallForwardTrace)
def _call_forward(draft: TurnDraft, trace: CallForwardTrace) -> None:
    address = trace.payload.address or "an unknown address"
    draft.hand_off(f"call forwarded to {address}")
    draft.messages.append(AgentMessage(kind="handoff", text=f"Call forwarded to {address}"))


def _custom_action(draft: TurnDraft, trace: UnknownTrace) -> None:
    paths = trace.action_paths or []
    result_types = [str(p.event["type"]) for p in paths if isinstance(p.event.get("type"), str)]
    action = CustomAction(name=trace.type, payload=trace.payload, result_types=result_types)
    draft.custom_actions.append(action)
    if trace.type in draft.handoff_actions:
        draft.hand_off(f"custom action {trace.type}")
    draft.waiting_action = True


# -- helpers --------------------------------------------------------------------------------------


def strip_ssml(text: str) -> str:
    """Plain text of an SSML or lightly marked-up message, whitespace collapsed."""
    return " ".join(html.unescape(_SSML_TAG.sub(" ", text)).split())


def describe_media(src: str, kind: Literal["audio", "image"]) -> Media:
    match = _DATA_URI.match(src)
    if match is None:
        return Media(kind=kind, url=src)
    body = src[match.end() :]
    size = _base64_size(body) if match.group("b64") else len(body)
    return Media(kind="data", media_type=match.group("type") or None, size_bytes=max(size, 0))


def _base64_size(chunk: str) -> int:
    return len(chunk) * 3 // 4 - chunk.count("=")


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
