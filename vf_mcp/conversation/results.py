"""What the conversation service answers: the state tools' models and a turn's whole outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vf_mcp.conversation.inputs import TurnRequest
from vf_mcp.domain.turn import Choice, TurnResult
from vf_mcp.voiceflow.actions import BaseAction
from vf_mcp.voiceflow.state import State
from vf_mcp.voiceflow.traces import BaseTrace


class StateResult(BaseModel):
    """A user's conversation state as the runtime holds it."""

    # Built on first use: building it builds the runtime's whole state model, which the first
    # tools/list does not need (its published schema ships generated).
    model_config = ConfigDict(defer_build=True)

    user_id: str
    exists: bool = Field(description="False when the runtime holds no state for this user")
    state: State | None = None


class DeleteResult(BaseModel):
    user_id: str
    deleted: bool = True


class SessionEventResult(BaseModel):
    session_id: str
    event: str
    status_code: int
    runtime_message: str


@dataclass(frozen=True)
class TurnOutcome:
    """Everything one turn produced, so recording it needs no second look at the store."""

    request: TurnRequest
    """The request as run: `user_id` is always set (a fresh one when the caller gave none)."""
    result: TurnResult
    """The public result: what the MCP tool returns."""
    action: BaseAction
    """The action sent to the runtime."""
    pressed: Choice | None
    """The button, when the turn was a choice."""
    variables_after: dict[str, Any] | None
    """All the agent's variables after the turn; None when the runtime did not send them."""
    traces: list[BaseTrace]
    """The traces, parsed; each keeps the JSON the runtime sent as `.raw`."""
    retries: int = 0
    """How often the request was sent again (a 429, or a connection that could not be opened)."""

    @property
    def user_id(self) -> str:
        return self.result.user_id
