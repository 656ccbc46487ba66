"""What the server remembers between calls, behind one small interface.

Per conversation (`user_id`): the buttons of the last turn (so `choice` can send a button's stored
request) and the last known variables (for the next turn's diff). In process for now; the interface
is async so a shared store (Redis) can replace it for several workers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from pydantic import BaseModel, Field

from vf_mcp.config import ENV_STORE_URL
from vf_mcp.errors import ConfigurationError, StoreError
from vf_mcp.summary import Choice
from vf_mcp.voiceflow.sessions import InMemorySessionKeys, slot_prefix


class ConversationMemory(BaseModel):
    """What the server keeps about one conversation."""

    choices: list[Choice] = Field(default_factory=list)
    variables: dict[str, Any] | None = None
    updated_at: float = Field(default_factory=time.time)


class ConversationStore(Protocol):
    async def load(self, key: str) -> ConversationMemory | None: ...

    async def save(self, key: str, memory: ConversationMemory) -> None: ...

    async def forget(self, key: str) -> None: ...

    async def aclose(self) -> None: ...

    # v4 session keys (credentials): kept beside the conversation, under their own keys.
    async def get_session_key(self, slot: str) -> str | None: ...

    async def set_session_key(self, slot: str, key: str) -> None: ...

    async def delete_session_keys(self, user_id: str) -> None: ...

    async def find_session_key(self, user_id: str) -> str | None: ...


class InMemoryStore(InMemorySessionKeys):
    """A bounded, expiring dict: the least recently used conversations go first."""

    def __init__(self, *, max_conversations: int = 10_000, ttl_seconds: float = 86_400) -> None:
        super().__init__()
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
        return f"InMemoryStore({len(self._items)} conversation(s))"


class RedisStore:
    """The same memory in Redis, so several workers (and restarts) share conversations.

    Every key carries the TTL, so forgotten conversations expire on their own.
    """

    def __init__(
        self, url: str, *, ttl_seconds: float, prefix: str = "vf-mcp:conversation:"
    ) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._ttl = max(1, int(ttl_seconds))
        self._prefix = prefix
        self._session_prefix = prefix.replace("conversation", "session-key")

    async def load(self, key: str) -> ConversationMemory | None:
        async with self._errors("read"):
            data = await self._redis.get(self._prefix + key)
        return None if data is None else ConversationMemory.model_validate_json(data)

    async def save(self, key: str, memory: ConversationMemory) -> None:
        async with self._errors("save"):
            await self._redis.set(self._prefix + key, memory.model_dump_json(), ex=self._ttl)

    async def forget(self, key: str) -> None:
        async with self._errors("delete"):
            await self._redis.delete(self._prefix + key)

    async def get_session_key(self, slot: str) -> str | None:
        async with self._errors("read"):
            key = await self._redis.get(self._session_prefix + slot)
        return None if key is None else key.decode()

    async def set_session_key(self, slot: str, key: str) -> None:
        async with self._errors("save"):
            await self._redis.set(self._session_prefix + slot, key, ex=self._ttl)

    async def delete_session_keys(self, user_id: str) -> None:
        async with self._errors("delete"):
            pattern = self._session_prefix + _glob_escape(slot_prefix(user_id)) + "*"
            async for name in self._redis.scan_iter(match=pattern):
                await self._redis.delete(name)

    async def find_session_key(self, user_id: str) -> str | None:
        async with self._errors("read"):
            pattern = self._session_prefix + _glob_escape(slot_prefix(user_id)) + "*"
            async for name in self._redis.scan_iter(match=pattern):
                key = await self._redis.get(name)
                if key is not None:
                    return key.decode()
        return None

    @asynccontextmanager
    async def _errors(self, what: str) -> AsyncIterator[None]:
        from redis.exceptions import RedisError

        try:
            yield
        except RedisError as exc:
            # The URL may hold a password, so the message names the variable, not the value.
            raise StoreError(
                f"Could not {what} the conversation in the Redis store ({type(exc).__name__}); "
                f"check that the server in {ENV_STORE_URL} is running and reachable"
            ) from None

    async def aclose(self) -> None:
        await self._redis.aclose()


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def open_store(url: str | None, *, ttl_seconds: float) -> InMemoryStore | RedisStore:
    """The store a deployment configured: Redis for `redis://` URLs, else in process."""
    if url is None:
        return InMemoryStore(ttl_seconds=ttl_seconds)
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"{ENV_STORE_URL} is set but the redis package is missing: pip install 'vf-mcp[redis]'"
        ) from None
    return RedisStore(url, ttl_seconds=ttl_seconds)


class PrefixedStore:
    """One agent's view of a shared store: every key is prefixed with the agent's name, so the
    same user id on two agents names two conversations. The owner closes the shared store."""

    def __init__(self, store: ConversationStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    async def load(self, key: str) -> ConversationMemory | None:
        return await self._store.load(self._prefix + key)

    async def save(self, key: str, memory: ConversationMemory) -> None:
        await self._store.save(self._prefix + key, memory)

    async def forget(self, key: str) -> None:
        await self._store.forget(self._prefix + key)

    async def aclose(self) -> None:
        return None

    async def get_session_key(self, slot: str) -> str | None:
        return await self._store.get_session_key(self._prefix + slot)

    async def set_session_key(self, slot: str, key: str) -> None:
        await self._store.set_session_key(self._prefix + slot, key)

    async def delete_session_keys(self, user_id: str) -> None:
        await self._store.delete_session_keys(self._prefix + user_id)

    async def find_session_key(self, user_id: str) -> str | None:
        return await self._store.find_session_key(self._prefix + user_id)
