"""Runs in Redis, through the store's pool: any worker reads any run, and a finished run's results
outlive the worker that ran it.

A run is three keys: its record (one JSON string, written only by the worker running it), its
cancel flag (set by whichever worker `cancel_run` reached) and its heartbeat (renewed by the
running worker with a TTL of a few seconds: when it is gone, so is the worker). The record and
the flag carry the store's TTL, renewed on each write.
"""

from __future__ import annotations

from vf_mcp.domain.run import RunRecord
from vf_mcp.runs.store import StoredRun
from vf_mcp.store.redis_backend import RedisBackend


class RedisRuns:
    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._prefix = backend.prefix + "run:"

    async def save(self, key: str, record: RunRecord) -> None:
        async with self._backend.errors("save the run"):
            await self._backend.redis.set(
                self._prefix + key, record.model_dump_json(), ex=self._backend.ttl
            )

    async def load(self, key: str) -> StoredRun | None:
        name = self._prefix + key
        async with (
            self._backend.errors("read the run"),
            self._backend.redis.pipeline(transaction=True) as pipe,
        ):
            pipe.get(name)
            pipe.exists(name + ":cancel")
            pipe.exists(name + ":alive")
            data, cancel, alive = await pipe.execute()
        if data is None:
            return None
        return StoredRun(
            record=RunRecord.model_validate_json(data),
            cancel_requested=bool(cancel),
            alive=bool(alive),
        )

    async def request_cancel(self, key: str) -> None:
        async with self._backend.errors("cancel the run"):
            await self._backend.redis.set(
                self._prefix + key + ":cancel", b"1", ex=self._backend.ttl
            )

    async def cancel_requested(self, key: str) -> bool:
        async with self._backend.errors("read the run's cancel request"):
            return bool(await self._backend.redis.exists(self._prefix + key + ":cancel"))

    async def beat(self, key: str, ttl_seconds: float) -> None:
        async with self._backend.errors("renew the run's heartbeat"):
            await self._backend.redis.set(
                self._prefix + key + ":alive", b"1", px=max(1, int(ttl_seconds * 1000))
            )
