"""The SDK's `AgentExecutor` for one Voiceflow agent: an A2A message in, the turns it asks for run.

A context is one conversation: its id is the conversation's `user_id` (hashed when it is not a
valid one), in the caller's namespace. A message in a context the server holds nothing for
launches the conversation, then sends the message's text (or choice, or action) as the first user
turn: the real runtime drops a text sent to a user it does not know, so this is the portable start,
and the reply carries both turns. Later messages are one turn each. While a turn streams, each of
the agent's messages is a working status update; the turn's end is the task's state
(`vf_mcp.a2a.errors`) with the whole reply; an ended conversation adds its transcript as an
artifact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Part, Task, TaskState, TaskStatus

from vf_mcp.a2a.caller import namespace_of
from vf_mcp.a2a.errors import COMPLETED, error_state, turn_state
from vf_mcp.a2a.parts import Ask, read_message, reply_message, transcript_artifact
from vf_mcp.a2a.tasks import CLAIM, Claim, ReplyBook
from vf_mcp.app import App
from vf_mcp.conversation import ConversationService, TurnOutcome, TurnRequest, check_user_id
from vf_mcp.errors import InvalidInputError, StoreError, VfMcpError
from vf_mcp.redaction import redact

WAITING = ("awaiting_user", "awaiting_action")


MAX_CONTEXT_AS_USER_ID = 64
"""Longer context ids are hashed: the runtime's user id also carries the caller's namespace and
an agent prefix, within Voiceflow's 128 characters."""


def conversation_user_id(context_id: str) -> str:
    """The `user_id` of a context's conversation: the context id itself when it is a valid,
    short one (the SDK's are UUIDs), else a stable hash of it."""
    if len(context_id) <= MAX_CONTEXT_AS_USER_ID:
        try:
            return check_user_id(context_id)
        except InvalidInputError:
            pass
    return "a2a-" + hashlib.sha256(context_id.encode()).hexdigest()[:32]


def _turns_asked(ask: Ask, user_id: str, *, known: bool) -> list[TurnRequest]:
    """A known conversation takes the message as one turn; a new one is launched first, unless
    the message is a launch itself (a raw launch action restarts a conversation)."""
    if known or (ask.action is not None and ask.action.get("type") == "launch"):
        return [ask.turn(user_id)]
    if not ask.has_turn:
        return [ask.launch(user_id)]
    return [ask.launch(user_id), ask.turn(user_id, with_variables=False)]


@dataclass
class _Turns:
    """What one message ran so far, and the error that stopped it."""

    outcomes: list[TurnOutcome] = field(default_factory=list)
    error: VfMcpError | None = None


class TurnExecutor(AgentExecutor):
    def __init__(self, app: App, agent: str, replies: ReplyBook) -> None:
        self._app = app
        self._agent = agent
        self._replies = replies

    @property
    def _service(self) -> ConversationService:
        return self._app.services[self._agent]

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message, task_id, context_id = context.message, context.task_id, context.context_id
        assert message is not None, "the SDK runs a message"
        assert task_id, "the SDK names the task"
        assert context_id, "the SDK names the context"
        claim = context.call_context.state.get(CLAIM)
        if isinstance(claim, Claim):
            await self._replies.start(claim, task_id)
        if context.current_task is None:
            # The SDK takes status updates only for a task it was given first.
            submitted = TaskStatus(state=TaskState.TASK_STATE_SUBMITTED)
            first = Task(id=task_id, context_id=context_id, status=submitted, history=[message])
            await event_queue.enqueue_event(first)
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.start_work()
        turns = _Turns()
        namespace = namespace_of(context.call_context)
        try:
            await self._run(context, updater, namespace, turns)
        except VfMcpError as error:
            turns.error = error
        except Exception as error:  # the task must answer the message whatever broke
            turns.error = VfMcpError(f"The turn failed inside vf-mcp ({type(error).__name__})")
        await self._finish(updater, turns, namespace, in_reply_to=message.message_id)

    async def _run(
        self,
        context: RequestContext,
        updater: TaskUpdater,
        namespace: str | None,
        turns: _Turns,
    ) -> None:
        assert context.message is not None
        assert context.context_id
        ask = read_message(context.message)
        user_id = conversation_user_id(context.context_id)
        service = self._service
        requests = _turns_asked(ask, user_id, known=await service.holds(user_id, namespace))

        async def progress(text: str) -> None:
            note = updater.new_agent_message([Part(text=redact(text))])
            await updater.update_status(TaskState.TASK_STATE_WORKING, message=note)

        for request in requests:
            outcome = await service.interact(request, namespace=namespace, on_progress=progress)
            outcome = await self._record(outcome, namespace)
            turns.outcomes.append(outcome)
            if outcome.result.status not in WAITING:
                break

    async def _record(self, outcome: TurnOutcome, namespace: str | None) -> TurnOutcome:
        """Add the turn to the caller's transcript; the outcome, with a warning when the store
        failed (the turn ran all the same)."""
        try:
            await self._app.transcripts.record(outcome, agent=self._agent, namespace=namespace)
        except StoreError as error:
            warning = f"{error.message}; the transcript lacks this turn"
            return replace(outcome, result=outcome.result.with_warnings(warning))
        return outcome

    async def _finish(
        self, updater: TaskUpdater, turns: _Turns, namespace: str | None, *, in_reply_to: str
    ) -> None:
        last = turns.outcomes[-1].result if turns.outcomes else None
        error = turns.error
        if error is not None:
            state = error_state(error)
        else:
            assert last is not None, "a message without an error ran a turn"
            state = turn_state(last.status)
        if error is None and state == COMPLETED and last is not None and last.status == "ended":
            transcript = await self._app.transcripts.get(
                last.user_id, agent=self._agent, namespace=namespace
            )
            if transcript is not None:
                artifact = transcript_artifact(transcript)
                await updater.add_artifact(
                    list(artifact.parts),
                    artifact_id=artifact.artifact_id,
                    name=artifact.name,
                    last_chunk=True,
                )
        reply = reply_message(
            turns.outcomes,
            task_id=updater.task_id,
            context_id=updater.context_id,
            in_reply_to=in_reply_to,
            error=error,
        )
        await updater.update_status(state, message=reply)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """End the task; the handler then forgets the conversation (`vf_mcp.a2a.handler`)."""
        assert context.task_id
        assert context.context_id
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        note = updater.new_agent_message(
            [Part(text="Cancelled: vf-mcp forgot this conversation (the runtime keeps its state)")]
        )
        await updater.cancel(note)
