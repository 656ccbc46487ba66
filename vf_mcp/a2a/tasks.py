"""A2A tasks, and the answers to messages already run, kept in vf-mcp's store.

Both live on a `Shelf`: in process by default, in Redis when `VF_MCP_STORE_URL` is set (through the
store's own `RedisBackend`: one connection pool, the same TTL), so any worker answers any task.
Every key names the agent and the task's owner (the caller's namespace, `vf_mcp.callers`), so one
caller never sees another's task: a task of someone else is simply not found.

`ReplyBook` is what makes a resent message run nothing: a message is claimed by (owner, context,
message id) before it runs; its task's answer is kept when the task store saves the status that
answers it (the reply's `inReplyTo`); a resend gets that answer, and waits for it while the first
delivery still runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import anyio
from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task
from a2a.utils.errors import UnsupportedOperationError

from vf_mcp.a2a.errors import END_OF_TURN_STATES, TERMINAL_STATES
from vf_mcp.a2a.parts import IN_REPLY_TO

if TYPE_CHECKING:
    from vf_mcp.app import App
    from vf_mcp.store.redis_backend import RedisBackend

CLAIM: Final = "vf_mcp.claim"
"""Where a request's `Claim` rides in the SDK's call context, from the handler to the store."""
_PENDING: Final = b"p"
_STARTED: Final = b"s:"
_DONE: Final = b"d:"
_POLL_SECONDS: Final = 0.25
Lookup = Callable[[str], Awaitable[Task | None]]
"""The caller's task by id (the answer of a started turn, as it is now)."""


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


class MemoryShelf:
    """In process: bounded, least recently written dropped first, expiring after the TTL."""

    def __init__(self, *, ttl_seconds: float, max_items: int = 20_000) -> None:
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._groups: dict[str, OrderedDict[str, float]] = {}
        self._ttl = ttl_seconds
        self._max = max_items

    async def get(self, key: str) -> bytes | None:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return found[1]

    async def put(self, key: str, value: bytes) -> None:
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def add(self, key: str, value: bytes) -> bool:
        if await self.get(key) is not None:
            return False
        await self.put(key, value)
        return True

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)

    async def index(self, group: str, member: str) -> None:
        members = self._groups.setdefault(group, OrderedDict())
        members[member] = time.monotonic() + self._ttl
        members.move_to_end(member)
        while len(members) > self._max:
            members.popitem(last=False)

    async def members(self, group: str) -> list[str]:
        now = time.monotonic()
        members = self._groups.get(group, OrderedDict())
        for stale in [m for m, expires in members.items() if expires < now]:
            del members[stale]
        return list(members)


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


@dataclass
class Claim:
    """A request's hold on its message: whether its turn started, so a failure can let go."""

    key: str
    message_id: str
    started: bool = False


