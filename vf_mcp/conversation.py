"""Conversation logic shared by every front end: one call per runtime endpoint, returning models.

`ConversationService` resolves a turn's arguments (message, choice by label or number, launch, or a
raw action) into one upstream request, remembers what the next turn needs, and summarizes the
answer. It raises only `VfMcpError`s and knows nothing of MCP: the server dispatches to it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any

import anyio
from pydantic import BaseModel, Field

from vf_mcp.config import ENV_STREAM, Settings
from vf_mcp.errors import ConfigurationError, InvalidInputError, RouteNotFoundError, StoreError
from vf_mcp.store import ConversationMemory, ConversationStore
from vf_mcp.summary import Choice, TurnResult, Verbosity, summarize_turn
from vf_mcp.voiceflow.actions import (
    BaseAction,
    EventAction,
    GeneralAction,
    LaunchAction,
    TextAction,
)
from vf_mcp.voiceflow.client import EventResult, StateEvent, TraceEvent, VoiceflowClient
from vf_mcp.voiceflow.state import State
from vf_mcp.voiceflow.traces import BaseTrace, CompletionTrace, SpeakTrace, TextTrace

ProgressCallback = Callable[[str], Awaitable[None]]

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+\-]*$"
# The runtime takes ids up to 128 characters; 100 leaves room for a caller's namespace prefix.
USER_ID_MAX_LENGTH = 100
_USER_ID = re.compile(USER_ID_PATTERN)
ENVIRONMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_ENVIRONMENT = re.compile(ENVIRONMENT_PATTERN)
HEARTBEAT_SECONDS = 2.0
MAX_VARIABLES_BYTES = 64 * 1024


class StateResult(BaseModel):
    """A user's conversation state as the runtime holds it."""

    user_id: str
    exists: bool = Field(description="False when the runtime holds no state for this user")
    state: State | None = None


class DeleteResult(BaseModel):
    user_id: str
    deleted: bool = True


class SessionEventResult(BaseModel):
    session_id: str
    event: str
    status_code: int
    runtime_message: str


STREAM_OFF = (
    "This runtime has no v2 stream route (it answered 404 route-not-found, so the turn did not "
    "run there), so this turn and every later one go to the plain interact endpoint: streaming "
    f"and progress notifications are off for this runtime; set {ENV_STREAM}=false to skip the "
    "attempt"
)


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


def scoped(user_id: str, namespace: str | None) -> str:
    """The id the runtime and the store see: the caller's namespace, then the caller's id."""
    return user_id if namespace is None else f"{namespace}.{user_id}"


def new_user_id() -> str:
    return f"vf-mcp-{secrets.token_hex(6)}"


def check_user_id(user_id: str) -> str:
    if not 1 <= len(user_id) <= USER_ID_MAX_LENGTH or not _USER_ID.match(user_id):
        raise InvalidInputError(
            f"user_id {user_id[:40]!r} is not valid: use 1-{USER_ID_MAX_LENGTH} characters from "
            "letters, digits and _ . : @ + -, starting with a letter or digit, or leave it out "
            "to start a new conversation"
        )
    return user_id


def check_environment(environment: str | None) -> str | None:
    """An environment alias or version id; it travels in a header, so only plain characters."""
    if environment is not None and not _ENVIRONMENT.match(environment):
        raise InvalidInputError(
            f"environment {environment[:40]!r} is not valid: use an alias such as development, "
            "staging or production, or a version id (letters, digits, _ . -; at most 64)"
        )
    return environment


