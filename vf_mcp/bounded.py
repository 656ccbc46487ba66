"""A bounded map in process whose entries belong to callers: one caller cannot evict another's.

Entries are bounded in count and in bytes, and expire a TTL after their last write. Past a bound,
the owner holding the most of what is over (entries, or bytes) loses its least recently used
entry first: a caller filling the store pushes out its own conversations, never those of a
caller that holds less than it does. A plain LRU across callers let one caller opening 1,100
conversations evict another's transcript.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    value: V
    owner: str
    size: int
    expires: float


class OwnedLRU(Generic[V]):
    """Entries by key, each owned by a caller and weighing some bytes."""

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        ttl_seconds: float,
        evictable: Callable[[str, V], bool] | None = None,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self._entries: dict[str, _Entry[V]] = {}
        self._order: dict[str, OrderedDict[str, None]] = {}  # per owner, least recent first
        self._bytes: dict[str, int] = {}
        self.total_bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        # Entries a bound may not take (a run still going, whose worker writes it).
        self._evictable = evictable or (lambda _key, _value: True)
        self._on_evict = on_evict or (lambda _key: None)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, key: str, *, touch: bool = True) -> V | None:
        """The live value at `key`; `touch` makes it the owner's most recently used."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self.pop(key)
            return None
        if touch:
            self._order[entry.owner].move_to_end(key)
        return entry.value

    def put(self, key: str, value: V, *, owner: str, size: int) -> None:
        """Store `value`, then shrink to the bounds; the entry just written goes last."""
        self.pop(key)
        self._entries[key] = _Entry(value, owner, size, time.monotonic() + self._ttl)
        self._order.setdefault(owner, OrderedDict())[key] = None
        self._bytes[owner] = self._bytes.get(owner, 0) + size
        self.total_bytes += size
        self._expire()
        self._shrink(keep=key)

    def pop(self, key: str) -> V | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        order = self._order[entry.owner]
        del order[key]
        self._bytes[entry.owner] -= entry.size
        self.total_bytes -= entry.size
        if not order:
            del self._order[entry.owner], self._bytes[entry.owner]
        return entry.value

    def clear(self) -> None:
        self._entries.clear()
        self._order.clear()
        self._bytes.clear()
        self.total_bytes = 0

    def _expire(self) -> None:
        """Drop expired entries at the front of each owner's order (the rest go when read)."""
        now = time.monotonic()
        for order in list(self._order.values()):
            while order and (oldest := next(iter(order))) in self._entries:
                if self._entries[oldest].expires >= now:
                    break
                self.pop(oldest)
                self._on_evict(oldest)

    def _shrink(self, *, keep: str) -> None:
        while len(self._entries) > self._max_entries or self.total_bytes > self._max_bytes:
            by_count = len(self._entries) > self._max_entries
            victim = self._victim(by_count=by_count, keep=keep)
            if victim is None:
                return  # only what must stay is left: a bound yields rather than lose it
            self.pop(victim)
            self._on_evict(victim)

    def _victim(self, *, by_count: bool, keep: str) -> str | None:
        """The least recently used evictable entry of the owner holding the most."""
        owners = sorted(
            self._order,
            key=lambda o: len(self._order[o]) if by_count else self._bytes[o],
            reverse=True,
        )
        for owner in owners:
            for key in self._order[owner]:
                if key != keep and self._evictable(key, self._entries[key].value):
                    return key
        return None
