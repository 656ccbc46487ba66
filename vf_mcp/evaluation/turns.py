"""Running one scripted turn on a `ConversationService` and recording it as a `TranscriptTurn`.

Retries are the client's alone (`vf_mcp.retry`): a 429 or a connection that could not be opened
is sent again there, within VOICEFLOW_MAX_RETRIES, and the turn's record says how often. Any other
error ends the turn with the error recorded: the runner decides what that means for the test.

A turn's record also keeps its trajectory (`trajectory`: every trace type is asked for when the
suite checks flows, blocks or tools) and the knowledge it retrieved (`grounding`). When the agent
waits on a custom action that a mock answers (`mocks`), the mock's reply is sent at once and its
answer joins the same turn. Every request counts against the run's turn cap (`TurnBudget`).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import JsonValue

from vf_mcp.conversation import ConversationService, TurnOutcome, TurnRequest, resolve_choice
from vf_mcp.domain.transcript import HostReply, TranscriptTurn, UserAction
from vf_mcp.domain.turn import Choice
from vf_mcp.errors import VfMcpError
from vf_mcp.evaluation import tracing
from vf_mcp.evaluation.context import Scope, TurnClock, scope
from vf_mcp.evaluation.grounding import chunks_of
from vf_mcp.evaluation.mocks import MAX_HOST_REPLIES, ActionResponder, merge_turns
from vf_mcp.evaluation.script import ActionMock, TurnStep
from vf_mcp.evaluation.trajectory import trajectory_of
from vf_mcp.evaluation.trials import TurnBudget
from vf_mcp.transcripts.records import transcript_turn
from vf_mcp.voiceflow.traces import Button, ChoiceTrace


class ConversationDriver:
    """One user's side of a conversation: sends turns, remembers what the next turn needs."""

    def __init__(
        self,
        service: ConversationService,
        user_id: str,
        *,
        suite: str,
        test: str,
        environment: str | None = None,
        role: str = "target",
        exclude_types: list[str] | None = None,
        responder: ActionResponder | None = None,
        budget: TurnBudget | None = None,
        namespace: str | None = None,
        clock: TurnClock | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.namespace = namespace
        self.user_id = user_id
        self.suite = suite
        self.test = test
        self.environment = environment
        self.role = role
        self.exclude_types = exclude_types
        self.responder = responder
        self.budget = budget
        # voiceflow-cli's memory of buttons: the last `choice` trace's buttons, kept until another
        # choice trace replaces them (unlike the service, which keeps only the last turn's).
        self.remembered_buttons: list[Button] = []
        self.last_choices: list[Choice] = []

    def scope(self, turn: int) -> Scope:
        return Scope(suite=self.suite, test=self.test, turn=turn, role=self.role)

    async def send(
        self, index: int, step: TurnStep, *, variables: dict[str, JsonValue] | None = None
    ) -> TranscriptTurn:
        merged = {**(variables or {}), **step.variables} or None
        user = step.user_action(merged)
        request = TurnRequest(
            user_id=self.user_id,
            variables=merged,
            environment=self.environment,
            exclude_types=self.exclude_types,
        )
        if step.launch:
            request = request.model_copy(update={"launch": True})
        elif step.message is not None:
            request = request.model_copy(update={"message": step.message})
        elif step.choice is not None:
            request = request.model_copy(update={"choice": step.choice})
            user = user.model_copy(update={"text": self._choice_label(step.choice)})
        else:
            action = self._step_action(step)
            if action is None:
                return TranscriptTurn(
                    index=index, step_id=step.id, user=user, error=self._no_button(str(step.button))
                )
            request = request.model_copy(update={"action": action})
            user = user.model_copy(update={"action": action})
        turn = await self._turn(index, step, user, request)
        return await self._answer_actions(turn, request)

    async def _turn(
        self, index: int, step: TurnStep, user: UserAction, request: TurnRequest
    ) -> TranscriptTurn:
        """One request to the agent, recorded; `BudgetExhausted` at the run's cap."""
        if self.budget is not None:
            self.budget.take()
        started = time.perf_counter()
        with scope(self.scope(index)), tracing.turn_span(index, self.role) as span:
            try:
                outcome = await self.service.interact(request, namespace=self.namespace)
            except VfMcpError as exc:
                turn = self._failed(index, step, user, exc, started)
            else:
                turn = self._record(index, step, user, outcome)
            if self.clock is not None:
                latency = self.clock.latency(self.scope(index), turn.latency_ms)
                turn = turn.model_copy(update={"latency_ms": latency})
            tracing.finish_turn(span, turn)
        return turn

    async def _answer_actions(self, turn: TranscriptTurn, request: TurnRequest) -> TranscriptTurn:
        """Send the mocks' replies while the agent waits on a mocked custom action."""
        for _ in range(MAX_HOST_REPLIES):
            mock = self.responder.mock_for(turn) if self.responder and not turn.error else None
            if mock is None:
                return turn
            answer = await self._turn(
                turn.index, TurnStep(id=turn.step_id, action=mock.reply),
                UserAction(kind="action", action=dict(mock.reply)), self._reply(request, mock),
            )  # fmt: skip
            reply = HostReply(
                action=mock.name, reply=dict(mock.reply), variables=mock.variables or None
            )
            turn = merge_turns(turn, answer, reply)
        return turn.model_copy(
            update={
                "error": f"the agent asked for custom actions {MAX_HOST_REPLIES} times in a row "
                "and mocks answered each: check the agent for a loop, or the mocks' replies"
            }
        )

    @staticmethod
    def _reply(request: TurnRequest, mock: ActionMock) -> TurnRequest:
        return TurnRequest(
            user_id=request.user_id,
            action=dict(mock.reply),
            variables=dict(mock.variables) or None,
            environment=request.environment,
            exclude_types=request.exclude_types,
        )

    def _step_action(self, step: TurnStep) -> dict[str, Any] | None:
        """The raw action of an event, button or action step (None: no such button)."""
        if step.event is not None:
            return {"type": "event", "payload": {"event": {"name": step.event}}}
        if step.button is not None:
            return self._button_request(step.button)
        return dict(step.action or {})

    def _record(
        self, index: int, step: TurnStep, user: UserAction, outcome: TurnOutcome
    ) -> TranscriptTurn:
        for trace in outcome.traces:
            # A choice trace without buttons (only legacy `choices`) leaves the last ones standing.
            if isinstance(trace, ChoiceTrace) and "buttons" in trace.payload.model_fields_set:
                self.remembered_buttons = list(trace.payload.buttons)
        turn = transcript_turn(outcome, user, index=index, step_id=step.id, keep_traces=True)
        turn.trajectory = trajectory_of(outcome.traces, requested=self.exclude_types is not None)
        turn.retrieval = chunks_of(outcome.traces)
        self.last_choices = turn.agent.choices
        return turn

    def _failed(
        self, index: int, step: TurnStep, user: UserAction, exc: VfMcpError, started: float
    ) -> TranscriptTurn:
        return TranscriptTurn(
            index=index,
            step_id=step.id,
            user=user,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            rate_limit_retries=exc.retries,
            error=f"{type(exc).__name__}: {exc.message}",
        )

    def _choice_label(self, choice: str | int) -> str | None:
        offered = [Choice(number=c.number, label=c.label, request={}) for c in self.last_choices]
        try:
            return resolve_choice(choice, offered).label
        except VfMcpError:
            return None

    def _button_request(self, label: str) -> dict[str, Any] | None:
        # Exact, case-sensitive match on the request's payload label, as voiceflow-cli does; the
        # action sent is the request's type and payload only.
        for button in self.remembered_buttons:
            payload = button.request.get("payload")
            if isinstance(payload, dict) and payload.get("label") == label:
                return {"type": button.request.get("type", ""), "payload": payload}
        return None

    def _no_button(self, label: str) -> str:
        if not self.remembered_buttons:
            return f"no buttons available to press {label!r}: no choice trace came before"
        labels = [_button_label(b) for b in self.remembered_buttons]
        return f"no button labelled exactly {label!r}; labels: {', '.join(map(repr, labels))}"


def _button_label(button: Button) -> str:
    """The label a button's request carries (what a step's `button` must name), else its name."""
    payload = button.request.get("payload")
    return str(payload.get("label", button.name)) if isinstance(payload, dict) else button.name