class ReplyBook:
    """The answers of messages already run, by (owner, context, message id)."""

    def __init__(self, shelf: Shelf, *, patience_seconds: float) -> None:
        self._shelf = shelf
        self._patience = patience_seconds
        self._wakers: dict[str, anyio.Event] = {}

    @staticmethod
    def key(owner: str, context_id: str, message_id: str) -> str:
        # Hashed: client-chosen ids could otherwise run into each other's keys.
        digest = hashlib.sha256(json.dumps([context_id, message_id]).encode()).hexdigest()
        return f"reply:{owner}:{digest[:32]}"

    async def settle(self, key: str, lookup: Lookup) -> Task | None:
        """None when this request now holds the message and must run it; else its answer."""
        deadline = time.monotonic() + self._patience
        while True:
            if await self._shelf.add(key, _PENDING):
                return None
            record = await self._shelf.get(key)
            if record is None:
                continue  # let go between our two reads: claim it again
            answer, running = await _answer(record, lookup)
            if answer is not None:
                return answer
            if time.monotonic() >= deadline:
                if running is not None:
                    return running
                raise UnsupportedOperationError(
                    message="This message is still being answered; send it again later"
                )
            await self._wait(key, deadline)

    async def start(self, claim: Claim, task_id: str) -> None:
        claim.started = True
        await self._shelf.put(claim.key, _STARTED + task_id.encode())

    async def saw(self, task: Task, context: ServerCallContext) -> None:
        """Keep `task` as the answer when its status answers the message this request claimed."""
        claim = context.state.get(CLAIM)
        if not isinstance(claim, Claim) or task.status.state not in END_OF_TURN_STATES:
            return
        answers = task.status.message.metadata.fields.get(IN_REPLY_TO)
        if answers is None or answers.string_value != claim.message_id:
            return
        answer = Task()
        answer.CopyFrom(task)
        answer.ClearField("history")  # the answer, not the whole conversation again
        await self._shelf.put(claim.key, _DONE + answer.SerializeToString())
        self._wake(claim.key)

    async def release(self, claim: Claim) -> None:
        """Let go of a message whose turn never started, so sending it again runs it."""
        if not claim.started:
            await self._shelf.delete(claim.key)
            self._wake(claim.key)

    async def _wait(self, key: str, deadline: float) -> None:
        # Woken at once by this worker's answer; another worker's is seen at the next look.
        waker = self._wakers.setdefault(key, anyio.Event())
        with anyio.move_on_after(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
            await waker.wait()
        if not waker.is_set() and self._wakers.get(key) is waker:
            # Answered elsewhere (or not yet): no waker is kept for a key no one may wake.
            del self._wakers[key]

    def _wake(self, key: str) -> None:
        waker = self._wakers.pop(key, None)
        if waker is not None:
            waker.set()


async def _answer(record: bytes, lookup: Lookup) -> tuple[Task | None, Task | None]:
    """(the kept answer, or the task a started turn ran in as it is now)."""
    if record.startswith(_DONE):
        return Task.FromString(record[len(_DONE) :]), None
    if record.startswith(_STARTED):
        task = await lookup(record[len(_STARTED) :].decode())
        # A task the SDK ended itself (cancelled, failed) has no answer to wait for.
        if task is not None and task.status.state in TERMINAL_STATES:
            return task, task
        return None, task
    return None, None


class ShelfTaskStore(TaskStore):
    """The SDK's task store on a `Shelf`, by owner; saving an answer also tells the book."""

    def __init__(self, shelf: Shelf, replies: ReplyBook | None = None) -> None:
        self._shelf = shelf
        self._replies = replies

    async def save(self, task: Task, context: ServerCallContext) -> None:
        owner = resolve_user_scope(context)
        await self._shelf.put(f"task:{owner}:{task.id}", task.SerializeToString())
        await self._shelf.index(f"tasks:{owner}", task.id)
        if self._replies is not None:
            await self._replies.saw(task, context)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        data = await self._shelf.get(f"task:{resolve_user_scope(context)}:{task_id}")
        return Task.FromString(data) if data is not None else None

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        # Filtering, ordering and page tokens are the SDK's own, over this owner's tasks.
        page = InMemoryTaskStore(owner_resolver=lambda _: "", use_copying=False)
        for task_id in await self._shelf.members(f"tasks:{resolve_user_scope(context)}"):
            task = await self.get(task_id, context)
            if task is not None:
                await page.save(task, context)
        return await page.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self._shelf.delete(f"task:{resolve_user_scope(context)}:{task_id}")


def agent_shelf(app: App, agent: str) -> Shelf:
    """Where one agent's tasks live: the store's Redis when it has one, else this process."""
    from vf_mcp.store.redis_backend import RedisBackend

    backend = app.store.backend
    if isinstance(backend, RedisBackend):
        return RedisShelf(backend, f"{backend.prefix}a2a:{agent}:")
    return MemoryShelf(ttl_seconds=app.settings.store_ttl)
