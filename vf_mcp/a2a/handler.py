"""The SDK's request handler with the guarantees vf-mcp gives over MCP.

Before a message runs: the SDK's own checks, read-only mode (no message is taken), the parts (file
parts and malformed data parts get the SDK's errors, and no task is made for them), then the
message's claim: a message already answered in its context gets its answer again and runs
nothing (`vf_mcp.a2a.tasks.ReplyBook`). After a cancel: the server forgets what it kept about the
conversation (buttons, variables, v4 session, transcript), as `delete_state` does, but the runtime
keeps its state.

The SDK's own refusals (a request without a required field, a task it does not know, a message or
a cancel for a task that ended) carry its bare words ("Validation failed", "Task not found"),
which the A2A SDKs show as they are; they are raised again here in lines that say what to send
instead (`vf_mcp.a2a.errors`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Final

from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    SendMessageRequest,
    Task,
)
from a2a.utils.errors import (
    A2AError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.proto_utils import validate_proto_required_fields
from a2a.utils.task import apply_history_length

from vf_mcp.a2a.caller import namespace_of
from vf_mcp.a2a.errors import (
    TERMINAL_STATES,
    incomplete,
    no_such_task,
    nothing_to_cancel,
    task_ended,
)
from vf_mcp.a2a.executor import TurnExecutor, conversation_user_id
from vf_mcp.a2a.parts import read_message
from vf_mcp.a2a.tasks import CLAIM, Claim, ReplyBook, ShelfTaskStore
from vf_mcp.app import App
from vf_mcp.config import ENV_READ_ONLY, ENV_TOOLS

IDLE_TASK_SECONDS: Final = 60.0
"""A task waiting for input is let go from memory after this long: it costs two asyncio tasks
while held, and only one store read to take up again on its next message."""
READ_ONLY = (
    f"This agent takes no messages here: the server is read-only ({ENV_READ_ONLY}) or its "
    f"{ENV_TOOLS} leaves out interact"
)


class TurnRequestHandler(DefaultRequestHandler):
    def __init__(
        self,
        app: App,
        agent: str,
        *,
        card: AgentCard,
        tasks: ShelfTaskStore,
        replies: ReplyBook,
        converses: bool,
    ) -> None:
        super().__init__(
            agent_executor=TurnExecutor(app, agent, replies),
            task_store=tasks,
            agent_card=card,
            interrupted_task_timeout=IDLE_TASK_SECONDS,
        )
        self._app = app
        self._agent = agent
        self._tasks = tasks
        self._replies = replies
        self._converses = converses

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Message | Task:
        claim = await self._admit(params, context)
        if isinstance(claim, Task):
            return apply_history_length(claim, params.configuration)
        try:
            result: Message | Task = await super().on_message_send(params, context)
        except Exception as error:
            await self._replies.release(claim)
            better = await self._explained(error, params.message.task_id, context)
            if better is None:
                raise
            raise better from None
        return result

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        claim = await self._admit(params, context)
        if isinstance(claim, Task):
            yield apply_history_length(claim, params.configuration)
            return
        try:
            async for event in super().on_message_send_stream(params, context):
                yield event
        except Exception as error:
            await self._replies.release(claim)
            better = await self._explained(error, params.message.task_id, context)
            if better is None:
                raise
            raise better from None

    async def _explained(
        self, error: Exception, task_id: str, context: ServerCallContext
    ) -> A2AError | None:
        """The SDK's refusal of a message to a task it does not know, or to one that ended, in a
        line that says what to send instead; None for any other error. Looked up only on this
        path: a message that runs costs no extra read."""
        if not task_id or not isinstance(error, TaskNotFoundError | UnsupportedOperationError):
            return None
        task = await self._tasks.get(task_id, context)
        if task is None:
            return no_such_task(task_id)
        if task.status.state in TERMINAL_STATES:
            return task_ended(task)
        return None

    async def _admit(self, params: SendMessageRequest, context: ServerCallContext) -> Claim | Task:
        """Refuse what must not run; the answer of a message already run; else its claim."""
        try:
            validate_proto_required_fields(params)
        except InvalidParamsError as error:
            raise incomplete(error) from None
        if not self._converses:
            raise UnsupportedOperationError(message=READ_ONLY)
        read_message(params.message)
        message = params.message
        key = ReplyBook.key(resolve_user_scope(context), message.context_id, message.message_id)

        async def lookup(task_id: str) -> Task | None:
            return await self._tasks.get(task_id, context)

        answer = await self._replies.settle(key, lookup)
        if answer is not None:
            return answer
        claim = Claim(key=key, message_id=message.message_id)
        context.state[CLAIM] = claim
        return claim

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        try:
            task: Task | None = await super().on_get_task(params, context)
        except TaskNotFoundError:
            raise no_such_task(params.id) from None
        return task

    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        if not self._converses:
            raise UnsupportedOperationError(message=READ_ONLY)
        try:
            task: Task | None = await super().on_cancel_task(params, context)
        except TaskNotFoundError:
            raise no_such_task(params.id) from None
        except TaskNotCancelableError:
            ended = await self._tasks.get(params.id, context)
            if ended is None or ended.status.state not in TERMINAL_STATES:
                raise
            raise nothing_to_cancel(ended) from None
        if task is not None:
            await self._forget(task.context_id, context)
        return task

    async def _forget(self, context_id: str, context: ServerCallContext) -> None:
        namespace = namespace_of(context)
        user_id = conversation_user_id(context_id)
        await self._app.services[self._agent].forget(user_id, namespace)
        await self._app.transcripts.forget(user_id, agent=self._agent, namespace=namespace)
