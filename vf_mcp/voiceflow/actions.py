"""Request ("action") models: what the user side of a turn sends to the runtime.

Every documented type has a model; `path-*` buttons, custom action results and types we have never
seen are kept by `GeneralAction`. Unknown fields pass through everywhere (`extra="allow"`), and
`to_wire` dumps only what was set, so a parsed action is sent back byte-for-byte equivalent.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter


class WireModel(BaseModel):
    """A model of a Voiceflow wire object: tolerant of extra fields, dumped as it was set."""

    # Built on first use, not at import: most of these models are not needed to start serving.
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class BaseAction(WireModel):
    """Fields every action may carry (RT-OAS `BaseRequest`)."""

    type: str
    payload: Any = None
    diagram_id: str | None = Field(default=None, alias="diagramID")
    time: int | float | None = None
    metadata: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        # `type` has a default on the typed models, so `exclude_unset` alone would drop it.
        return {"type": self.type, **super().to_wire()}


class LaunchPayload(WireModel):
    persona: str | None = None


class LaunchAction(BaseAction):
    """Start or restart the conversation."""

    type: Literal["launch"] = "launch"
    payload: LaunchPayload | None = None


class TextAction(BaseAction):
    """A user utterance, run through the agent's NLU."""

    type: Literal["text"] = "text"
    payload: str


class IntentName(WireModel):
    name: str


class Entity(WireModel):
    name: str
    value: str
    query: str | None = None


class IntentPayload(WireModel):
    intent: IntentName
    query: str = ""
    entities: list[Entity] = Field(default_factory=list)
    confidence: float | None = None
    label: str | None = None


class IntentAction(BaseAction):
    """An intent resolved by the caller's own NLU, skipping Voiceflow's."""

    type: Literal["intent"] = "intent"
    payload: IntentPayload


class EventName(WireModel):
    name: str


class EventPayload(WireModel):
    event: EventName
    label: str | None = None


class EventAction(BaseAction):
    """Trigger a custom event defined in the project."""

    type: Literal["event"] = "event"
    payload: EventPayload


class NoReplyAction(BaseAction):
    """Sent after a `no-reply` trace's timeout passes with no user input."""

    type: Literal["no-reply"] = "no-reply"


class ButtonPayload(WireModel):
    label: str | None = None
    actions: list[dict[str, Any]] | None = None


class PathAction(BaseAction):
    """A button press: the `request` of a choice/card/carousel button, copied verbatim."""

    type: str = Field(pattern=r"^path-")
    payload: ButtonPayload | None = None


class ActionAction(BaseAction):
    """The generic button action (`{"actions": [...]}`)."""

    type: Literal["action"] = "action"
    payload: ButtonPayload | None = None


class MessagePayload(WireModel):
    message: str


class MessageAction(BaseAction):
    type: Literal["message"] = "message"
    payload: MessagePayload


class EndPayload(WireModel):
    reason: str | None = None
    message: str | None = None


class EndAction(BaseAction):
    """End the conversation from the user side."""

    type: Literal["end"] = "end"
    payload: EndPayload | None = None


class DtmfAction(BaseAction):
    type: Literal["dtmf"] = "dtmf"
    payload: str


class UploadedFile(WireModel):
    url: str
    mime_type: str = Field(alias="mimeType")
    filename: str | None = None
    size: int | None = None


class FilePayload(WireModel):
    text: str | None = None
    files: list[UploadedFile]


class FileAction(BaseAction):
    type: Literal["file"] = "file"
    payload: FilePayload


class LiveAgentHandoffPayload(WireModel):
    """One of `message`, `file_upload`, `continue_conversation`, `return_to_voiceflow`."""

    type: str
    message: str | None = None
    files: list[dict[str, Any]] | None = None


class LiveAgentHandoffAction(BaseAction):
    type: Literal["live-agent-handoff"] = "live-agent-handoff"
    payload: LiveAgentHandoffPayload


class GeneralAction(BaseAction):
    """Anything else: custom action results (`done`, `success`...) and types we have never seen."""


_TYPED: dict[str, str] = {
    "launch": "launch",
    "text": "text",
    "intent": "intent",
    "event": "event",
    "no-reply": "no-reply",
    "action": "action",
    "message": "message",
    "end": "end",
    "dtmf": "dtmf",
    "file": "file",
    "live-agent-handoff": "live-agent-handoff",
}


def _action_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return "general"
    if kind in _TYPED:
        return _TYPED[kind]
    if kind.startswith("path-"):
        return "path"
    return "general"


Action = Annotated[
    Annotated[LaunchAction, Tag("launch")]
    | Annotated[TextAction, Tag("text")]
    | Annotated[IntentAction, Tag("intent")]
    | Annotated[EventAction, Tag("event")]
    | Annotated[NoReplyAction, Tag("no-reply")]
    | Annotated[PathAction, Tag("path")]
    | Annotated[ActionAction, Tag("action")]
    | Annotated[MessageAction, Tag("message")]
    | Annotated[EndAction, Tag("end")]
    | Annotated[DtmfAction, Tag("dtmf")]
    | Annotated[FileAction, Tag("file")]
    | Annotated[LiveAgentHandoffAction, Tag("live-agent-handoff")]
    | Annotated[GeneralAction, Tag("general")],
    Discriminator(_action_tag),
]
"""Any action the runtime accepts, parsed into its most specific model."""


@functools.cache
def _action_adapter() -> TypeAdapter[Action]:
    # Built on first use: validating the union is not needed to start serving.
    return TypeAdapter(Action)


def parse_action(raw: dict[str, Any]) -> BaseAction:
    """Validate a raw action object (raises `pydantic.ValidationError` when it is not one)."""
    return _action_adapter().validate_python(raw)


def launch() -> LaunchAction:
    return LaunchAction()


def text(message: str) -> TextAction:
    return TextAction(payload=message)


def event(name: str) -> EventAction:
    return EventAction(payload=EventPayload(event=EventName(name=name)))
