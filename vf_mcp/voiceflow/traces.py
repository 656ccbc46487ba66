"""Trace models: what the agent sends back in a turn.

A discriminated union of the documented types plus `UnknownTrace`, which keeps unknown types and
custom-action traces intact. Payload models are lenient (every field optional, extras kept) and a
trace whose payload does not fit its documented model falls back to `UnknownTrace` rather than
failing the turn: nothing the runtime sends is ever dropped.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PrivateAttr, Tag, TypeAdapter, ValidationError

from vf_mcp.errors import ResponseError
from vf_mcp.redaction import mask_across
from vf_mcp.voiceflow.actions import WireModel


class TracePath(WireModel):
    """One exit of a custom action: the result `event.type` that resumes the flow down it."""

    label: str | None = None
    event: dict[str, Any] = Field(default_factory=dict)


class BaseTrace(WireModel):
    # Envelope fields stay as sent (`Any`): a trace is never rejected for its envelope, and the
    # typed views below read them defensively.
    type: str
    payload: Any = None
    time: Any = None
    paths: Any = None
    default_path: Any = Field(default=None, alias="defaultPath")
    # The object exactly as the runtime sent it (its values, its key order): a model re-dumped
    # would turn `"delay": 1000` into `1000.0` and reorder keys.
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, **super().to_wire()}

    @property
    def raw(self) -> dict[str, Any]:
        """The trace as received from the runtime (or, for a trace built in code, its wire form)."""
        return self._raw if self._raw is not None else self.to_wire()

    @property
    def ref(self) -> dict[str, Any] | None:
        """The `ref` the runtime attaches to a payload: the flow, block or tool it came from."""
        payload = self.payload
        found = payload.get("ref") if isinstance(payload, dict) else getattr(payload, "ref", None)
        return found if isinstance(found, dict) else None

    @property
    def relayed_message(self) -> str | None:
        """`payload.message` when it is a string, whatever the trace's type: what voiceflow-cli
        relays and validates. Read from the JSON as sent, as voiceflow-cli reads it (a typed
        payload would give a text trace without one an empty message)."""
        payload = self.raw.get("payload")
        value = payload.get("message") if isinstance(payload, dict) else None
        return value if isinstance(value, str) else None

    @property
    def action_paths(self) -> list[TracePath] | None:
        """A custom action's exits, or None when the trace has no (well-formed) `paths`."""
        if self.paths is None:
            return None
        try:
            return _paths_adapter().validate_python(self.paths)
        except ValidationError:
            return None


class Button(WireModel):
    name: str = ""
    request: dict[str, Any] = Field(default_factory=dict)


class LegacyChoice(WireModel):
    name: str = ""
    intent: str | None = None


class Description(WireModel):
    text: str = ""


# -- conversation content -------------------------------------------------------------------------


class TextPayload(WireModel):
    message: str = ""
    delay: float | None = None
    ai: bool | None = None
    message_id: str | None = Field(default=None, alias="messageID")


class TextTrace(BaseTrace):
    type: Literal["text"] = "text"
    payload: TextPayload = Field(default_factory=TextPayload)


class SpeakPayload(WireModel):
    message: str = ""
    type: str | None = None
    src: str | None = None
    voice: str | None = None


class SpeakTrace(BaseTrace):
    type: Literal["speak"] = "speak"
    payload: SpeakPayload = Field(default_factory=SpeakPayload)


class VisualPayload(WireModel):
    visual_type: str | None = Field(default=None, alias="visualType")
    image: str | None = None
    image_url: str | None = Field(default=None, alias="imageURL")


class VisualTrace(BaseTrace):
    type: Literal["visual"] = "visual"
    payload: VisualPayload = Field(default_factory=VisualPayload)


class ChoicePayload(WireModel):
    buttons: list[Button] = Field(default_factory=list)
    choices: list[LegacyChoice] | None = None


class ChoiceTrace(BaseTrace):
    type: Literal["choice"] = "choice"
    payload: ChoicePayload = Field(default_factory=ChoicePayload)


class CardPayload(WireModel):
    id: str | None = None
    title: str = ""
    description: Description | str | None = None
    image_url: str | None = Field(default=None, alias="imageUrl")
    buttons: list[Button] = Field(default_factory=list)


