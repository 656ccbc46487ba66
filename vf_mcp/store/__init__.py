"""What the server keeps between calls, as small protocols composed into one `Store`.

Per conversation (the upstream user id): the buttons of the last turn (so `choice` can send a
button's stored request) and the last known variables (for the next turn's diff), and, on v4, the
user's session key. Per caller: the suite runs started with `start_run` (`vf_mcp.runs`). In
process by default (`memory`), in Redis for several workers and restarts (`redis`). Every key
expires after the configured TTL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from vf_mcp.config import ENV_STORE_URL
from vf_mcp.errors import ConfigurationError
from vf_mcp.summary import Choice
from vf_mcp.voiceflow.sessions import SessionKeyStore

if TYPE_CHECKING:
    from vf_mcp.runs.store import RunStore
    from vf_mcp.transcripts.book import TranscriptStore


class ConversationMemory(BaseModel):
    """What the server keeps about one conversation."""

    choices: list[Choice] = Field(default_factory=list)
    variables: dict[str, Any] | None = None
    updated_at: float = Field(default_factory=time.time)


class MemoryStore(Protocol):
    """The server's memory of each conversation, by upstream user id."""

    async def load(self, key: str) -> ConversationMemory | None: ...

    async def save(self, key: str, memory: ConversationMemory, *, owner: str | None = None) -> None:
        """Keep `memory`; `owner` is the caller's namespace, so a bounded store can keep callers
        from evicting each other's conversations."""
        ...

    async def forget(self, key: str) -> None: ...


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

    def for_agent(self, name: str) -> Store:
        """One agent's view of a shared store: its keys are its own, the backend is shared."""
        from vf_mcp.store.prefixed import PrefixedMemory, PrefixedSessionKeys

        prefix = f"{name}/"
        return Store(
            memory=PrefixedMemory(self.memory, prefix),
            session_keys=PrefixedSessionKeys(self.session_keys, prefix),
            transcripts=self.transcripts,  # their keys already name the agent
            runs=self.runs,  # a run's id is its own; its record names its agent
            backend=self.backend,
        )

    async def aclose(self) -> None:
        await self.backend.aclose()


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


__all__ = ["Closeable", "ConversationMemory", "MemoryStore", "Store", "check_store", "open_store"]
