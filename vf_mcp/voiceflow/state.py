"""The per-user conversation state and the interact configuration."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vf_mcp.voiceflow.actions import WireModel


class StackFrame(WireModel):
    """One active flow; the top of the stack is where the conversation is now."""

    diagram_id: str | None = Field(default=None, alias="diagramID")
    program_id: str | None = Field(default=None, alias="programID")
    node_id: str | None = Field(default=None, alias="nodeID")
    name: str | None = None
    storage: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    commands: list[dict[str, Any]] = Field(default_factory=list)


class State(WireModel):
    """A user's conversation state: `stack`, runtime `storage` and global `variables`."""

    stack: list[StackFrame] = Field(default_factory=list)
    storage: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    turn: dict[str, Any] | None = None


class InteractConfig(WireModel):
    """`config` of the legacy interact call (unknown keys pass through)."""

    tts: bool | None = None
    strip_ssml: bool | None = Field(default=None, alias="stripSSML")
    stop_all: bool | None = Field(default=None, alias="stopAll")
    stop_types: list[str] | None = Field(default=None, alias="stopTypes")
    exclude_types: list[str] | None = Field(default=None, alias="excludeTypes")