class CardV2Trace(BaseTrace):
    type: Literal["cardV2"] = "cardV2"
    payload: CardPayload = Field(default_factory=CardPayload)


class CarouselPayload(WireModel):
    layout: str | None = None
    cards: list[CardPayload] = Field(default_factory=list)


class CarouselTrace(BaseTrace):
    type: Literal["carousel"] = "carousel"
    payload: CarouselPayload = Field(default_factory=CarouselPayload)


class CompletionPayload(WireModel):
    state: Literal["start", "content", "end"] | str = "content"
    content: str | None = None
    message_id: str | None = Field(default=None, alias="messageID")


class CompletionTrace(BaseTrace):
    """A piece of a streamed LLM answer (`completion_events=true`)."""

    type: Literal["completion"] = "completion"
    payload: CompletionPayload = Field(default_factory=CompletionPayload)


class AudioPayload(WireModel):
    state: str | None = None
    content: str | None = None
    encoding: str | None = None
    duration: float | None = None


class AudioTrace(BaseTrace):
    type: Literal["audio"] = "audio"
    payload: AudioPayload = Field(default_factory=AudioPayload)


class ReasoningPayload(WireModel):
    state: str | None = None
    content: str | None = None
    message: str | None = None


class ReasoningTrace(BaseTrace):
    type: Literal["reasoning"] = "reasoning"
    payload: ReasoningPayload = Field(default_factory=ReasoningPayload)


class StreamPayload(WireModel):
    src: str | None = None
    token: str | None = None
    action: str | None = None
    title: str | None = None


class StreamTrace(BaseTrace):
    """Audio stream control for voice channels (not the SSE stream)."""

    type: Literal["stream"] = "stream"
    payload: StreamPayload = Field(default_factory=StreamPayload)


# -- conversation control -------------------------------------------------------------------------


class EndTrace(BaseTrace):
    """The conversation finished; the next turn starts over."""

    type: Literal["end"] = "end"


class NoReplyPayload(WireModel):
    timeout: float | None = None


class NoReplyTrace(BaseTrace):
    type: Literal["no-reply"] = "no-reply"
    payload: NoReplyPayload = Field(default_factory=NoReplyPayload)


class PathPayload(WireModel):
    path: str | None = None


class PathTrace(BaseTrace):
    type: Literal["path"] = "path"
    payload: PathPayload = Field(default_factory=PathPayload)


class FlowPayload(WireModel):
    diagram_id: str | None = Field(default=None, alias="diagramID")
    name: str | None = None


class FlowTrace(BaseTrace):
    type: Literal["flow"] = "flow"
    payload: FlowPayload = Field(default_factory=FlowPayload)


class BlockPayload(WireModel):
    block_id: str | None = Field(default=None, alias="blockID")


class BlockTrace(BaseTrace):
    type: Literal["block"] = "block"
    payload: BlockPayload = Field(default_factory=BlockPayload)


class DebugPayload(WireModel):
    message: str = ""
    type: str | None = None
    level: str | None = None


class DebugTrace(BaseTrace):
    type: Literal["debug"] = "debug"
    payload: DebugPayload = Field(default_factory=DebugPayload)


class GotoPayload(WireModel):
    request: dict[str, Any] | None = None


class GotoTrace(BaseTrace):
    type: Literal["goto"] = "goto"
    payload: GotoPayload = Field(default_factory=GotoPayload)


class EntityFillingPayload(WireModel):
    entity_to_fill: str | None = Field(default=None, alias="entityToFill")
    intent: dict[str, Any] | None = None


class EntityFillingTrace(BaseTrace):
    type: Literal["entity-filling"] = "entity-filling"
    payload: EntityFillingPayload = Field(default_factory=EntityFillingPayload)


class ChannelActionPayload(WireModel):
    name: str | None = None
    payload: Any = None


class ChannelActionTrace(BaseTrace):
    type: Literal["channel-action"] = "channel-action"
    payload: ChannelActionPayload = Field(default_factory=ChannelActionPayload)


