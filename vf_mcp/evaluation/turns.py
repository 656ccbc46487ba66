"""Running one scripted turn on a `ConversationService` and recording it as a `TranscriptTurn`.

A 429 means the turn did not run, so it is waited out (the runtime's Retry-After, else a short
backoff) and sent again. Any other error ends the turn with the error recorded: the runner decides
what that means for the test.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from pydantic import JsonValue

from vf_mcp.conversation import ConversationService, resolve_choice
from vf_mcp.errors import RateLimitError, VfMcpError
from vf_mcp.evaluation.context import Scope, scope
from vf_mcp.evaluation.script import TurnStep
from vf_mcp.summary import Choice, TurnResult
from vf_mcp.transcripts.models import (
    TranscriptChoice,
    TranscriptTurn,
    deltas_from_turn,
    reply_from_turn,
)
from vf_mcp.voiceflow.variables import without_bookkeeping

MAX_RATE_LIMIT_RETRIES = 5
MAX_WAIT_S = 60.0


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
        max_rate_limit_retries: int = MAX_RATE_LIMIT_RETRIES,
    ) -> None:
        self.service = service
        self.user_id = user_id
        self.suite = suite
        self.test = test
        self.environment = environment
        self.role = role
        self.max_rate_limit_retries = max_rate_limit_retries
        # voiceflow-cli's memory of buttons: the last `choice` trace's buttons, kept until another
        # choice trace replaces them (unlike the service, which keeps only the last turn's).
        self.remembered_buttons: list[dict[str, Any]] = []
        self.last_choices: list[TranscriptChoice] = []

    def scope(self, turn: int) -> Scope:
        return Scope(suite=self.suite, test=self.test, turn=turn, role=self.role)

    async def send(
        self, index: int, step: TurnStep, *, variables: dict[str, JsonValue] | None = None
    ) -> TranscriptTurn:
        merged = {**(variables or {}), **step.variables} or None
        user = step.user_action(merged)
        kwargs: dict[str, Any] = {}
        if step.launch:
            kwargs["launch"] = True
        elif step.message is not None:
            kwargs["message"] = step.message
        elif step.choice is not None:
            kwargs["choice"] = step.choice
            user = user.model_copy(update={"text": self._choice_label(step.choice)})
        elif step.event is not None:
            kwargs["action"] = {"type": "event", "payload": {"event": {"name": step.event}}}
            user = user.model_copy(update={"action": kwargs["action"]})
        elif step.button is not None:
            request = self._button_request(step.button)
            if request is None:
                return TranscriptTurn(
                    index=index, step_id=step.id, user=user, error=self._no_button(step.button)
                )
            kwargs["action"] = request
            user = user.model_copy(update={"action": request})
        else:
            kwargs["action"] = dict(step.action or {})

        started = time.perf_counter()
        retries = 0
        with scope(self.scope(index)):
            while True:
                try:
                    result = await self.service.interact(
                        user_id=self.user_id,
                        variables=merged,
                        environment=self.environment,
                        verbosity="debug",
                        **kwargs,
                    )
                    break
                except RateLimitError as exc:
                    if retries >= self.max_rate_limit_retries:
                        return self._failed(index, step, user, exc, retries, started)
                    retries += 1
                    await anyio.sleep(_wait(exc.retry_after, retries))
                except VfMcpError as exc:
                    return self._failed(index, step, user, exc, retries, started)
        return await self._record(index, step, user, result, retries)

    async def _record(
        self, index: int, step: TurnStep, user: Any, result: TurnResult, retries: int
    ) -> TranscriptTurn:
        reply = reply_from_turn(result)
        for trace in reply.traces or []:
            payload = trace.get("payload")
            if trace.get("type") == "choice" and isinstance(payload, dict):
                buttons = payload.get("buttons")
                if isinstance(buttons, list):
                    self.remembered_buttons = [b for b in buttons if isinstance(b, dict)]
        self.last_choices = reply.choices
        # The service keeps the full variables after each turn (from the same response), so the
        # checks need no extra state request.
        memory = await self.service.store.load(self.user_id)
        variables = memory.variables if memory is not None else None
        return TranscriptTurn(
            index=index,
            step_id=step.id,
            user=user,
            agent=reply,
            status=result.status,
            variables_changed=deltas_from_turn(result),
            variables=_plain(variables),
            latency_ms=result.latency_ms,
            rate_limit_retries=retries,
        )

    def _failed(
        self,
        index: int,
        step: TurnStep,
        user: Any,
        exc: VfMcpError,
        retries: int,
        started: float,
    ) -> TranscriptTurn:
        return TranscriptTurn(
            index=index,
            step_id=step.id,
            user=user,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            rate_limit_retries=retries,
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
            request = button.get("request")
            if not isinstance(request, dict):
                continue
            payload = request.get("payload")
            if isinstance(payload, dict) and payload.get("label") == label:
                return {"type": request.get("type", ""), "payload": payload}
        return None

    def _no_button(self, label: str) -> str:
        if not self.remembered_buttons:
            return f"no buttons available to press {label!r}: no choice trace came before"
        labels = [
            str(b.get("request", {}).get("payload", {}).get("label", b.get("name")))
            for b in self.remembered_buttons
        ]
        return f"no button labelled exactly {label!r}; labels: {', '.join(map(repr, labels))}"


def _wait(retry_after: float | None, attempt: int) -> float:
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_WAIT_S)
    return min(0.5 * 2.0 ** (attempt - 1), MAX_WAIT_S)


def _plain(value: dict[str, Any] | None) -> dict[str, Any] | None:
    import json

    # The runtime's per-turn conversation memory would repeat the transcript in every turn.
    return (
        None if value is None else json.loads(json.dumps(without_bookkeeping(value), default=str))
    )
