"""Where in a run a request is made: the key record/replay files use.

The runner sets the scope before each turn and judge call; the recording transport and the
recording judge read it. A context variable reaches them without threading ids through the
`ConversationService` and `VoiceflowClient` calls, which know nothing about evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class Scope(BaseModel):
    """A test's turn, and which side of an agent-to-agent test is talking."""

    model_config = ConfigDict(frozen=True)

    suite: str
    test: str
    turn: int = 0
    role: str = "target"

    @property
    def key(self) -> str:
        return f"turn-{self.turn:03d}/{self.role}"


_SCOPE: ContextVar[Scope | None] = ContextVar("vf_mcp_eval_scope", default=None)


def current_scope() -> Scope | None:
    return _SCOPE.get()


@contextmanager
def scope(value: Scope) -> Iterator[Scope]:
    token = _SCOPE.set(value)
    try:
        yield value
    finally:
        _SCOPE.reset(token)


class TurnClock(Protocol):
    """Where a turn's latency comes from: what was measured (a live run, kept by a recording),
    or what a recording measured (a replay, so latency checks reach the recorded verdict)."""

    def latency(self, scope: Scope, measured_ms: float) -> float: ...
