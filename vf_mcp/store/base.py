"""`Store`: every port a deployment keeps, filled by one adapter family (in process, or Redis).

The ports are declared by the layers that use them (`vf_mcp.conversation.ports`, the client's
`SessionKeyStore`, `vf_mcp.transcripts.book.TranscriptStore`, `vf_mcp.runs.store.RunStore`, the
front ends' `vf_mcp.shelf.Shelf`); the composition root (`vf_mcp.app`) hands each service only
the one it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vf_mcp.config import ENV_STORE_URL
from vf_mcp.conversation.ports import MemoryStore, TurnLeases
from vf_mcp.errors import ConfigurationError
from vf_mcp.runs.store import RunStore
from vf_mcp.shelf import Shelves
from vf_mcp.store.prefixed import PrefixedLeases, PrefixedMemory, PrefixedSessionKeys
from vf_mcp.transcripts.book import TranscriptStore
from vf_mcp.voiceflow.sessions import SessionKeyStore


class Closeable(Protocol):
    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Store:
    """Everything a deployment keeps: conversation memory and turn leases, v4 session keys, live
    transcripts and suite runs (a `ConversationStorage` for the conversation layer)."""

    memory: MemoryStore
    session_keys: SessionKeyStore
    leases: TurnLeases
    transcripts: TranscriptStore
    runs: RunStore
    backend: Closeable
    shelves: Shelves
    """Front ends' own records (A2A tasks), one keyspace per name, on the same backend."""

    def for_agent(self, name: str) -> Store:
        """One agent's view of a shared store: its keys are its own, the backend is shared."""
        prefix = f"{name}/"
        return Store(
            memory=PrefixedMemory(self.memory, prefix),
            session_keys=PrefixedSessionKeys(self.session_keys, prefix),
            leases=PrefixedLeases(self.leases, prefix),
            transcripts=self.transcripts,  # their keys already name the agent
            runs=self.runs,  # a run's id is its own; its record names its agent
            backend=self.backend,
            shelves=self.shelves,  # a front end's names already name the agent
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
