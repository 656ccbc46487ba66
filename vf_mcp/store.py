"""What the server remembers between calls, behind one small interface.

Per conversation (`user_id`): the buttons of the last turn (so `choice` can send a button's stored
request) and the last known variables (for the next turn's diff). In process for now; the interface
is async so a shared store (Redis) can replace it for several workers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

from pydantic import BaseModel, Field

from vf_mcp.summary import Choice


class ConversationMemory(BaseModel):
    """What the server keeps about one conversation."""

    choices: list[Choice] = Field(default_factory=list)
    variables: dict[str, Any] | None = None
    updated_at: float = Field(default_factory=time.time)


class ConversationStore(Protocol):
    async def load(self, key: str) -> ConversationMemory | None: ...

    async def save(self, key: str, memory: ConversationMemory) -> None: ...

    async def forget(self, key: str) -> None: ...


class InMemoryStore:
    """A bounded, expiring dict: the least recently used conversations go first."""

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
