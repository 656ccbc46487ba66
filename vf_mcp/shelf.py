"""`Shelf`: the storage a front end needs for records of its own, beside the conversations.

The A2A front end keeps its tasks and the answers of messages already run on one
(`vf_mcp.a2a.tasks`); the store's adapters fill it (`vf_mcp.store`: in process, or in the store's
Redis with its TTL), so a front end says what it needs and never which backend it runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Shelf(Protocol):
    """Expiring bytes by key, and groups of keys (an owner's tasks) to list."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def add(self, key: str, value: bytes) -> bool:
        """Put `value` only if `key` holds nothing; whether it did."""
        ...

    async def delete(self, key: str) -> None: ...

    async def index(self, group: str, member: str) -> None: ...

    async def members(self, group: str) -> list[str]: ...


Shelves = Callable[[str], Shelf]
"""A shelf by name: each name (`a2a:<agent>:`) is a keyspace of its own, expiring with the store's
TTL."""
