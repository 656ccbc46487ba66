"""What the server keeps about one conversation between calls: the model behind the memory port
(`vf_mcp.conversation.ports.MemoryStore`), whichever adapter keeps it (in process, or Redis)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from vf_mcp.domain.turn import Choice


class PendingTurn(BaseModel):
    """A turn sent upstream whose answer is not recorded yet: written before the request goes out,
    replaced by the answer. Found by a later call only when the worker running it died (its lease
    lapsed) or it outlived every deadline."""

    request: dict[str, Any] = Field(description="The turn request, as `TurnRequest` dumps it")
    pressed: Choice | None = Field(default=None, description="The button the turn pressed")
    sent_at: float = Field(description="When it was sent (Unix time)")
    worker: str = Field(description="The worker that sent it (host:pid)")
    turn_id: str = Field(default="", description="Names the lease its worker holds for it")


class ConversationMemory(BaseModel):
    """What the server keeps about one conversation."""

    choices: list[Choice] = Field(default_factory=list)
    variables: dict[str, Any] | None = None
    updated_at: float = Field(default_factory=time.time)
    pending: PendingTurn | None = None