def check_variables(variables: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Variables must be JSON (they travel as JSON) and small: they live in every turn's state."""
    if variables is None:
        return None
    try:
        encoded = json.dumps(dict(variables), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"`variables` must be JSON values (strings, numbers, booleans, null, lists, objects): "
            f"{exc}"
        ) from None
    if len(encoded) > MAX_VARIABLES_BYTES:
        raise InvalidInputError(
            f"`variables` is {len(encoded)} bytes of JSON, over the {MAX_VARIABLES_BYTES} byte "
            "limit; send only what the agent needs, or fewer variables per call"
        )
    return dict(variables)


def resolve_choice(choice: str | int, offered: list[Choice]) -> Choice:
    """Find the button `choice` names: its 1-based number, or its label (case-insensitive)."""
    if not offered:
        raise InvalidInputError(
            "This server knows of no buttons offered in this conversation's last turn (it offered "
            "none, or another server process or a restart served it: VF_MCP_STORE_URL shares "
            "that memory), so there is nothing to choose; send a `message`, the button's "
            "`request` as `action`, or `launch` to start over"
        )
    options = ", ".join(f"{c.number}) {c.label}" for c in offered)
    wanted = choice.strip() if isinstance(choice, str) else choice
    if isinstance(wanted, str) and wanted.isdigit():
        wanted = int(wanted)
    if isinstance(wanted, int):
        for option in offered:
            if option.number == wanted:
                return option
        raise InvalidInputError(f"There is no choice number {wanted}; valid choices: {options}")
    label = " ".join(wanted.split()).casefold()
    for option in offered:
        if " ".join(option.label.split()).casefold() == label:
            return option
    raise InvalidInputError(f"No button is labelled {choice!r}; valid choices: {options}")


def _progress_text(trace: BaseTrace) -> str | None:
    if isinstance(trace, TextTrace | SpeakTrace) and trace.payload.message:
        text = " ".join(trace.payload.message.split())
        return f"Agent: {text[:200]}"
    if isinstance(trace, CompletionTrace) and trace.payload.state == "start":
        return "Agent is writing an answer"
    return None


class ConversationService:
    """Runs turns and state operations for one Voiceflow agent."""

    def __init__(
        self,
        client: VoiceflowClient,
        store: ConversationStore,
        settings: Settings,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        id_prefix: str = "",
        stream_routes: StreamRoutes | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.heartbeat_seconds = heartbeat_seconds
        self.id_prefix = id_prefix
        self.stream_routes = stream_routes or StreamRoutes()

    def upstream_id(self, user_id: str, namespace: str | None) -> str:
        """The id the runtime and the store see for one caller's `user_id` on this agent."""
        return self.id_prefix + scoped(user_id, namespace)

    @property
    def streams(self) -> bool:
        """Turns go over SSE when a project id is configured (the stream endpoint needs it),
        unless VF_MCP_STREAM turns streaming off or the runtime turned out to lack the route."""
        if self.settings.stream is False or not self.settings.project_id:
            return False
        return self.settings.stream is True or self.stream_routes.available(
            self.settings.runtime_url
        )

    @staticmethod
    def build_action(
        *,
        offered: list[Choice],
        message: str | None,
        choice: str | int | None,
        launch: bool,
        action: Mapping[str, Any] | None,
    ) -> BaseAction:
        """The one action a turn sends; exactly one way of saying it must be given."""
        given = [
            name
            for name, value in (
                ("message", message),
                ("choice", choice),
                ("launch", launch or None),
                ("action", action),
            )
            if value is not None
        ]
        if len(given) != 1:
            which = " and ".join(given) if given else "none"
            raise InvalidInputError(
                f"Give exactly one of message, choice, launch=true or action (got {which}); "
                "start a conversation with launch=true"
            )
        if message is not None:
            return TextAction(payload=message)
        if launch:
            return LaunchAction()
        if action is not None:
            if not isinstance(action.get("type"), str) or not action["type"]:
                raise InvalidInputError(
                    "`action` must be a Voiceflow action object with a string `type`, e.g. "
                    '{"type": "event", "payload": {"event": {"name": "checkout"}}}'
                )
            # Verbatim: intents, events, path-*, custom action results, types we never saw.
            return GeneralAction.model_validate(dict(action))
        assert choice is not None
        picked = resolve_choice(choice, offered)
        return GeneralAction.model_validate(picked.request)

    async def interact(
        self,
        *,
        user_id: str | None = None,
        message: str | None = None,
        choice: str | int | None = None,
        launch: bool = False,
        action: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        environment: str | None = None,
        verbosity: Verbosity = "standard",
        on_progress: ProgressCallback | None = None,
        namespace: str | None = None,
    ) -> TurnResult:
        """Run one user turn with one upstream request and summarize the agent's answer.

        `namespace` isolates callers (one per HTTP token): the same `user_id` from two callers
        names two different conversations upstream and in the store.
        """
        user_id = check_user_id(user_id) if user_id is not None else new_user_id()
        variables = check_variables(variables)
        environment = check_environment(environment)
        upstream = self.upstream_id(user_id, namespace)
        memory = await self.store.load(upstream)
        request = self.build_action(
            offered=memory.choices if memory else [],
            message=message,
            choice=choice,
            launch=launch,
            action=action,
        )
        before = memory.variables if memory else None
        started = time.perf_counter()
        warnings: list[str] = []
        traces, after = await self._run_turn(
            upstream, request, variables, environment, on_progress, warnings
        )
        latency_ms = (time.perf_counter() - started) * 1000
        turn = summarize_turn(
            user_id,
            traces,
            variables_before=before,
            variables_after=after,
            latency_ms=latency_ms,
            handoff_actions=self.settings.handoff_actions,
            verbosity=verbosity,
        )
        turn.warnings[:0] = warnings
        try:
            await self.store.save(
                upstream,
                ConversationMemory(
                    choices=turn.choices, variables=after if after is not None else before
                ),
            )
        except StoreError as exc:
            # The turn ran: losing its answer would invite the caller to run it twice.
            turn.warnings.append(
                f"{exc.message}; this turn's buttons were not remembered, so answer them with "
                "`message` or the button's `request` as `action`"
            )
        return turn

    async def _run_turn(
        self,
        user_id: str,
        request: BaseAction,
        variables: Mapping[str, Any] | None,
        environment: str | None,
        on_progress: ProgressCallback | None,
        warnings: list[str],
    ) -> tuple[list[BaseTrace], dict[str, Any] | None]:
        """One upstream request: streamed when possible, else the plain interact endpoint."""
        if self.streams:
            try:
                return await self._stream_turn(
                    user_id, request, variables, environment, on_progress
                )
            except RouteNotFoundError as exc:
                if self.client.api_version == "v4":
                    raise
                if self.settings.stream is True:
                    raise ConfigurationError(
                        f"The runtime at {self.settings.runtime_url} has no v2 stream route "
                        f"({exc.upstream_message}), and {ENV_STREAM}=true requires it: unset "
                        f"{ENV_STREAM} to fall back to the plain interact endpoint"
                    ) from None
                if self.stream_routes.mark_missing(self.settings.runtime_url):
                    warnings.append(STREAM_OFF)
        result = await self.client.interact(
            user_id, request, variables=variables, environment=environment, verbose=True
        )
        return list(result.traces), result.state.variables if result.state else None

    async def _stream_turn(
        self,
        user_id: str,
        request: BaseAction,
        variables: Mapping[str, Any] | None,
        environment: str | None,
        on_progress: ProgressCallback | None,
    ) -> tuple[list[BaseTrace], dict[str, Any] | None]:
        traces: list[BaseTrace] = []
        after: dict[str, Any] | None = None
        stream = self.client.interact_stream(
            user_id,
            request,
            variables=variables,
            environment=environment,
            completion_events=True,
            state=True,
        )
        if on_progress is None:
            async with aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, TraceEvent):
                        traces.append(event.trace)
                    elif isinstance(event, StateEvent):
                        after = event.state.variables
            return traces, after

        started = time.perf_counter()

        async def heartbeat() -> None:
            # Clients that reset their timeout on progress keep a slow answer alive.
            while True:
                await anyio.sleep(self.heartbeat_seconds)
                waited = time.perf_counter() - started
                await on_progress(f"Waiting for the agent ({waited:.0f} s)")

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(heartbeat)
                async with aclosing(stream) as events:
                    async for event in events:
                        if isinstance(event, TraceEvent):
                            traces.append(event.trace)
                            if (text := _progress_text(event.trace)) is not None:
                                await on_progress(text)
                        elif isinstance(event, StateEvent):
                            after = event.state.variables
                group.cancel_scope.cancel()
        except BaseExceptionGroup as group_error:
            # The heartbeat never fails on its own, so the group holds the stream's one error:
            # callers handle our error hierarchy, not anyio's grouping.
            if len(group_error.exceptions) == 1:
                raise group_error.exceptions[0] from None
            raise
        return traces, after

    async def get_state(
        self, user_id: str, *, environment: str | None = None, namespace: str | None = None
    ) -> StateResult:
        check_user_id(user_id)
        state = await self.client.get_state(
            self.upstream_id(user_id, namespace), environment=check_environment(environment)
        )
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
        missing = [key for key in ("stack", "storage") if key not in state]
        if missing:
            raise InvalidInputError(
                f"`state` lacks {' and '.join(repr(k) for k in missing)}: replace_state sends "
                "the WHOLE state, and the runtime refuses one without both 'stack' and "
                "'storage'; start from get_state's result, or use update_variables to change "
                "variables only"
            )
        parsed = _parse_state(state)
        upstream = self.upstream_id(user_id, namespace)
        saved = await self.client.replace_state(upstream, parsed, environment=environment)
        await self._remember_variables(upstream, saved.variables, keep_choices=False)
        return StateResult(user_id=user_id, exists=True, state=saved)

    async def delete_state(
        self, user_id: str, *, environment: str | None = None, namespace: str | None = None
    ) -> DeleteResult:
        check_user_id(user_id)
        upstream = self.upstream_id(user_id, namespace)
        await self.client.delete_state(upstream, environment=check_environment(environment))
        await self.store.forget(upstream)
        await self.store.delete_session_keys(upstream)
        return DeleteResult(user_id=user_id)

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
        await self._remember_variables(upstream, state.variables, keep_choices=True)
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
        result: EventResult = await self.client.emit_event(
            session_id, action, session_owner=self.upstream_id(session_id, namespace)
        )
        return SessionEventResult(
            session_id=session_id,
            event=event,
            status_code=result.status_code,
            runtime_message=result.message,
        )

    async def _remember_variables(
        self, key: str, variables: dict[str, Any], *, keep_choices: bool
    ) -> None:
        memory = await self.store.load(key)
        choices = memory.choices if memory and keep_choices else []
        await self.store.save(key, ConversationMemory(choices=choices, variables=variables))


def _parse_state(state: Mapping[str, Any]) -> State:
    from pydantic import ValidationError

    try:
        return State.model_validate(dict(state))
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(
            f"`state` is not a Voiceflow state ({where}: {first['msg']}); send the whole object "
            "from get_state with your changes, including stack, storage and variables"
        ) from None
