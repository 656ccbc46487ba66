"""Turns in flight: recorded before they are sent, so a turn cut off with its worker is never
silently missing.

Before a turn goes upstream its request is written into the conversation's memory as pending,
and the worker holds a short lease on the conversation, renewed while the turn runs; the answer's
memory replaces the pending record. A worker killed mid-turn leaves the record behind, and its
lease lapses. The next `interact` or `get_state` on the conversation, on any worker, reacts by
what it finds:

- the lease is held (the worker is alive, the turn still running): refused in one line, nothing
  sent (`TurnInFlightError`), as is a call that finds the lease taken by a turn sent at the same
  moment (taking it is one atomic step: of two calls at once, one runs);
- the lease lapsed, or the turn is older than every deadline: reconciled. The runtime's state is
  read, the turn is recorded in the transcript as lost in flight (what was sent, when, whether the
  runtime's state moved since), and the caller is told in one line what happened and what to send
  next (`TurnLostError`). Nothing is ever sent again.

A turn whose call is cancelled (by its client, or at a stopping worker's deadline) is recorded as
lost in flight at once, its answer unknown, and nothing is left pending: the caller knows its call
was cut, and its next call goes ahead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

import anyio

from vf_mcp.conversation.inputs import TurnRequest
from vf_mcp.conversation.ports import MemoryStore, TurnLeases
from vf_mcp.domain.conversation import ConversationMemory, PendingTurn
from vf_mcp.domain.turn import Choice
from vf_mcp.errors import StoreError, TurnInFlightError, TurnLostError
from vf_mcp.summary import describe_changes, diff_variables
from vf_mcp.voiceflow.client import VoiceflowClient

_log = logging.getLogger(__name__)
T = TypeVar("T")
WORKER = f"{socket.gethostname()}:{os.getpid()}"
LEASE_SECONDS = 3.0
"""A lease not renewed for this long (three renewals missed) means its worker is gone."""
RENEW_SECONDS = 1.0


@dataclass(frozen=True)
class LostTurn:
    """A turn cut off with its worker (or its cancelled call), found by a later call."""

    user_id: str
    request: TurnRequest
    pressed: Choice | None
    sent_at: datetime
    worker: str
    ran: bool | None
    """Whether the runtime's variables moved since it was sent (then it ran); None: not known
    (its call was cancelled, and the runtime was not asked)."""
    changes: str = ""
    """The variables it changed, as the summaries write them."""

    @property
    def where(self) -> str:
        """Where the runtime stood when the turn was found, in words."""
        if self.ran is None:
            return "its call was cancelled, so it may have run (get_state shows where it stands)"
        if self.ran:
            return f"the runtime's state moved since ({self.changes}), so it ran"
        return "the runtime's variables show no change since, so it may not have run"

    def explanation(self) -> str:
        """The one line the call that found it answers with."""
        when = self.sent_at.strftime("%H:%M:%S UTC")
        return (
            f"The last turn of conversation {self.user_id} ({_said(self.request)}, sent at {when}) "
            f"never had its answer recorded: worker {self.worker} stopped mid-turn, or the store "
            f"was unreachable when the answer came; {self.where}. It is recorded in the "
            "transcript as lost in flight, and nothing was "
            "sent now: send your next turn, as a message or an action (that turn's buttons are "
            "unknown), or launch to start over"
        )


LostTurnRecorder = Callable[[LostTurn, "str | None"], Awaitable[None]]
"""Records a lost turn in the caller's transcript (namespace second); set by the composition root,
since transcripts are kept above this layer."""


class TurnsInFlight:
    """Marks, leases and settles one agent's turns in flight."""

    def __init__(
        self,
        memory: MemoryStore,
        leases: TurnLeases,
        client: VoiceflowClient,
        *,
        recorder: LostTurnRecorder | None = None,
    ) -> None:
        self._memory = memory
        self._leases = leases
        self._client = client
        self.recorder = recorder

    async def settle(
        self,
        user_id: str,
        upstream: str,
        memory: ConversationMemory,
        namespace: str | None,
        *,
        reading: bool = False,
    ) -> None:
        """React to `memory.pending`: while its worker runs it (the lease names it), refuse a
        turn, or let a `reading` call go on; once the lease lapsed, reconcile and raise.

        Only the lease tells: it is renewed every second while the turn runs, however long a
        streamed answer takes, and lapses `LEASE_SECONDS` after its worker stops."""
        pending = memory.pending
        assert pending is not None
        if await self._leases.holder(upstream) == pending.turn_id:
            if reading:
                return
            age = time.time() - pending.sent_at
            raise TurnInFlightError(
                f"A turn of conversation {user_id} is still running (sent {age:.0f} s ago, on "
                f"worker {pending.worker}); nothing was sent now: wait for its answer, or call "
                "get_state to see where the conversation stands, then send your next turn"
            )
        lost = await self._reconcile(user_id, upstream, memory, namespace)
        raise TurnLostError(lost.explanation())

    async def _reconcile(
        self, user_id: str, upstream: str, memory: ConversationMemory, namespace: str | None
    ) -> LostTurn:
        pending = memory.pending
        assert pending is not None
        request = TurnRequest.model_validate(pending.request)
        state = await self._client.get_state(upstream, environment=request.environment)
        now = state.variables if state is not None else None
        diff = diff_variables(memory.variables, now)
        lost = replace(
            _lost(user_id, pending, request),
            ran=diff is not None and bool(diff.agent or diff.runtime),
            changes=describe_changes(diff.agent) if diff is not None else "",
        )
        # Settled: the runtime's variables from now on, and no buttons (that answer is lost).
        await self._settled(upstream, lost, ConversationMemory(variables=now), namespace)
        return lost

    async def run(
        self,
        user_id: str,
        upstream: str,
        memory: ConversationMemory | None,
        pending: PendingTurn,
        namespace: str | None,
        work: Callable[[], Awaitable[T]],
    ) -> T:
        """`work` (the upstream request), with the turn recorded as pending and its lease held.

        The lease is taken before the pending record is written, so no one ever sees the record
        without it and takes a live turn for a lost one. A failure the caller reads (or a bug)
        leaves nothing pending; a cancelled call records its turn as lost at once. Either way the
        lease is released; on success the caller releases it (`release`) once the answer is kept.
        """
        marked = False
        try:
            await self._take(user_id, upstream, pending.turn_id)
            changed = (memory or ConversationMemory()).model_copy(update={"pending": pending})
            await self._memory.save(upstream, changed, owner=namespace)  # refused if it fails
            marked = True
            return await self._leased(upstream, pending.turn_id, work)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                if marked:
                    await self._abandon(user_id, upstream, memory, pending, namespace)
                await self.release(upstream, pending.turn_id)
            raise
        except Exception:
            if marked:
                await self._clear(upstream, memory, owner=namespace)
            await self.release(upstream, pending.turn_id)
            raise

    async def _take(self, user_id: str, upstream: str, turn_id: str) -> None:
        """Take the conversation's lease for `turn_id`, or refuse the turn: another call's turn
        holds it, started at about the same moment (both found nothing pending). A store that
        fails here refuses the turn (`StoreError`, nothing sent), as the pending record's write
        would: a turn running without its lease would be taken for a lost one."""
        held = await self._leases.take(upstream, turn_id, LEASE_SECONDS)
        if held is not None:
            raise TurnInFlightError(
                f"A turn of conversation {user_id} is still running (another call's, started at "
                "about the same moment); nothing was sent now: wait for its answer, or call "
                "get_state to see where the conversation stands, then send your next turn"
            )

    async def release(self, upstream: str, turn_id: str) -> None:
        """End `turn_id`'s lease: its answer is kept (or it failed), so the next turn may go.
        Not released, it lapses after `LEASE_SECONDS`, refusing a next turn until then."""
        try:
            await self._leases.release(upstream, turn_id)
        except StoreError as exc:
            _log.warning("could not release a turn's lease: %s", exc.message)

    async def _abandon(
        self,
        user_id: str,
        upstream: str,
        memory: ConversationMemory | None,
        pending: PendingTurn,
        namespace: str | None,
    ) -> None:
        """The turn's call was cancelled: record it as lost now, its outcome unknown, and leave
        nothing pending. Run shielded: the caller's cancellation must not cut these writes."""
        request = TurnRequest.model_validate(pending.request)
        before = memory.variables if memory is not None else None
        # No buttons: if the turn ran, the ones kept are stale, and pressing one would act on it.
        settled = ConversationMemory(variables=before)
        try:
            await self._settled(upstream, _lost(user_id, pending, request), settled, namespace)
        except StoreError as exc:  # it stays pending: the next call reconciles it
            _log.warning("could not record a cancelled turn: %s", exc.message)

    async def _settled(
        self, upstream: str, lost: LostTurn, memory: ConversationMemory, namespace: str | None
    ) -> None:
        """Record `lost` in the transcript, then keep `memory` (no longer pending)."""
        if self.recorder is not None:
            await self.recorder(lost, namespace)
        await self._memory.save(upstream, memory, owner=namespace)

    @staticmethod
    def pending(request: TurnRequest, pressed: Choice | None) -> PendingTurn:
        """The record of a turn about to be sent, named for its lease."""
        return PendingTurn(
            request=request.model_dump(mode="json", exclude_none=True),
            pressed=pressed,
            sent_at=time.time(),
            worker=WORKER,
            turn_id=secrets.token_hex(8),
        )

    async def _clear(
        self, upstream: str, memory: ConversationMemory | None, owner: str | None
    ) -> None:
        """The turn failed with an answer the caller reads: nothing is left pending."""
        try:
            await self._memory.save(upstream, memory or ConversationMemory(), owner=owner)
        except StoreError as exc:
            _log.warning("could not clear a failed turn's pending record: %s", exc.message)

    async def _leased(self, upstream: str, turn_id: str, work: Callable[[], Awaitable[T]]) -> T:
        """`work`'s result, the lease on the conversation renewed for `turn_id` while it runs.

        Most turns end well within `RENEW_SECONDS`: a timer starts the renewals only for a turn
        still running then, so the common turn pays for a timer, not for a task group and a task
        started and cancelled (a third of a millisecond a turn). The servers run on asyncio
        (uvicorn, and the SDK's stdio transport under `anyio.run`)."""
        loop = asyncio.get_running_loop()
        renewals: list[asyncio.Task[None]] = []

        def start_renewals() -> None:
            renewals.append(loop.create_task(self._renew(upstream, turn_id)))

        timer = loop.call_later(RENEW_SECONDS, start_renewals)
        try:
            return await work()
        finally:
            timer.cancel()
            for renewal in renewals:
                renewal.cancel()

    async def _renew(self, upstream: str, turn_id: str) -> None:
        while True:
            await self._renew_once(upstream, turn_id)
            await anyio.sleep(RENEW_SECONDS)

    async def _renew_once(self, upstream: str, turn_id: str) -> None:
        try:
            await self._leases.renew(upstream, turn_id, LEASE_SECONDS)
        except StoreError as exc:  # the turn goes on: a lapsed lease only makes waiting shorter
            _log.warning("could not renew a turn's lease: %s", exc.message)


def _lost(user_id: str, pending: PendingTurn, request: TurnRequest) -> LostTurn:
    return LostTurn(
        user_id=user_id,
        request=request,
        pressed=pending.pressed,
        sent_at=datetime.fromtimestamp(pending.sent_at, UTC),
        worker=pending.worker,
        ran=None,
    )


def _said(request: TurnRequest) -> str:
    """What the user did, as a person would say it."""
    if request.launch:
        return "launch"
    if request.message is not None:
        text = request.message if len(request.message) <= 40 else request.message[:39] + "…"
        return f"message {text!r}"
    if request.choice is not None:
        return f"choice {request.choice!r}"
    kind = (request.action or {}).get("type", "action")
    return f"action {kind!r}"
