"""One turn with the agent: the one model every reader of a turn shares.

`TurnResult` is the MCP structured content of `interact`; its messages, choices, custom actions
and variable changes are also what a transcript's agent reply holds (`vf_mcp.domain.transcript`),
so the chat, the view, A2A, reports and evaluation all read these classes. Frozen: a turn, once
summarised, is built anew (`model_copy(update=...)`) rather than changed in place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TurnStatus = Literal["awaiting_user", "awaiting_action", "ended", "handoff", "error"]
Verbosity = Literal["minimal", "standard", "debug"]


class _Frozen(BaseModel):
    # Transcripts hold these models too, and a transcript read back with a key we never write is
    # an error, not a silent loss. Built on the first turn, not at start: the first tools/list
    # needs none of them (their published schemas ship generated).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Choice(_Frozen):
    """A button the agent offered; `interact(choice=...)` sends its `request`."""

    number: int = Field(description="1-based position, usable as `choice`")
    label: str
    request: dict[str, Any] = Field(description="The action that pressing it sends")


class Media(_Frozen):
    """Audio, images and data URIs are described, never inlined."""

    kind: Literal["audio", "image", "data"]
    url: str | None = Field(default=None, description="Link, or None for inline data")
    media_type: str | None = None
    size_bytes: int | None = Field(default=None, description="Size of inline data")


class Card(_Frozen):
    title: str = ""
    description: str = ""
    image_url: str | None = None
    buttons: list[str] = Field(default_factory=list)


class AgentMessage(_Frozen):
    """One thing the agent showed or said, in order."""

    kind: Literal["text", "card", "carousel", "image", "audio", "handoff", "notice"]
    text: str = ""
    cards: list[Card] = Field(default_factory=list)
    media: Media | None = None


class CustomAction(_Frozen):
    """A custom action the agent asked the client to perform."""

    name: str
    payload: Any = None
    result_types: list[str] = Field(
        default_factory=list,
        description="Action types that resume the flow, e.g. send {'type': 'done'}",
    )


class VariableChange(_Frozen):
    name: str
    before: Any = None
    after: Any = None


class TurnResult(_Frozen):
    """What happened in one turn with the agent."""

    user_id: str = Field(description="Conversation handle: pass it to the next call")
    status: TurnStatus = Field(
        description="awaiting_user | awaiting_action | ended | handoff | error"
    )
    messages: list[AgentMessage] = Field(default_factory=list)
    choices: list[Choice] = Field(default_factory=list)
    custom_actions: list[CustomAction] = Field(default_factory=list)
    variables_changed: list[VariableChange] | None = Field(
        default=None,
        description="The agent's own variables that changed; None when the state after the turn "
        "is unknown. The runtime's built-in and bookkeeping variables are never listed here",
    )
    runtime_variables_changed: list[VariableChange] | None = Field(
        default=None,
        description="verbosity=debug only: the runtime's built-in and bookkeeping variables "
        "(sessions, last_utterance, _memory_, ...) that changed",
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
        default=None, description="The traces exactly as the runtime sent them (verbosity=debug)"
    )

    def with_warnings(self, *warnings: str, first: bool = False) -> TurnResult:
        """This turn with `warnings` added after its own (before them when `first`)."""
        if not warnings:
            return self
        added = [*warnings, *self.warnings] if first else [*self.warnings, *warnings]
        return self.model_copy(update={"warnings": added})