class KnowledgeBasePayload(WireModel):
    # Each chunk is read on its own (`vf_mcp.evaluation.grounding`): one odd chunk must not cost
    # the trace its others.
    chunks: list[Any] | None = None
    query: Any = None
    faq_question: str | None = Field(default=None, alias="faqQuestion")
    faq_answer: str | None = Field(default=None, alias="faqAnswer")


class KnowledgeBaseTrace(BaseTrace):
    type: Literal["knowledgeBase"] = "knowledgeBase"
    payload: KnowledgeBasePayload = Field(default_factory=KnowledgeBasePayload)


class LogTrace(BaseTrace):
    type: Literal["log"] = "log"


class ToolCallPayload(WireModel):
    state: str | None = None
    call_id: str | None = Field(default=None, alias="callID")


class ToolCallTrace(BaseTrace):
    type: Literal["tool-call"] = "tool-call"
    payload: ToolCallPayload = Field(default_factory=ToolCallPayload)


class CallForwardPayload(WireModel):
    address_type: str | None = Field(default=None, alias="addressType")
    address: str | None = None
    extension: str | None = None


class CallForwardTrace(BaseTrace):
    type: Literal["call-forward"] = "call-forward"
    payload: CallForwardPayload = Field(default_factory=CallForwardPayload)


class DtmfPayload(WireModel):
    enabled: bool | None = None
    timeout_in_seconds: float | None = Field(default=None, alias="timeoutInSeconds")
    delimiter: list[str] | None = None
    max_digits: int | None = Field(default=None, alias="maxDigits")


class DtmfTrace(BaseTrace):
    type: Literal["dtmf"] = "dtmf"
    payload: DtmfPayload = Field(default_factory=DtmfPayload)


class LiveAgentHandoffTracePayload(WireModel):
    conversation_id: str | None = Field(default=None, alias="conversationID")
    message: str | None = None
    event: str | None = None
    agent: dict[str, Any] | None = None
    provider: str | None = None


class LiveAgentHandoffTrace(BaseTrace):
    type: Literal["live-agent-handoff"] = "live-agent-handoff"
    payload: LiveAgentHandoffTracePayload = Field(default_factory=LiveAgentHandoffTracePayload)


class RealtimeAgentPayload(WireModel):
    action: str | None = None


class RealtimeAgentTrace(BaseTrace):
    type: Literal["realtime-agent"] = "realtime-agent"
    payload: RealtimeAgentPayload = Field(default_factory=RealtimeAgentPayload)


class UnknownTrace(BaseTrace):
    """A custom action trace, a type we have never seen, or a documented one of unexpected shape."""


_TRACE_MODELS: tuple[type[BaseTrace], ...] = (
    TextTrace,
    SpeakTrace,
    VisualTrace,
    ChoiceTrace,
    CardV2Trace,
    CarouselTrace,
    CompletionTrace,
    AudioTrace,
    ReasoningTrace,
    StreamTrace,
    EndTrace,
    NoReplyTrace,
    PathTrace,
    FlowTrace,
    BlockTrace,
    DebugTrace,
    GotoTrace,
    EntityFillingTrace,
    ChannelActionTrace,
    KnowledgeBaseTrace,
    LogTrace,
    ToolCallTrace,
    CallForwardTrace,
    DtmfTrace,
    LiveAgentHandoffTrace,
    RealtimeAgentTrace,
)
DOCUMENTED_TRACE_TYPES: frozenset[str] = frozenset(
    m.model_fields["type"].default for m in _TRACE_MODELS
)


def _trace_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in DOCUMENTED_TRACE_TYPES else "unknown"


