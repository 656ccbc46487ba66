"""One agent's view of a shared store: every key starts with the agent's name, so the same user id
on two agents names two conversations (and two v4 sessions)."""

from __future__ import annotations

from vf_mcp.conversation.ports import MemoryStore, TurnLeases
from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.voiceflow.sessions import SessionKeyStore, SessionStart


class PrefixedMemory:
    def __init__(self, inner: MemoryStore, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    async def load(self, key: str) -> ConversationMemory | None:
        return await self._inner.load(self._prefix + key)

    async def save(self, key: str, memory: ConversationMemory, *, owner: str | None = None) -> None:
        await self._inner.save(self._prefix + key, memory, owner=owner)

    async def forget(self, key: str) -> None:
        await self._inner.forget(self._prefix + key)


class PrefixedSessionKeys:
    def __init__(self, inner: SessionKeyStore, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    async def get_session_key(self, user_id: str, environment: str | None) -> str | None:
        return await self._inner.get_session_key(self._prefix + user_id, environment)

    async def set_session_key(self, user_id: str, environment: str | None, key: str) -> None:
        await self._inner.set_session_key(self._prefix + user_id, environment, key)

    async def current_session_key(self, user_id: str) -> str | None:
        return await self._inner.current_session_key(self._prefix + user_id)

    async def delete_session_keys(self, user_id: str) -> None:
        await self._inner.delete_session_keys(self._prefix + user_id)

    async def session_key(self, user_id: str, environment: str | None, start: SessionStart) -> str:
        return await self._inner.session_key(self._prefix + user_id, environment, start)


class PrefixedLeases:
    def __init__(self, inner: TurnLeases, prefix: str) -> None:
        self._inner = inner
        self._prefix = prefix

    async def take(self, key: str, turn_id: str, ttl_seconds: float) -> str | None:
        return await self._inner.take(self._prefix + key, turn_id, ttl_seconds)

    async def renew(self, key: str, turn_id: str, ttl_seconds: float) -> None:
        await self._inner.renew(self._prefix + key, turn_id, ttl_seconds)

    async def release(self, key: str, turn_id: str) -> None:
        await self._inner.release(self._prefix + key, turn_id)

    async def holder(self, key: str) -> str | None:
        return await self._inner.holder(self._prefix + key)
