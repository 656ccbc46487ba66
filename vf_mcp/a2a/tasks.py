"""A2A tasks, and the answers to messages already run, kept in vf-mcp's store.

Both live on a `Shelf` (`vf_mcp.shelf`) the store hands out: in process by default, in Redis when
`VF_MCP_STORE_URL` is set (the store's one connection pool, the same TTL), so any worker answers
any task.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task
from a2a.utils.errors import UnsupportedOperationError

from vf_mcp.a2a.errors import END_OF_TURN_STATES, TERMINAL_STATES
from vf_mcp.a2a.parts import IN_REPLY_TO
from vf_mcp.shelf import Shelf

if TYPE_CHECKING:
    from vf_mcp.app import App

CLAIM: Final = "vf_mcp.claim"
"""Where a request's `Claim` rides in the SDK's call context, from the handler to the store."""
_PENDING: Final = b"p"
_STARTED: Final = b"s:"
_DONE: Final = b"d:"
_POLL_SECONDS: Final = 0.25
Lookup = Callable[[str], Awaitable[Task | None]]
"""The caller's task by id (the answer of a started turn, as it is now)."""


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
    """Where one agent's tasks live: its own shelf of the store, wherever the store keeps it."""
    return app.store.shelves(f"a2a:{agent}:")
