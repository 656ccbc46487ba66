"""The store in Redis, so several workers (and restarts) share conversations and v4 sessions.

Conversation memory is one JSON string per conversation; a user's v4 session is one hash
(`environment`, `key`): the runtime keeps one live session per user, so there is one to keep, and
reading or forgetting it never scans the keyspace. A live transcript is a list of turns that every
worker appends to (`RPUSH`, bounded with `LTRIM`) beside a hash holding its head, turn count and
running duration, written in one transaction: two workers never overwrite each other's turns.
Suite runs are in `redis_runs`. Every key carries the TTL, renewed on each write.
"""

from __future__ import annotations

import json
import logging
import secrets
import time

import anyio

from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.domain.transcript import Transcript, TranscriptTurn
from vf_mcp.store.base import Store, check_store
from vf_mcp.store.redis_backend import PREFIX, RedisBackend
from vf_mcp.store.redis_runs import RedisRuns
from vf_mcp.voiceflow.sessions import SessionStart

_log = logging.getLogger(__name__)
_POLL_SECONDS = 0.025  # how often a worker waiting for another's session start looks again

# Store the new key only while the start lock is still ours, and release it in the same step: a
# start that outlived its lock must not overwrite the key of a start made after it.
_STORE_IF_HOLDING = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('HSET', KEYS[2], 'environment', ARGV[2], 'key', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
# Take a turn's lease unless a live one names another turn (then answer that turn's id): the
# check and the write in one step, so of two calls on one conversation at once only one runs.
_TAKE_UNLESS_HELD = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
_RENEW_IF_HOLDING = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_IF_HOLDING = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Append a turn and trim the transcript to its bounds in turns and bytes in one step, so workers
# appending at once never lose each other's turns; the newest turn always stays. `bytes` is the
# running size of the kept turns (transcripts written before it existed count from 0). An append
# carrying the id of the last one is a retry of it (the store ran it, its answer was lost): no-op.
_APPEND_TURN = """
if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], 'last_append') == ARGV[7] then
  return -1
end
redis.call('HSET', KEYS[1], 'last_append', ARGV[7])
redis.call('HSETNX', KEYS[1], 'head', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HINCRBYFLOAT', KEYS[1], 'duration_ms', ARGV[2])
local size = redis.call('HINCRBY', KEYS[1], 'bytes', string.len(ARGV[3]))
local kept = redis.call('RPUSH', KEYS[2], ARGV[3])
while kept > 1 and (kept > tonumber(ARGV[4]) or size > tonumber(ARGV[5])) do
  local dropped = redis.call('LPOP', KEYS[2])
  size = redis.call('HINCRBY', KEYS[1], 'bytes', -string.len(dropped))
  kept = kept - 1
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return kept
"""
_NO_ENVIRONMENT = ""  # a hash field cannot be None: the traffic split's session


class RedisMemory:
    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._prefix = backend.prefix + "conversation:"

    async def load(self, key: str) -> ConversationMemory | None:
        async with self._backend.errors("read the conversation"):
            data = await self._backend.redis.get(self._prefix + key)
        return None if data is None else ConversationMemory.model_validate_json(data)

    async def save(self, key: str, memory: ConversationMemory, *, owner: str | None = None) -> None:
        # Every key expires with the TTL; Redis's `maxmemory` bounds the whole, not per caller.
        async with self._backend.errors("save the conversation"):
            await self._backend.redis.set(
                self._prefix + key, memory.model_dump_json(), ex=self._backend.ttl
            )

    async def forget(self, key: str) -> None:
        async with self._backend.errors("forget the conversation"):
            await self._backend.redis.delete(self._prefix + key)


class RedisLeases:
    """Turn leases every worker sees: a key with the lease's TTL, renewed while the turn runs."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._prefix = backend.prefix + "lease:"

    async def take(self, key: str, turn_id: str, ttl_seconds: float) -> str | None:
        async with self._backend.errors("take the turn's lease"):
            held = await self._backend.redis.eval(
                _TAKE_UNLESS_HELD, 1, self._prefix + key, turn_id, _ms(ttl_seconds)
            )
        return _text(held)

    async def renew(self, key: str, turn_id: str, ttl_seconds: float) -> None:
        async with self._backend.errors("renew the turn's lease"):
            await self._backend.redis.eval(
                _RENEW_IF_HOLDING, 1, self._prefix + key, turn_id, _ms(ttl_seconds)
            )

    async def release(self, key: str, turn_id: str) -> None:
        async with self._backend.errors("release the turn's lease"):
            await self._backend.redis.eval(_RELEASE_IF_HOLDING, 1, self._prefix + key, turn_id)

    async def holder(self, key: str) -> str | None:
        async with self._backend.errors("read the turn's lease"):
            return _text(await self._backend.redis.get(self._prefix + key))


class RedisSessionKeys:
    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._prefix = backend.prefix + "session:"

    async def get_session_key(self, user_id: str, environment: str | None) -> str | None:
        async with self._backend.errors("read the v4 session"):
            stored, key = await self._backend.redis.hmget(
                self._prefix + user_id, ["environment", "key"]
            )
        if key is None or _text(stored) != (environment or _NO_ENVIRONMENT):
            return None
        return _text(key)

    async def set_session_key(self, user_id: str, environment: str | None, key: str) -> None:
        name = self._prefix + user_id
        async with (
            self._backend.errors("save the v4 session"),
            self._backend.redis.pipeline(transaction=True) as pipe,
        ):
            pipe.hset(name, "environment", environment or _NO_ENVIRONMENT)
            pipe.hset(name, "key", key)
            pipe.expire(name, self._backend.ttl)
            await pipe.execute()

    async def current_session_key(self, user_id: str) -> str | None:
        async with self._backend.errors("read the v4 session"):
            key = await self._backend.redis.hget(self._prefix + user_id, "key")
        return None if key is None else _text(key)

    async def delete_session_keys(self, user_id: str) -> None:
        async with self._backend.errors("forget the v4 session"):
            await self._backend.redis.delete(self._prefix + user_id)

    async def session_key(self, user_id: str, environment: str | None, start: SessionStart) -> str:
        lock = self._prefix + user_id + ":starting"
        while True:
            key = await self.get_session_key(user_id, environment)
            if key is not None and key != start.refused:
                return key
            token = secrets.token_hex(16)
            hold = _ms(start.hold_seconds)
            async with self._backend.errors("lock the v4 session start"):
                won = await self._backend.redis.set(lock, token, nx=True, px=hold)
            if won:
                return await self._start_holding(user_id, environment, lock, token, start)
            await self._wait_for_start(user_id, environment, lock, start)

    async def _start_holding(
        self,
        user_id: str,
        environment: str | None,
        lock: str,
        token: str,
        start: SessionStart,
    ) -> str:
        redis = self._backend.redis
        try:
            # Another worker may have stored its key between our read and our lock.
            key = await self.get_session_key(user_id, environment)
            if key is not None and key != start.refused:
                return key
            key = await start.open()
            async with self._backend.errors("save the v4 session"):
                kept = await redis.eval(
                    _STORE_IF_HOLDING,
                    2,
                    lock,
                    self._prefix + user_id,
                    token,
                    environment or _NO_ENVIRONMENT,
                    key,
                    self._backend.ttl,
                )
            if not kept:
                _log.warning(
                    "a v4 session start outlasted its lock, so its key was not stored; the turn "
                    "uses it, and a later turn adopts whichever session started last"
                )
            return key
        finally:
            with anyio.CancelScope(shield=True):
                async with self._backend.errors("release the v4 session start"):
                    await redis.eval(_RELEASE_IF_HOLDING, 1, lock, token)

    async def _wait_for_start(
        self, user_id: str, environment: str | None, lock: str, start: SessionStart
    ) -> None:
        """Until another worker's start stores a key or ends (its lock released or expired)."""
        with anyio.move_on_after(start.hold_seconds + 1):
            while True:
                await anyio.sleep(_POLL_SECONDS)
                key = await self.get_session_key(user_id, environment)
                if key is not None and key != start.refused:
                    return
                async with self._backend.errors("read the v4 session start lock"):
                    if not await self._backend.redis.exists(lock):
                        return


class RedisTranscripts:
    """Live transcripts shared by every worker: any worker answers for any conversation."""

    def __init__(
        self, backend: RedisBackend, *, max_turns: int = 500, max_bytes: int = 4 * 1024 * 1024
    ) -> None:
        self._backend = backend
        self._prefix = backend.prefix + "transcript:"
        self._max_turns = max_turns
        self._max_bytes = max_bytes

    async def append(
        self, key: str, head: Transcript, turn: TranscriptTurn, *, append_id: str = ""
    ) -> None:
        meta, turns = self._prefix + key, self._prefix + key + ":turns"
        async with self._backend.errors("record the turn"):
            # The first worker to record a turn writes the head; the others keep it. The index
            # is given on reading, from the count: turns are stored as they came.
            await self._backend.redis.eval(
                _APPEND_TURN,
                2,
                meta,
                turns,
                head.model_dump_json(exclude={"turns"}),
                turn.latency_ms,
                turn.model_dump_json(exclude={"index"}),
                self._max_turns,
                self._max_bytes,
                self._backend.ttl,
                append_id,  # a retry of the append just done adds nothing
            )

    async def load(self, key: str) -> Transcript | None:
        meta, turns = self._prefix + key, self._prefix + key + ":turns"
        async with (
            self._backend.errors("read the transcript"),
            self._backend.redis.pipeline(transaction=True) as pipe,
        ):
            pipe.hmget(meta, ["head", "count", "duration_ms"])
            pipe.lrange(turns, 0, -1)
            (head, count, duration), rows = await pipe.execute()
        if head is None:
            return None
        transcript = Transcript.model_validate_json(head)
        first = int(count or 0) - len(rows) + 1  # the oldest turns may have been trimmed
        transcript.turns = [_turn(row, first + n) for n, row in enumerate(rows)]
        transcript.duration_ms = round(float(duration or 0.0), 1)
        return transcript

    async def forget(self, key: str) -> None:
        async with self._backend.errors("forget the transcript"):
            await self._backend.redis.delete(self._prefix + key, self._prefix + key + ":turns")


class RedisShelf:
    """In the store's Redis, through its pool; every key carries the store's TTL."""

    def __init__(self, backend: RedisBackend, prefix: str) -> None:
        self._backend = backend
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        async with self._backend.errors("read an A2A task"):
            value = await self._backend.redis.get(self._prefix + key)
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def put(self, key: str, value: bytes) -> None:
        async with self._backend.errors("save an A2A task"):
            await self._backend.redis.set(self._prefix + key, value, ex=self._backend.ttl)

    async def add(self, key: str, value: bytes) -> bool:
        async with self._backend.errors("save an A2A message"):
            added = await self._backend.redis.set(
                self._prefix + key, value, ex=self._backend.ttl, nx=True
            )
        return bool(added)

    async def delete(self, key: str) -> None:
        async with self._backend.errors("forget an A2A message"):
            await self._backend.redis.delete(self._prefix + key)

    async def index(self, group: str, member: str) -> None:
        now, name = time.time(), self._prefix + group
        async with (
            self._backend.errors("list an A2A task"),
            self._backend.redis.pipeline(transaction=True) as pipe,
        ):
            pipe.zadd(name, {member: now})
            pipe.zremrangebyscore(name, "-inf", now - self._backend.ttl)
            pipe.expire(name, self._backend.ttl)
            await pipe.execute()

    async def members(self, group: str) -> list[str]:
        since = time.time() - self._backend.ttl
        async with self._backend.errors("list the A2A tasks"):
            found = await self._backend.redis.zrangebyscore(self._prefix + group, since, "+inf")
        return [m.decode() if isinstance(m, bytes) else str(m) for m in found]


def _turn(row: bytes | str, index: int) -> TranscriptTurn:
    data = json.loads(row)
    data["index"] = index
    return TranscriptTurn.model_validate(data)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


def redis_store(
    url: str,
    *,
    ttl_seconds: float,
    prefix: str = PREFIX,
    transcript_max_bytes: int = 4 * 1024 * 1024,
) -> Store:
    check_store(url)
    backend = RedisBackend(url, ttl_seconds=ttl_seconds, prefix=prefix)
    return Store(
        memory=RedisMemory(backend),
        session_keys=RedisSessionKeys(backend),
        leases=RedisLeases(backend),
        transcripts=RedisTranscripts(backend, max_bytes=transcript_max_bytes),
        runs=RedisRuns(backend),
        backend=backend,
        shelves=lambda name: RedisShelf(backend, backend.prefix + name),
    )
