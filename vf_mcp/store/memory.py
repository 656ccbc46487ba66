"""The store in process: bounded, expiring, least recently used conversations (and runs) dropped
first."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from vf_mcp.bounded import OwnedLRU
from vf_mcp.callers import namespace_in
from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.domain.run import RunRecord
from vf_mcp.domain.transcript import Transcript, TranscriptTurn
from vf_mcp.runs.store import StoredRun
from vf_mcp.store.base import Store
from vf_mcp.voiceflow.sessions import InMemorySessionKeys

MB = 1024 * 1024
NO_OWNER = "-"
"""The owner of what callers that are not told apart keep (stdio, loopback without tokens)."""


def owner_of(key: str) -> str:
    """The caller a transcript or run key belongs to: both begin `<namespace or ->/`
    (`vf_mcp.transcripts.book.book_key`, `vf_mcp.runs.models.run_key`)."""
    return key.partition("/")[0]


@dataclass(frozen=True)
class Limits:
    """What the in-process store may hold, in all and per transcript."""

    max_bytes: int = 512 * MB
    transcript_max_bytes: int = 4 * MB
    max_conversations: int = 10_000
    max_transcripts: int = 1000
    max_turns: int = 500
    max_runs: int = 1000


class InMemoryMemory:
    """Conversation memory, bounded in conversations and bytes per caller (`OwnedLRU`); entries
    older than the TTL are forgotten."""

    def __init__(
        self,
        *,
        max_conversations: int = 10_000,
        max_bytes: int = 128 * MB,
        ttl_seconds: float = 86_400,
    ) -> None:
        self._items: OwnedLRU[ConversationMemory] = OwnedLRU(
            max_entries=max_conversations, max_bytes=max_bytes, ttl_seconds=ttl_seconds
        )

    async def load(self, key: str) -> ConversationMemory | None:
        return self._items.get(key)

    async def save(self, key: str, memory: ConversationMemory, *, owner: str | None = None) -> None:
        size = len(memory.model_dump_json())
        self._items.put(key, memory, owner=owner or NO_OWNER, size=size)

    async def forget(self, key: str) -> None:
        self._items.pop(key)

    async def aclose(self) -> None:
        self._items.clear()

    def __repr__(self) -> str:
        return f"InMemoryMemory({len(self._items)} conversation(s))"


@dataclass
class _Live:
    transcript: Transcript
    sizes: deque[int]
    """Each kept turn's size in bytes (its JSON), oldest first."""
    size: int = 0
    count: int = 0
    """Turns recorded, the trimmed ones too: the next turn's index."""
    last_append: str = ""


class InMemoryTranscripts:
    """Live transcripts in process: bounded in conversations and bytes per caller, each in turns
    and bytes (its oldest turns go first, the newest always stays), expiring after the TTL."""

    def __init__(
        self,
        *,
        max_conversations: int = 1000,
        max_turns: int = 500,
        ttl_seconds: float = 86_400,
        max_bytes: int = 256 * MB,
        transcript_max_bytes: int = 4 * MB,
    ) -> None:
        self._items: OwnedLRU[_Live] = OwnedLRU(
            max_entries=max_conversations, max_bytes=max_bytes, ttl_seconds=ttl_seconds
        )
        self._max_turns = max_turns
        self._max_bytes = transcript_max_bytes

    async def append(
        self, key: str, head: Transcript, turn: TranscriptTurn, *, append_id: str = ""
    ) -> None:
        live = self._items.get(key) or _Live(head, deque())  # the caller's head, made for this
        if append_id and append_id == live.last_append:
            return  # a retry of the append just done
        live.last_append = append_id
        transcript = live.transcript
        live.count += 1
        transcript.turns.append(turn.model_copy(update={"index": live.count}))
        size = len(turn.model_dump_json())
        live.sizes.append(size)
        live.size += size
        while len(live.sizes) > 1 and (
            len(live.sizes) > self._max_turns or live.size > self._max_bytes
        ):
            live.size -= live.sizes.popleft()
            del transcript.turns[0]
        # A running total: re-summing every turn made long conversations slower per turn.
        transcript.duration_ms = round(transcript.duration_ms + turn.latency_ms, 1)
        self._items.put(key, live, owner=owner_of(key), size=live.size)

    async def load(self, key: str) -> Transcript | None:
        live = self._items.get(key, touch=False)
        return None if live is None else live.transcript

    async def forget(self, key: str) -> None:
        self._items.pop(key)


class InMemoryLeases:
    """Turn leases in process: one worker, so a lease lapses only past its TTL (a turn that
    outlived every deadline)."""

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}
        self._next_sweep = 0.0

    def _set(self, key: str, turn_id: str, ttl_seconds: float) -> None:
        now = time.monotonic()
        # Lapsed leases go as new ones come, at most once a TTL (a sweep reads every lease, and
        # every turn takes one): they are kept no longer than two TTLs past use.
        if now >= self._next_sweep:
            for lapsed in [k for k, (_, until) in self._leases.items() if until < now]:
                del self._leases[lapsed]
            self._next_sweep = now + ttl_seconds
        self._leases[key] = (turn_id, now + ttl_seconds)

    async def take(self, key: str, turn_id: str, ttl_seconds: float) -> str | None:
        # No await between the check and the write: one step on the event loop.
        held = self._live_holder(key)
        if held is not None and held != turn_id:
            return held
        self._set(key, turn_id, ttl_seconds)
        return None

    async def renew(self, key: str, turn_id: str, ttl_seconds: float) -> None:
        if self._live_holder(key) == turn_id:
            self._set(key, turn_id, ttl_seconds)

    async def release(self, key: str, turn_id: str) -> None:
        found = self._leases.get(key)
        if found is not None and found[0] == turn_id:
            del self._leases[key]

    async def holder(self, key: str) -> str | None:
        return self._live_holder(key)

    def _live_holder(self, key: str) -> str | None:
        found = self._leases.get(key)
        return found[0] if found is not None and found[1] >= time.monotonic() else None

    def __len__(self) -> int:
        return len(self._leases)


