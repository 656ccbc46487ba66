"""Where runs live: records, cancel requests and heartbeats, by run key (`run_key`).

Only the worker running a run writes its record; a cancel from any worker is a separate flag the
runner polls, and liveness is a heartbeat key with a short TTL the runner keeps renewing, so no
two workers ever write the same key. In process (`vf_mcp.store.memory`) or in Redis
(`vf_mcp.store.redis_runs`); records and flags carry the store's TTL like conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vf_mcp.domain.run import RunRecord


@dataclass(frozen=True)
class StoredRun:
    """A run's record, with whether a cancel was asked for and whether its worker still beats."""

    record: RunRecord
    cancel_requested: bool
    alive: bool


class RunStore(Protocol):
    async def save(self, key: str, record: RunRecord) -> None: ...

    async def load(self, key: str) -> StoredRun | None: ...

    async def request_cancel(self, key: str) -> None: ...

    async def cancel_requested(self, key: str) -> bool: ...

    async def beat(self, key: str, ttl_seconds: float) -> None:
        """Say the run's worker is alive for the next `ttl_seconds`."""
        ...
