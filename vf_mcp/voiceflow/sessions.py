"""Where v4 session keys are kept between turns.

A session key is a credential bound to one user and environment: it is stored, never shown. The
client keeps them in process by default; the MCP server passes its conversation store instead, so
several workers share them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

# User ids may contain `@` (emails) but never `/`, so `/` cannot make one user's prefix another's.
_SEPARATOR = "/"


def session_slot(user_id: str, environment: str | None) -> str:
    """The key under which one user's session in one environment is kept."""
    return f"{user_id}{_SEPARATOR}{environment or ''}"


def slot_prefix(user_id: str) -> str:
    """Every slot of `user_id` starts with this, whatever the environment."""
    return f"{user_id}{_SEPARATOR}"


class SessionKeyStore(Protocol):
    async def get_session_key(self, slot: str) -> str | None: ...

    async def set_session_key(self, slot: str, key: str) -> None: ...

    async def delete_session_keys(self, user_id: str) -> None:
        """Forget every session key of `user_id`."""
        ...

    async def find_session_key(self, user_id: str) -> str | None:
        """Any live session key of `user_id`, whatever its environment."""
        ...


class InMemorySessionKeys:
    """Session keys in process, the least recently set dropped first beyond `max_keys`."""

    def __init__(self, *, max_keys: int = 10_000) -> None:
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._max_keys = max_keys

    async def get_session_key(self, slot: str) -> str | None:
        return self._keys.get(slot)

    async def set_session_key(self, slot: str, key: str) -> None:
        self._keys[slot] = key
        self._keys.move_to_end(slot)
        while len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)

    async def delete_session_keys(self, user_id: str) -> None:
        for slot in [s for s in self._keys if s.startswith(slot_prefix(user_id))]:
            del self._keys[slot]

    async def find_session_key(self, user_id: str) -> str | None:
        prefix = slot_prefix(user_id)
        return next((k for slot, k in self._keys.items() if slot.startswith(prefix)), None)

    def __repr__(self) -> str:
        return f"InMemorySessionKeys({len(self._keys)} session(s))"
