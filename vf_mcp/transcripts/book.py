"""Transcripts of conversations driven turn by turn (the `interact` and `handoff` tools), for the
`transcript` tool, the `voiceflow://transcripts/{user_id}` resource and `handoff`.

`TranscriptBook` decides what a turn's record is and when a transcript starts over (a launch);
where transcripts live is a `TranscriptStore` (in process, or shared by several workers).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Protocol

from vf_mcp.conversation import TurnOutcome, TurnRequest
from vf_mcp.conversation.inflight import LostTurn
from vf_mcp.conversation.ports import write_retrying
from vf_mcp.domain.transcript import (
    LostInFlight,
    Transcript,
    TranscriptTurn,
    UserAction,
    UserActionKind,
)
from vf_mcp.domain.turn import Choice
from vf_mcp.transcripts.records import transcript_turn

LIVE_SUITE = "live"
"""The suite of a conversation driven turn by turn (`interact`): nothing is expected of it, so
its transcript's outcome (the schema requires one) says nothing. Here, not with the renderers that
read it: a server records transcripts from its first turn, and renders them only when asked."""

MAX_TURNS = 500


class TranscriptStore(Protocol):
    """Where live transcripts are kept: appended turn by turn, each bounded to its last turns."""

    async def append(
        self, key: str, head: Transcript, turn: TranscriptTurn, *, append_id: str = ""
    ) -> None:
        """Add `turn`; `head` (a transcript with no turns) starts the record if there is none.

        An `append_id` the last append already carried adds nothing: a write retried after the
        store ran it but the answer was lost must not record the turn twice."""
        ...

    async def load(self, key: str) -> Transcript | None: ...

    async def forget(self, key: str) -> None: ...


def user_action(request: TurnRequest, pressed: Choice | None = None) -> UserAction:
    """The transcript form of a turn request (with the label of the button it pressed)."""
    variables = dict(request.variables) if request.variables else None
    if request.launch:
        return UserAction(kind="launch", variables=variables)
    if request.message is not None:
        return UserAction(kind="message", text=request.message, variables=variables)
    if request.choice is not None:
        label = pressed.label if pressed is not None else None
        return UserAction(kind="choice", choice=request.choice, text=label, variables=variables)
    raw = dict(request.action or {})
    if raw.get("type") == "event":
        event = (raw.get("payload") or {}).get("event", {})
        name = event.get("name") if isinstance(event, dict) else None
        return UserAction(kind="event", text=name, action=raw, variables=variables)
    kind: UserActionKind = "intent" if raw.get("type") == "intent" else "action"
    return UserAction(kind=kind, action=raw, variables=variables)


def lost_turn(lost: LostTurn) -> TranscriptTurn:
    """The transcript's record of a turn cut off with its worker: what was sent, when, and where
    the runtime stood when the next call found it."""
    return TranscriptTurn(
        index=1,  # the store numbers turns as they come
        user=user_action(lost.request, lost.pressed),
        error=f"Lost in flight: sent at {lost.sent_at:%H:%M:%S} UTC by worker {lost.worker}, "
        f"its answer never came back; {lost.where}",
        lost_in_flight=LostInFlight(
            sent_at=lost.sent_at, worker=lost.worker, ran=lost.ran, changes=lost.changes
        ),
    )


def book_key(namespace: str | None, agent: str, user_id: str) -> str:
    """Each caller (HTTP token) has its own transcripts per agent, like its conversations."""
    return f"{namespace or '-'}/{agent}/{user_id}"


class TranscriptBook:
    """The transcripts of live conversations, by caller, agent and user id."""

    def __init__(self, store: TranscriptStore) -> None:
        self._store = store

    async def record(
        self,
        outcome: TurnOutcome,
        *,
        agent: str,
        namespace: str | None = None,
        keep_traces: bool = False,
    ) -> None:
        """Add a turn; a launch starts the conversation over, so it starts a new transcript.

        Retried while the store fails, for a few seconds (a Redis restart): the turn ran, and a
        transcript without it would not say so."""
        key = book_key(namespace, agent, outcome.user_id)
        head = _head(outcome.user_id, outcome.request.environment)
        user = user_action(outcome.request, outcome.pressed)
        turn = transcript_turn(outcome, user, keep_traces=keep_traces)
        append_id = secrets.token_hex(8)  # the same for every retry of this write

        async def write() -> None:
            if outcome.action.type == "launch":
                await self._store.forget(key)
            await self._store.append(key, head, turn, append_id=append_id)

        await write_retrying(write)

    async def record_lost(self, lost: LostTurn, namespace: str | None, *, agent: str) -> None:
        """Add a turn that was cut off with its worker (`vf_mcp.conversation.inflight`)."""
        key = book_key(namespace, agent, lost.user_id)
        head = _head(lost.user_id, lost.request.environment)
        turn, append_id = lost_turn(lost), secrets.token_hex(8)
        await write_retrying(lambda: self._store.append(key, head, turn, append_id=append_id))

    async def get(
        self, user_id: str, *, agent: str, namespace: str | None = None
    ) -> Transcript | None:
        return await self._store.load(book_key(namespace, agent, user_id))

    async def forget(self, user_id: str, *, agent: str, namespace: str | None = None) -> None:
        await self._store.forget(book_key(namespace, agent, user_id))


def _head(user_id: str, environment: str | None) -> Transcript:
    return Transcript(
        suite=LIVE_SUITE,
        test_id=user_id,
        name=f"conversation {user_id}",
        user_id=user_id,
        environment=environment,
        started_at=datetime.now(UTC),
        outcome="passed",
    )
