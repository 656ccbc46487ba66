"""What the conversation layer needs kept between calls, declared here so the adapters that keep
it (`vf_mcp.store`: in process, or Redis) depend on this layer and never the reverse.

Per conversation (the upstream user id): the buttons of the last turn (so `choice` can send a
button's stored request), the last known variables (for the next turn's diff) and the turn in
flight, if any (`vf_mcp.conversation.inflight`); beside them, the turn leases, and the user's v4
session key (`vf_mcp.voiceflow.sessions.SessionKeyStore`, the client's own port).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.errors import StoreError
from vf_mcp.voiceflow.sessions import SessionKeyStore


class MemoryStore(Protocol):
    """The server's memory of each conversation, by upstream user id."""

    async def load(self, key: str) -> ConversationMemory | None: ...

    async def save(self, key: str, memory: ConversationMemory, *, owner: str | None = None) -> None:
        """Keep `memory`; `owner` is the caller's namespace, so a bounded store can keep callers
        from evicting each other's conversations."""
        ...

    async def forget(self, key: str) -> None: ...


class TurnLeases(Protocol):
    """Which turn runs on a live worker, by conversation: the worker takes a lease naming the
    turn, with a short TTL, renews it while the turn runs and releases it once the answer is
    kept; a lapsed lease means the worker is gone. Taking is one atomic step, so of two calls on
    one conversation at the same moment (two workers, or one worker on a shared store) one runs
    and the other is refused."""

    async def take(self, key: str, turn_id: str, ttl_seconds: float) -> str | None:
        """Take the lease on conversation `key` for turn `turn_id`, unless a live lease names
        another turn: then nothing is taken and that turn's id is returned."""
        ...

    async def renew(self, key: str, turn_id: str, ttl_seconds: float) -> None:
        """Extend the lease on `key` if it still names `turn_id`: a renewal that lands after its
        turn released the lease must not take it again and refuse the next turn."""
        ...

    async def release(self, key: str, turn_id: str) -> None:
        """End the lease on `key` if it still names `turn_id`."""
        ...

    async def holder(self, key: str) -> str | None:
        """The turn the live lease on `key` names, if any."""
        ...


class ConversationStorage(Protocol):
    """All a `ConversationService` keeps: its conversations, their turn leases and v4 session
    keys. A deployment's `vf_mcp.store.Store` is one; read-only, as a service never swaps them."""

    @property
    def memory(self) -> MemoryStore: ...

    @property
    def leases(self) -> TurnLeases: ...

    @property
    def session_keys(self) -> SessionKeyStore: ...


WRITE_RETRY_SECONDS = 3.0
"""How long the write of an answered turn is retried: a Redis restart takes about a second, and
an answer not written is a turn the transcript lacks, or buttons the next `choice` cannot find."""


async def write_retrying(
    write: Callable[[], Awaitable[None]], *, seconds: float = WRITE_RETRY_SECONDS
) -> None:
    """`write`, again with backoff while the store fails, for up to `seconds`; then its last
    `StoreError` propagates."""
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        try:
            await write()
            return
        except StoreError:
            if time.monotonic() + delay > deadline:
                raise
        await anyio.sleep(delay)
        delay = min(delay * 2, 1.0)