Trace = Annotated[
    Annotated[TextTrace, Tag("text")]
    | Annotated[SpeakTrace, Tag("speak")]
    | Annotated[VisualTrace, Tag("visual")]
    | Annotated[ChoiceTrace, Tag("choice")]
    | Annotated[CardV2Trace, Tag("cardV2")]
    | Annotated[CarouselTrace, Tag("carousel")]
    | Annotated[CompletionTrace, Tag("completion")]
    | Annotated[AudioTrace, Tag("audio")]
    | Annotated[ReasoningTrace, Tag("reasoning")]
    | Annotated[StreamTrace, Tag("stream")]
    | Annotated[EndTrace, Tag("end")]
    | Annotated[NoReplyTrace, Tag("no-reply")]
    | Annotated[PathTrace, Tag("path")]
    | Annotated[FlowTrace, Tag("flow")]
    | Annotated[BlockTrace, Tag("block")]
    | Annotated[DebugTrace, Tag("debug")]
    | Annotated[GotoTrace, Tag("goto")]
    | Annotated[EntityFillingTrace, Tag("entity-filling")]
    | Annotated[ChannelActionTrace, Tag("channel-action")]
    | Annotated[KnowledgeBaseTrace, Tag("knowledgeBase")]
    | Annotated[LogTrace, Tag("log")]
    | Annotated[ToolCallTrace, Tag("tool-call")]
    | Annotated[CallForwardTrace, Tag("call-forward")]
    | Annotated[DtmfTrace, Tag("dtmf")]
    | Annotated[LiveAgentHandoffTrace, Tag("live-agent-handoff")]
    | Annotated[RealtimeAgentTrace, Tag("realtime-agent")]
    | Annotated[UnknownTrace, Tag("unknown")],
    Discriminator(_trace_tag),
]
"""Any trace, parsed into its most specific model."""


@functools.cache
def _trace_adapter() -> TypeAdapter[Trace]:
    # Built on first use: 27 models' validators are not needed to start serving.
    return TypeAdapter(Trace)


@functools.cache
def _paths_adapter() -> TypeAdapter[list[TracePath]]:
    return TypeAdapter(list[TracePath])


def parse_trace(raw: Any) -> BaseTrace:
    """Parse one trace object; a documented type with an unexpected payload is kept as unknown.

    Raises `ResponseError` only when `raw` is not a trace at all (no object with a string `type`).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ResponseError(
            f"The runtime sent something that is not a trace ({str(raw)[:80]!r}); expected an "
            "object with a string `type`"
        )
    trace: BaseTrace
    try:
        trace = _trace_adapter().validate_python(raw)
    except ValidationError:
        trace = UnknownTrace.model_validate(raw)
    trace._raw = raw
    return trace


def parse_traces(raw: Any) -> list[BaseTrace]:
    if not isinstance(raw, list):
        raise ResponseError(f"The runtime sent {type(raw).__name__} where a list of traces belongs")
    return [parse_trace(item) for item in raw]


def mask_split_credentials(traces: list[BaseTrace]) -> list[BaseTrace]:
    """`traces` with every credential cut across the pieces of a streamed answer masked.

    Each piece was masked on its own as it was read (`vf_mcp.voiceflow.client`), which a
    credential cut in two passes; the summary masks the joined answer, but the debug traces,
    transcripts and recordings keep the pieces. Pieces are joined per answer (from one `start`
    to the next), for the answer (`completion`) and the reasoning shown before it (`reasoning`),
    which streams in pieces the same way."""
    masked = list(traces)
    for kind in (CompletionTrace, ReasoningTrace):
        for answer in _streamed_answers(traces, kind):
            contents = [_content(piece) for _, piece in answer]
            for (index, piece), before, after in zip(
                answer, contents, mask_across(contents), strict=True
            ):
                if after != before:
                    raw = piece.raw
                    masked[index] = parse_trace(
                        {**raw, "payload": {**raw["payload"], "content": after}}
                    )
    return masked


def _content(piece: BaseTrace) -> str:
    assert isinstance(piece, CompletionTrace | ReasoningTrace)
    return piece.payload.content or ""


def _streamed_answers(
    traces: list[BaseTrace], kind: type[CompletionTrace] | type[ReasoningTrace]
) -> list[list[tuple[int, BaseTrace]]]:
    """The `content` pieces of each streamed answer of `kind`, with their places in `traces`."""
    answers: list[list[tuple[int, BaseTrace]]] = []
    for index, trace in enumerate(traces):
        if not isinstance(trace, kind):
            continue
        if trace.payload.state == "start" or not answers:
            answers.append([])
        if trace.payload.content:
            answers[-1].append((index, trace))
    return answers
