"""`ConversationService`: one call per runtime endpoint for every front end, returning models.

It resolves a turn's request into one upstream request, remembers what the next turn needs, and
summarizes the answer. It raises only `VfMcpError`s and knows nothing of MCP.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any

import anyio

from vf_mcp import telemetry
from vf_mcp.config import ENV_STREAM, Settings
from vf_mcp.conversation.inflight import LostTurnRecorder, TurnsInFlight
from vf_mcp.conversation.inputs import (
    TurnRequest,
    build_action,
    check_environment,
    check_user_id,
    check_variables,
    new_user_id,
    scoped,
)
from vf_mcp.conversation.ports import ConversationStorage, write_retrying
from vf_mcp.conversation.results import (
    DeleteResult,
    SessionEventResult,
    StateResult,
    TurnOutcome,
)
from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.domain.turn import TurnResult
from vf_mcp.errors import (
    ConfigurationError,
    InvalidInputError,
    RouteNotFoundError,
    StoreError,
)
from vf_mcp.retry import Attempts
from vf_mcp.summary import summarize_turn
from vf_mcp.voiceflow.actions import BaseAction, EventAction
from vf_mcp.voiceflow.client import StateEvent, StreamEvent, TraceEvent, VoiceflowClient
from vf_mcp.voiceflow.state import InteractConfig, State
from vf_mcp.voiceflow.traces import (
    BaseTrace,
    CompletionTrace,
    SpeakTrace,
    TextTrace,
    mask_split_credentials,
)

ProgressCallback = Callable[[str], Awaitable[None]]
HEARTBEAT_SECONDS = 2.0
STREAM_OFF = (
    "This runtime has no v2 stream route (it answered 404 route-not-found, so the turn did not "
    "run there), so this turn and every later one go to the plain interact endpoint: streaming "
    f"and progress notifications are off for this runtime; set {ENV_STREAM}=false to skip the "
    "attempt"
)
_Answer = tuple[list[BaseTrace], dict[str, Any] | None]


class StreamRoutes:
    """The runtimes found to lack the v2 stream route, by runtime URL, for the server's life.

    One instance is shared by every agent of a server, so agents on one runtime learn it once.
    """

    def __init__(self) -> None:
        self._missing: set[str] = set()

    def available(self, runtime_url: str) -> bool:
        return runtime_url not in self._missing

    def mark_missing(self, runtime_url: str) -> bool:
        """Remember the runtime lacks the route; True the first time (the one to warn about)."""
        first = runtime_url not in self._missing
        self._missing.add(runtime_url)
        return first


def _checked(request: TurnRequest) -> tuple[TurnRequest, str]:
    """`request` with its arguments checked and its user id (a new conversation's chosen now)."""
    user_id = check_user_id(request.user_id) if request.user_id else new_user_id()
    checked = request.model_copy(
        update={
            "user_id": user_id,
            "variables": check_variables(request.variables),
            "environment": check_environment(request.environment),
        }
    )
    return checked, user_id


# Voiceflow documents user ids of at most 128 characters.
UPSTREAM_ID_MAX_LENGTH = 128


class ConversationService:
    """Runs turns and state operations for one Voiceflow agent."""

    def __init__(
        self,
        client: VoiceflowClient,
        store: ConversationStorage,
        settings: Settings,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        id_prefix: str = "",
        stream_routes: StreamRoutes | None = None,
        lost_turns: LostTurnRecorder | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.heartbeat_seconds = heartbeat_seconds
        self.id_prefix = id_prefix
        self.stream_routes = stream_routes or StreamRoutes()
        self.in_flight = TurnsInFlight(store.memory, store.leases, client, recorder=lost_turns)

    def upstream_id(self, user_id: str, namespace: str | None) -> str:
        """The id the runtime and the store see for one caller's `user_id` on this agent.

        Refused past the runtime's documented 128 characters: a longer id fails upstream (or is
        cut, and two conversations would share a state), so the caller learns how long a
        `user_id` may be here, where the prefixes are known.
        """
        upstream = self.id_prefix + scoped(user_id, namespace)
        if len(upstream) > UPSTREAM_ID_MAX_LENGTH:
            room = UPSTREAM_ID_MAX_LENGTH - (len(upstream) - len(user_id))
            parts = [f"user_id {len(user_id)}"]
            if namespace is not None:
                parts.insert(0, f"caller namespace {len(namespace) + 1}")
            if self.id_prefix:
                parts.insert(0, f"agent prefix {len(self.id_prefix)}")
            raise InvalidInputError(
                f"user_id {user_id[:40]!r}... is too long here: the runtime's user id would be "
                f"{len(upstream)} characters ({' + '.join(parts)}), over Voiceflow's limit of "
                f"{UPSTREAM_ID_MAX_LENGTH}; use a user_id of at most {room} characters"
            )
        return upstream

    @property
    def streams(self) -> bool:
        """Turns go over SSE when a project id is configured (the stream endpoint needs it),
        unless VF_MCP_STREAM turns streaming off or the runtime turned out to lack the route."""
        if self.settings.stream is False or not self.settings.project_id:
            return False
        return self.settings.stream is True or self.stream_routes.available(
            self.settings.runtime_url
        )

    # -- turns -------------------------------------------------------------------------------------

    async def interact(
        self,
        request: TurnRequest,
        *,
        namespace: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> TurnOutcome:
        """Run one user turn with one upstream request and summarize the agent's answer.

        `namespace` isolates callers (one per HTTP token): the same `user_id` from two callers
        names two different conversations upstream and in the store.
        """
        request, user_id = _checked(request)
        upstream = self.upstream_id(user_id, namespace)
        memory = await self.store.memory.load(upstream)
        if memory is not None and memory.pending is not None:
            await self.in_flight.settle(user_id, upstream, memory, namespace)
        action, pressed = build_action(request, memory.choices if memory else [])
        before = memory.variables if memory else None
        pending = self.in_flight.pending(request, pressed)
        started = time.perf_counter()
        attempts = Attempts()
        warnings: list[str] = []

        async def send() -> _Answer:
            return await self._send_turn(upstream, action, request, on_progress, warnings, attempts)

        with telemetry.current().turn(self.client.api_version):
            traces, after = await self.in_flight.run(
                user_id, upstream, memory, pending, namespace, send
            )
        try:
            result = self._summary(user_id, request, traces, before, after, started=started)
            result = result.with_warnings(*warnings, first=True)
            remembered = after if after is not None else before
            memory = ConversationMemory(choices=result.choices, variables=remembered)
            result = result.with_warnings(
                *await self._remember_turn(upstream, memory, owner=namespace)
            )
        finally:  # answered (or broken here): the next turn may go
            with anyio.CancelScope(shield=True):
                await self.in_flight.release(upstream, pending.turn_id)
        return TurnOutcome(
            request=request,
            result=result,
            action=action,
            pressed=pressed,
            variables_after=after,
            traces=traces,
            retries=attempts.retries,
        )

    def _summary(
        self,
        user_id: str,
        request: TurnRequest,
        traces: list[BaseTrace],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        started: float,
    ) -> TurnResult:
        return summarize_turn(
            user_id,
            traces,
            variables_before=before,
            variables_after=after,
            latency_ms=(time.perf_counter() - started) * 1000,
            handoff_actions=self.settings.handoff_actions,
            verbosity=request.verbosity,
        )

    async def _remember_turn(
        self, key: str, memory: ConversationMemory, *, owner: str | None
    ) -> list[str]:
        """Keep the turn's memory; the warnings to add to the turn (one, when it was not kept)."""
        try:
            await write_retrying(lambda: self.store.memory.save(key, memory, owner=owner))
        except StoreError as exc:
            # The turn ran: losing its answer would invite the caller to run it twice.
            return [
                f"{exc.message}; this turn's buttons were not remembered, so answer them with "
                "`message` or the button's `request` as `action`"
            ]
        return []

    async def _send_turn(
        self,
        user_id: str,
        action: BaseAction,
        request: TurnRequest,
        on_progress: ProgressCallback | None,
        warnings: list[str],
        attempts: Attempts,
    ) -> _Answer:
        """One upstream request: streamed when possible, else the plain interact endpoint.

        A turn that asks for trace types (`exclude_types`) goes to the plain endpoint: the v2
        stream's body has no `config`, so the runtime's default filter would apply there."""
        if self.streams and request.exclude_types is None:
            try:
                events = self.client.interact_stream(
                    user_id,
                    action,
                    variables=request.variables,
                    environment=request.environment,
                    completion_events=True,
                    state=True,
                    attempts=attempts,
                )
                return await self._read_stream(events, on_progress)
            except RouteNotFoundError as exc:
                self._stream_route_missing(exc, warnings)
        config = None
        if request.exclude_types is not None:
            config = InteractConfig.model_validate({"excludeTypes": list(request.exclude_types)})
        result = await self.client.interact(
            user_id,
            action,
            variables=request.variables,
            config=config,
            environment=request.environment,
            verbose=True,
            attempts=attempts,
        )
        return list(result.traces), result.state.variables if result.state else None

    def _stream_route_missing(self, exc: RouteNotFoundError, warnings: list[str]) -> None:
        """The runtime has no v2 stream route: fall back (once warned), or refuse when forced."""
        if self.client.api_version == "v4":
            raise exc
        if self.settings.stream is True:
            raise ConfigurationError(
                f"The runtime at {self.settings.runtime_url} has no v2 stream route "
                f"({exc.upstream_message}), and {ENV_STREAM}=true requires it: unset "
                f"{ENV_STREAM} to fall back to the plain interact endpoint"
            ) from None
        if self.stream_routes.mark_missing(self.settings.runtime_url):
            warnings.append(STREAM_OFF)

    async def _read_stream(
        self, stream: AsyncGenerator[StreamEvent], on_progress: ProgressCallback | None
    ) -> _Answer:
        traces: list[BaseTrace] = []
        after: list[dict[str, Any] | None] = [None]

        async def take(event: StreamEvent) -> None:
            if isinstance(event, TraceEvent):
                traces.append(event.trace)
                if on_progress is not None and (text := _progress_text(event.trace)):
                    await on_progress(text)
            elif isinstance(event, StateEvent):
                after[0] = event.state.variables

        async def drain() -> None:
            async with aclosing(stream) as events:
                async for event in events:
                    await take(event)

        if on_progress is None:
            await drain()
        else:
            await self._with_heartbeat(drain, on_progress)
        return mask_split_credentials(traces), after[0]

    async def _with_heartbeat(
        self, work: Callable[[], Awaitable[None]], on_progress: ProgressCallback
    ) -> None:
        """Run `work`, reporting progress every few seconds: clients that reset their timeout on
        progress keep a slow answer alive."""
        started = time.perf_counter()

        async def heartbeat() -> None:
            while True:
                await anyio.sleep(self.heartbeat_seconds)
                await on_progress(f"Waiting for the agent ({time.perf_counter() - started:.0f} s)")

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(heartbeat)
                await work()
                group.cancel_scope.cancel()
        except BaseExceptionGroup as group_error:
            # The heartbeat never fails on its own, so the group holds the stream's one error:
            # callers handle our error hierarchy, not anyio's grouping.
            if len(group_error.exceptions) == 1:
                raise group_error.exceptions[0] from None
            raise

    # -- state -------------------------------------------------------------------------------------

    async def get_state(
        self, user_id: str, *, environment: str | None = None, namespace: str | None = None
    ) -> StateResult:
        """The runtime's state; a turn left pending by a worker that died is settled first
        (`vf_mcp.conversation.inflight`): after a cut connection, this is the call that says
        what became of the turn."""
        check_user_id(user_id)
        upstream = self.upstream_id(user_id, namespace)
        memory = await self.store.memory.load(upstream)
        if memory is not None and memory.pending is not None:
            await self.in_flight.settle(user_id, upstream, memory, namespace, reading=True)
        state = await self.client.get_state(upstream, environment=check_environment(environment))
        return StateResult(user_id=user_id, exists=state is not None, state=state)

    async def replace_state(
        self,
        user_id: str,
        state: Mapping[str, Any],
        *,
        environment: str | None = None,
        namespace: str | None = None,
    ) -> StateResult:
        check_user_id(user_id)
        check_environment(environment)
        parsed = parse_whole_state(state)
        upstream = self.upstream_id(user_id, namespace)
        saved = await self.client.replace_state(upstream, parsed, environment=environment)
        await self._remember_variables(
            upstream, saved.variables, keep_choices=False, owner=namespace
        )
        return StateResult(user_id=user_id, exists=True, state=saved)

    async def delete_state(
        self, user_id: str, *, environment: str | None = None, namespace: str | None = None
    ) -> DeleteResult:
        check_user_id(user_id)
        upstream = self.upstream_id(user_id, namespace)
        await self.client.delete_state(upstream, environment=check_environment(environment))
        await self._forget(upstream)
        return DeleteResult(user_id=user_id)

    async def holds(self, user_id: str, namespace: str | None) -> bool:
        """Whether this server remembers the conversation (a turn of it ran here, unexpired)."""
        return await self.store.memory.load(self.upstream_id(user_id, namespace)) is not None

    async def forget(self, user_id: str, namespace: str | None) -> None:
        """Forget what this server keeps of the conversation, leaving the runtime's state as it
        is: its next turn starts from nothing known (no buttons, no session key)."""
        await self._forget(self.upstream_id(user_id, namespace))

    async def _forget(self, upstream: str) -> None:
        await self.store.memory.forget(upstream)
        await self.store.session_keys.delete_session_keys(upstream)

    async def update_variables(
        self,
        user_id: str,
        variables: Mapping[str, Any],
        *,
        environment: str | None = None,
        namespace: str | None = None,
    ) -> StateResult:
        check_user_id(user_id)
        check_environment(environment)
        if not variables:
            raise InvalidInputError("`variables` is empty: give at least one name and value")
        variables = check_variables(variables) or {}
        upstream = self.upstream_id(user_id, namespace)
        state = await self.client.update_variables(upstream, variables, environment=environment)
        await self._remember_variables(
            upstream, state.variables, keep_choices=True, owner=namespace
        )
        return StateResult(user_id=user_id, exists=True, state=state)

    async def emit_event(
        self,
        session_id: str,
        event: str,
        payload: Mapping[str, Any] | None = None,
        *,
        namespace: str | None = None,
    ) -> SessionEventResult:
        """Legacy session ids name live sessions the runtime created, so they are not scoped; on
        v4 `session_id` is one of the caller's user ids, whose session key is looked up in the
        caller's namespace."""
        check_user_id(session_id)
        if not event.strip():
            raise InvalidInputError("`event` is empty: give the name of a custom event")
        payload = check_variables(payload)
        action = EventAction.model_validate(
            {"type": "event", "payload": {**(payload or {}), "event": {"name": event}}}
        )
        result = await self.client.emit_event(
            session_id, action, session_owner=self.upstream_id(session_id, namespace)
        )
        return SessionEventResult(
            session_id=session_id,
            event=event,
            status_code=result.status_code,
            runtime_message=result.message,
        )

    async def _remember_variables(
        self, key: str, variables: dict[str, Any], *, keep_choices: bool, owner: str | None
    ) -> None:
        memory = await self.store.memory.load(key)
        choices = memory.choices if memory and keep_choices else []
        remembered = ConversationMemory(choices=choices, variables=variables)
        await self.store.memory.save(key, remembered, owner=owner)


def parse_whole_state(state: Mapping[str, Any]) -> State:
    """A whole state, refused before any request when it lacks what the runtime requires."""
    from pydantic import ValidationError

    missing = [key for key in ("stack", "storage") if key not in state]
    if missing:
        raise InvalidInputError(
            f"`state` lacks {' and '.join(repr(k) for k in missing)}: replace_state sends "
            "the WHOLE state, and the runtime refuses one without both 'stack' and "
            "'storage'; start from get_state's result, or use update_variables to change "
            "variables only"
        )
    try:
        return State.model_validate(dict(state))
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(
            f"`state` is not a Voiceflow state ({where}: {first['msg']}); send the whole object "
            "from get_state with your changes, including stack, storage and variables"
        ) from None


def _progress_text(trace: BaseTrace) -> str | None:
    if isinstance(trace, TextTrace | SpeakTrace) and trace.payload.message:
        text = " ".join(trace.payload.message.split())
        return f"Agent: {text[:200]}"
    if isinstance(trace, CompletionTrace) and trace.payload.state == "start":
        return "Agent is writing an answer"
    return None