class InMemoryRuns:
    """Runs in process: bounded per caller in records and bytes (`OwnedLRU`), each record (and
    its cancel flag) expiring a TTL after its last write; heartbeats expire on their own,
    shorter, TTL.

    Past a bound the caller holding the most loses its least recently written record first, but
    never one still running with a live heartbeat: its worker is this process, and it still
    writes it (a caller runs at most `VF_MCP_MAX_RUNS` at once, so those are bounded too)."""

    def __init__(
        self, *, max_runs: int = 1000, max_bytes: int = 128 * MB, ttl_seconds: float = 86_400
    ) -> None:
        self._records: OwnedLRU[RunRecord] = OwnedLRU(
            max_entries=max_runs,
            max_bytes=max_bytes,
            ttl_seconds=ttl_seconds,
            evictable=self._evictable,
            on_evict=self._drop,
        )
        self._cancels: dict[str, float] = {}
        self._beats: dict[str, float] = {}
        self._ttl = ttl_seconds

    async def save(self, key: str, record: RunRecord) -> None:
        copy = record.model_copy(deep=True)
        self._records.put(key, copy, owner=owner_of(key), size=len(copy.model_dump_json()))

    async def load(self, key: str) -> StoredRun | None:
        found = self._records.get(key)
        if found is None:
            self._drop(key)
            return None
        return StoredRun(
            record=found.model_copy(deep=True),
            cancel_requested=await self.cancel_requested(key),
            alive=self._beats.get(key, 0.0) >= time.monotonic(),
        )

    async def request_cancel(self, key: str) -> None:
        self._cancels[key] = time.monotonic() + self._ttl

    async def cancel_requested(self, key: str) -> bool:
        return self._cancels.get(key, 0.0) >= time.monotonic()

    async def beat(self, key: str, ttl_seconds: float) -> None:
        self._beats[key] = time.monotonic() + ttl_seconds

    def _evictable(self, key: str, record: RunRecord) -> bool:
        return record.state != "running" or self._beats.get(key, 0.0) < time.monotonic()

    def _drop(self, key: str) -> None:
        # A run's flag and heartbeat go with its record: nothing is kept for a run no one reads.
        self._records.pop(key)
        self._cancels.pop(key, None)
        self._beats.pop(key, None)


class MemoryShelf:
    """In process: bounded, least recently written dropped first, expiring after the TTL."""

    def __init__(self, *, ttl_seconds: float, max_items: int = 20_000) -> None:
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._groups: dict[str, OrderedDict[str, float]] = {}
        self._ttl = ttl_seconds
        self._max = max_items

    async def get(self, key: str) -> bytes | None:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return found[1]

    async def put(self, key: str, value: bytes) -> None:
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def add(self, key: str, value: bytes) -> bool:
        if await self.get(key) is not None:
            return False
        await self.put(key, value)
        return True

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)

    async def index(self, group: str, member: str) -> None:
        members = self._groups.setdefault(group, OrderedDict())
        members[member] = time.monotonic() + self._ttl
        members.move_to_end(member)
        while len(members) > self._max:
            members.popitem(last=False)

    async def members(self, group: str) -> list[str]:
        now = time.monotonic()
        members = self._groups.get(group, OrderedDict())
        for stale in [m for m, expires in members.items() if expires < now]:
            del members[stale]
        return list(members)


def in_memory_store(*, ttl_seconds: float = 86_400, limits: Limits | None = None) -> Store:
    """The store in process; of `limits.max_bytes`, a quarter for conversation memory, half for
    transcripts and a quarter for runs."""
    limits = limits or Limits()
    memory = InMemoryMemory(
        max_conversations=limits.max_conversations,
        max_bytes=limits.max_bytes // 4,
        ttl_seconds=ttl_seconds,
    )
    return Store(
        memory=memory,
        session_keys=InMemorySessionKeys(owner_of=namespace_in),
        leases=InMemoryLeases(),
        transcripts=InMemoryTranscripts(
            max_conversations=limits.max_transcripts,
            max_turns=limits.max_turns,
            ttl_seconds=ttl_seconds,
            max_bytes=limits.max_bytes // 2,
            transcript_max_bytes=limits.transcript_max_bytes,
        ),
        runs=InMemoryRuns(
            max_runs=limits.max_runs, max_bytes=limits.max_bytes // 4, ttl_seconds=ttl_seconds
        ),
        backend=memory,
        shelves=lambda _name: MemoryShelf(ttl_seconds=ttl_seconds),
    )
