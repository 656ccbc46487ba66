"""The store in process: bounded, expiring, least recently used conversations (and runs) dropped
first."""

from __future__ import annotations

import time
from collections import OrderedDict
from itertools import islice

from vf_mcp.runs.models import RunRecord
from vf_mcp.runs.store import StoredRun
from vf_mcp.store import ConversationMemory, Store
from vf_mcp.transcripts.models import Transcript, TranscriptTurn
from vf_mcp.voiceflow.sessions import InMemorySessionKeys


class InMemoryMemory:
    """Conversation memory in a bounded dict; entries older than the TTL are forgotten."""

    def __init__(self, *, max_conversations: int = 10_000, ttl_seconds: float = 86_400) -> None:
        self._items: OrderedDict[str, ConversationMemory] = OrderedDict()
        self._max = max_conversations
        self._ttl = ttl_seconds

    async def load(self, key: str) -> ConversationMemory | None:
        memory = self._items.get(key)
        if memory is None:
            return None
        if time.time() - memory.updated_at > self._ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return memory

    async def save(self, key: str, memory: ConversationMemory) -> None:
        self._items[key] = memory
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def forget(self, key: str) -> None:
        self._items.pop(key, None)

    async def aclose(self) -> None:
        self._items.clear()

    def __repr__(self) -> str:
        return f"InMemoryMemory({len(self._items)} conversation(s))"


class InMemoryTranscripts:
    """Live transcripts in process: bounded in conversations and turns, expiring after the TTL."""

    def __init__(
        self, *, max_conversations: int = 1000, max_turns: int = 500, ttl_seconds: float = 86_400
    ) -> None:
        self._items: OrderedDict[str, Transcript] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._max = max_conversations
        self._max_turns = max_turns
        self._ttl = ttl_seconds

    async def append(self, key: str, head: Transcript, turn: TranscriptTurn) -> None:
        self._expire()
        transcript = self._items.get(key) or head  # the caller's, made for this append
        transcript.turns.append(turn.model_copy(update={"index": len(transcript.turns) + 1}))
        del transcript.turns[: -self._max_turns]
        # A running total: re-summing every turn made long conversations slower per turn.
        transcript.duration_ms = round(transcript.duration_ms + turn.latency_ms, 1)
        self._items[key] = transcript
        self._items.move_to_end(key)
        self._touched[key] = time.monotonic()
        while len(self._items) > self._max:
            await self.forget(next(iter(self._items)))

    async def load(self, key: str) -> Transcript | None:
        self._expire()
        return self._items.get(key)

    async def forget(self, key: str) -> None:
        self._items.pop(key, None)
        self._touched.pop(key, None)

    def _expire(self) -> None:
        # Oldest first: stop at the first conversation still within its TTL.
        now = time.monotonic()
        while self._items:
            oldest = next(iter(self._items))
            if now - self._touched.get(oldest, now) <= self._ttl:
                break
            self._items.pop(oldest, None)
            self._touched.pop(oldest, None)


class InMemoryRuns:
    """Runs in process: bounded, each record (and its cancel flag) expiring a TTL after its last
    write; heartbeats expire on their own, shorter, TTL.

    Past the bound the least recently written record goes first, but never one still running
    with a live heartbeat: its worker is this process, and it still writes it (a caller runs
    at most `VF_MCP_MAX_RUNS` at once, so those are bounded too)."""

    def __init__(self, *, max_runs: int = 1000, ttl_seconds: float = 86_400) -> None:
        self._records: OrderedDict[str, tuple[float, RunRecord]] = OrderedDict()
        self._cancels: dict[str, float] = {}
        self._beats: dict[str, float] = {}
        self._max = max_runs
        self._ttl = ttl_seconds

    async def save(self, key: str, record: RunRecord) -> None:
        self._records[key] = (time.monotonic() + self._ttl, record.model_copy(deep=True))
        self._records.move_to_end(key)
        if len(self._records) > self._max:
            self._evict()

    async def load(self, key: str) -> StoredRun | None:
        found = self._records.get(key)
        if found is None or found[0] < time.monotonic():
            self._drop(key)
            return None
        return StoredRun(
            record=found[1].model_copy(deep=True),
            cancel_requested=await self.cancel_requested(key),
            alive=self._beats.get(key, 0.0) >= time.monotonic(),
        )

    async def request_cancel(self, key: str) -> None:
        self._cancels[key] = time.monotonic() + self._ttl

    async def cancel_requested(self, key: str) -> bool:
        return self._cancels.get(key, 0.0) >= time.monotonic()

    async def beat(self, key: str, ttl_seconds: float) -> None:
        self._beats[key] = time.monotonic() + ttl_seconds

    def _evict(self) -> None:
        now = time.monotonic()
        over = len(self._records) - self._max
        idle = (
            key
            for key, (_, record) in self._records.items()  # oldest written first
            if record.state != "running" or self._beats.get(key, 0.0) < now
        )
        for key in list(islice(idle, over)):
            self._drop(key)

    def _drop(self, key: str) -> None:
        # A run's flag and heartbeat go with its record: nothing is kept for a run no one reads.
        self._records.pop(key, None)
        self._cancels.pop(key, None)
        self._beats.pop(key, None)


def in_memory_store(*, ttl_seconds: float = 86_400) -> Store:
    memory = InMemoryMemory(ttl_seconds=ttl_seconds)
    return Store(
        memory=memory,
        session_keys=InMemorySessionKeys(),
        transcripts=InMemoryTranscripts(ttl_seconds=ttl_seconds),
        runs=InMemoryRuns(ttl_seconds=ttl_seconds),
        backend=memory,
    )
