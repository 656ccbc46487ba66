"""Transcripts of conversations driven turn by turn (the `interact` tool), for the
`voiceflow://transcripts/{user_id}` resource and the `transcript` tool.

The server calls `record_turn` after each `interact` and `forget` on `delete_state`; a bounded,
least-recently-used map keeps memory flat however many conversations a server sees.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from vf_mcp.conversation import resolve_choice
from vf_mcp.errors import VfMcpError
from vf_mcp.summary import Choice, TurnResult
from vf_mcp.transcripts.models import (
    Transcript,
    TranscriptTurn,
    UserAction,
    UserActionKind,
    deltas_from_turn,
    reply_from_turn,
)
from vf_mcp.voiceflow.variables import without_bookkeeping


def user_action(
    *,
    message: str | None = None,
    choice: str | int | None = None,
    launch: bool = False,
    action: Mapping[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> UserAction:
    """The transcript form of `interact`'s arguments."""
    vars_ = dict(variables) if variables else None
    if launch:
        return UserAction(kind="launch", variables=vars_)
    if message is not None:
        return UserAction(kind="message", text=message, variables=vars_)
    if choice is not None:
        return UserAction(kind="choice", choice=choice, variables=vars_)
    raw = dict(action or {})
    if raw.get("type") == "event":
        event = (raw.get("payload") or {}).get("event", {})
        name = event.get("name") if isinstance(event, dict) else None
        return UserAction(kind="event", text=name, action=raw, variables=vars_)
    kind: UserActionKind = "intent" if raw.get("type") == "intent" else "action"
    return UserAction(kind=kind, action=raw, variables=vars_)


class TranscriptBook:
    """The transcripts of live conversations, by user id."""

    def __init__(
        self,
        *,
        max_conversations: int = 1000,
        max_turns: int = 500,
        ttl_seconds: float = 86_400,
    ) -> None:
        self._items: OrderedDict[str, Transcript] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._max = max_conversations
        self._max_turns = max_turns
        self._ttl = ttl_seconds

    def _expire(self) -> None:
        # Oldest first: stop at the first conversation still within its TTL.
        now = time.monotonic()
        while self._items:
            oldest = next(iter(self._items))
            if now - self._touched.get(oldest, now) <= self._ttl:
                break
            self.forget(oldest)

    def record_turn(
        self,
        turn: TurnResult,
        user: UserAction,
        *,
        variables_after: Mapping[str, Any] | None = None,
        environment: str | None = None,
    ) -> Transcript:
        self._expire()
        transcript = self._items.get(turn.user_id)
        if transcript is None:
            transcript = Transcript(
                suite="live",
                test_id=turn.user_id,
                name=f"conversation {turn.user_id}",
                user_id=turn.user_id,
                environment=environment,
                started_at=datetime.now(UTC),
                outcome="passed",
            )
        if user.kind == "choice" and user.choice is not None and transcript.turns:
            offered = [
                Choice(number=c.number, label=c.label, request={})
                for c in transcript.turns[-1].agent.choices
            ]
            # The turn ran, so the choice resolves unless turns were recorded out of order.
            with suppress(VfMcpError):
                user = user.model_copy(update={"text": resolve_choice(user.choice, offered).label})
        transcript.turns.append(
            TranscriptTurn(
                index=len(transcript.turns) + 1,
                user=user,
                agent=reply_from_turn(turn),
                status=turn.status,
                variables_changed=deltas_from_turn(turn),
                variables=(
                    without_bookkeeping(dict(variables_after))
                    if variables_after is not None
                    else None
                ),
                latency_ms=turn.latency_ms,
            )
        )
        del transcript.turns[: -self._max_turns]
        # A running total: re-summing every turn made long conversations slower per turn.
        transcript.duration_ms = round((transcript.duration_ms or 0) + turn.latency_ms, 1)
        self._items[turn.user_id] = transcript
        self._items.move_to_end(turn.user_id)
        self._touched[turn.user_id] = time.monotonic()
        while len(self._items) > self._max:
            self.forget(next(iter(self._items)))
        return transcript

    def get(self, user_id: str) -> Transcript | None:
        self._expire()
        return self._items.get(user_id)

    def forget(self, user_id: str) -> None:
        self._items.pop(user_id, None)
        self._touched.pop(user_id, None)
