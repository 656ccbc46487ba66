"""What the server keeps between calls, as small protocols composed into one `Store`.

Per conversation (the upstream user id): the buttons of the last turn (so `choice` can send a
button's stored request) and the last known variables (for the next turn's diff), and, on v4, the
user's session key. Per caller: the suite runs started with `start_run` (`vf_mcp.runs`). In
process by default (`memory`), in Redis for several workers and restarts (`redis`). Every key
expires after the configured TTL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from pydantic import BaseModel, Field

from vf_mcp.config import ENV_STORE_URL
from vf_mcp.errors import ConfigurationError, StoreError
from vf_mcp.summary import Choice
from vf_mcp.voiceflow.sessions import SessionKeyStore

if TYPE_CHECKING:
    from vf_mcp.runs.store import RunStore
    from vf_mcp.transcripts.book import TranscriptStore


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


class MemoryStore(Protocol):
    """The server's memory of each conversation, by upstream user id."""

    async def load(self, key: str) -> ConversationMemory | None: ...

    async def save(self, key: str, memory: ConversationMemory, *, owner: str | None = None) -> None:
        """Keep `memory`; `owner` is the caller's namespace, so a bounded store can keep callers
        from evicting each other's conversations."""
        ...

    async def forget(self, key: str) -> None: ...


class TurnLeases(Protocol):
    """Which turn runs on a live worker, by conversation: the worker holds a lease naming the
    turn, with a short TTL, and renews it while the turn runs; a lapsed lease (or one naming
    another turn) means the worker is gone. Never released: it names a turn, so a lease left by
    a finished turn says nothing about the next."""

    async def hold(self, key: str, turn_id: str, ttl_seconds: float) -> None:
        """Take or renew the lease on conversation `key` for turn `turn_id`."""
        ...

    async def holder(self, key: str) -> str | None:
        """The turn the live lease on `key` names, if any."""
        ...


class Closeable(Protocol):
    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Store:
    """Everything a deployment keeps: conversation memory, v4 session keys, live transcripts and
    suite runs."""

    memory: MemoryStore
    session_keys: SessionKeyStore
    transcripts: TranscriptStore
    runs: RunStore
    backend: Closeable
    leases: TurnLeases = field(default_factory=lambda: _in_process_leases())

    def for_agent(self, name: str) -> Store:
        """One agent's view of a shared store: its keys are its own, the backend is shared."""
        from vf_mcp.store.prefixed import PrefixedLeases, PrefixedMemory, PrefixedSessionKeys

        prefix = f"{name}/"
        return Store(
            memory=PrefixedMemory(self.memory, prefix),
            session_keys=PrefixedSessionKeys(self.session_keys, prefix),
            transcripts=self.transcripts,  # their keys already name the agent
            runs=self.runs,  # a run's id is its own; its record names its agent
            backend=self.backend,
            leases=PrefixedLeases(self.leases, prefix),
        )

    async def aclose(self) -> None:
        await self.backend.aclose()


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


def _in_process_leases() -> TurnLeases:
    from vf_mcp.store.memory import InMemoryLeases

    return InMemoryLeases()


def check_store(url: str | None) -> None:
    """Refuse, before anything starts, a store this installation cannot open."""
    if url is None:
        return
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"{ENV_STORE_URL} is set but the redis package is missing: pip install 'vf-mcp[redis]'"
        ) from None


def open_store(
    url: str | None, *, ttl_seconds: float, max_mb: int = 512, transcript_max_kb: int = 4096
) -> Store:
    """The store a deployment configured: Redis for `redis://` URLs, else in process (holding
    at most `max_mb`); a live transcript keeps at most `transcript_max_kb` either way."""
    if url is None:
        from vf_mcp.store.memory import MB, Limits, in_memory_store

        limits = Limits(max_bytes=max_mb * MB, transcript_max_bytes=transcript_max_kb * 1024)
        return in_memory_store(ttl_seconds=ttl_seconds, limits=limits)
    from vf_mcp.store.redis import redis_store

    return redis_store(url, ttl_seconds=ttl_seconds, transcript_max_bytes=transcript_max_kb * 1024)


__all__ = [
    "Closeable",
    "ConversationMemory",
    "MemoryStore",
    "PendingTurn",
    "Store",
    "TurnLeases",
    "check_store",
    "open_store",
    "write_retrying",
]
