"""Where v4 session keys are kept between turns, and one start at a time per user.

A session key is a credential bound to one user and environment: it is stored, never shown. The
client keeps them in process by default; the MCP server passes its store instead, so several
workers share them. Keys are kept per user: the runtime ends a user's previous session whenever a
new one starts for that user id, whatever the environment, so the session the user's last turn ran
on is the only live one (`current`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import anyio

from vf_mcp.bounded import OwnedLRU


@dataclass(frozen=True)
class SessionStart:
    """How to open the user's session when no stored key will do."""

    open: Callable[[], Awaitable[str]]  # starts a session upstream, answers its key
    hold_seconds: float  # the longest one start may take; past it another may start instead
    refused: str | None = None  # a key the runtime just refused: never reused


class SessionKeyStore(Protocol):
    async def get_session_key(self, user_id: str, environment: str | None) -> str | None:
        """The user's key for `environment` (None: the traffic split), if it is the current one."""
        ...

    async def set_session_key(self, user_id: str, environment: str | None, key: str) -> None:
        """Keep `key` as the user's current session (any other of the user's keys is dead)."""
        ...

    async def current_session_key(self, user_id: str) -> str | None:
        """The key of the session the user's last turn ran on, whatever its environment."""
        ...

    async def delete_session_keys(self, user_id: str) -> None:
        """Forget every session key of `user_id`."""
        ...

    async def session_key(self, user_id: str, environment: str | None, start: SessionStart) -> str:
        """The user's key for `environment`, or the key of a session `start` opened and stored.

        One start at a time per user, across everyone sharing the store: a start ends the user's
        previous session, so concurrent first turns must share one.
        """
        ...


class _UserSession:
    __slots__ = ("environment", "key")

    def __init__(self, environment: str | None, key: str) -> None:
        self.environment = environment
        self.key = key


class InMemorySessionKeys:
    """Session keys in process, bounded to `max_users`: past it the caller holding the most loses
    its least recently used first (`vf_mcp.bounded.OwnedLRU`), so one caller opening sessions by
    the thousand cannot end another's (a lost key opens a new session, ending the old one).
    `owner_of` names the caller of a user id (by default, all one caller)."""

    def __init__(
        self, *, max_users: int = 10_000, owner_of: Callable[[str], str] | None = None
    ) -> None:
        self._sessions: OwnedLRU[_UserSession] = OwnedLRU(
            max_entries=max_users, max_bytes=64 * 1024 * 1024, ttl_seconds=float("inf")
        )
        self._owner_of = owner_of or (lambda _user_id: "-")
        self._starts = KeyedLocks()

    async def get_session_key(self, user_id: str, environment: str | None) -> str | None:
        session = self._sessions.get(user_id)
        return session.key if session is not None and session.environment == environment else None

    async def set_session_key(self, user_id: str, environment: str | None, key: str) -> None:
        size = len(user_id) + len(key)
        owner = self._owner_of(user_id)
        self._sessions.put(user_id, _UserSession(environment, key), owner=owner, size=size)

    async def current_session_key(self, user_id: str) -> str | None:
        session = self._sessions.get(user_id)
        return session.key if session is not None else None

    async def delete_session_keys(self, user_id: str) -> None:
        self._sessions.pop(user_id)

    async def session_key(self, user_id: str, environment: str | None, start: SessionStart) -> str:
        # One process: a lock per user is the whole story (`hold_seconds` guards other workers).
        async with self._starts.hold(user_id):
            key = await self.get_session_key(user_id, environment)
            if key is not None and key != start.refused:
                return key
            key = await start.open()
            await self.set_session_key(user_id, environment, key)
            return key

    def __repr__(self) -> str:
        return f"InMemorySessionKeys({len(self._sessions)} user(s))"


class KeyedLocks:
    """One lock per key, dropped as soon as nobody holds or waits for it: the map stays as small
    as the number of keys in use right now, however many keys were ever used."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = anyio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
