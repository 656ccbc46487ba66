"""`VoiceflowClient`: one typed async method per runtime endpoint, over one connection pool."""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import quote

import anyio
import httpx
from httpx_sse import EventSource, SSEError
from pydantic import ValidationError

from vf_mcp import __version__
from vf_mcp.config import ENV_API_KEY, ENV_PROJECT_ID, ENV_RUNTIME_URL, ENV_TIMEOUT, Settings
from vf_mcp.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    ResponseError,
    ResponseTimeoutError,
    RouteNotFoundError,
    ServerError,
    StreamInterruptedError,
    TransportError,
    UpstreamError,
    VfMcpError,
)
from vf_mcp.http_errors import api_error_class, transport_error_class
from vf_mcp.redaction import mask_secrets
from vf_mcp.retry import (
    IDEMPOTENT_METHODS,
    Attempts,
    RetryPolicy,
    parse_retry_after,
    send_with_retries,
)
from vf_mcp.voiceflow.actions import BaseAction
from vf_mcp.voiceflow.sessions import InMemorySessionKeys, SessionKeyStore, SessionStart
from vf_mcp.voiceflow.state import InteractConfig, State
from vf_mcp.voiceflow.traces import BaseTrace, parse_trace, parse_traces

Modality = Literal["voice", "chat", "api"]
_log = logging.getLogger(__name__)
_DRAIN_SECONDS = 1.0
_STATE = "/state/user/{userID}"


@dataclass(frozen=True)
class InteractResult:
    """One turn's answer: the traces, and the state after the turn when it was asked for."""

    traces: list[BaseTrace]
    state: State | None = None


@dataclass(frozen=True)
class TraceEvent:
    """One `event: trace` frame of a streamed turn."""

    trace: BaseTrace
    received_at: float
    """`time.perf_counter()` when the frame was parsed (for progress and latency measurement)."""
    id: str | None = None


@dataclass(frozen=True)
class StateEvent:
    """The `event: state` frame (`state=true`): the user's state after the turn."""

    state: State


StreamEvent = TraceEvent | StateEvent


@dataclass(frozen=True)
class EventResult:
    """The runtime's acknowledgement of a session event."""

    status_code: int
    message: str


class VoiceflowClient:
    """Async client for the Voiceflow runtime ("Conversations") API.

    Use one instance per process (`async with VoiceflowClient(settings) as vf:`): it owns one
    `httpx.AsyncClient`, so connections are reused across calls. Pass `http=` to share a pool you
    own instead (the client then leaves it open on close).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        session_keys: SessionKeyStore | None = None,
    ) -> None:
        self._settings = settings
        self._api_key = settings.require_api_key()
        self._base_url = settings.runtime_url
        self._retry = retry or RetryPolicy(
            max_retries=settings.max_retries, deadline=settings.retry_deadline
        )
        self._session_keys = session_keys or InMemorySessionKeys()
        self._limiter: anyio.CapacityLimiter | None = None
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            # Idle connections are dropped before the common 5 s server keep-alive ends, so a
            # turn is never written into a connection the server is closing at that moment
            # (a POST that fails that way cannot safely be retried).
            limits=httpx.Limits(
                max_connections=200, max_keepalive_connections=50, keepalive_expiry=4.0
            ),
            transport=transport,
            headers={"User-Agent": f"vf-mcp/{__version__}"},
        )

    max_concurrent_sends: int = 32
    """Requests being sent at once (until their headers arrive); the rest queue. httpx's pool
    slows down badly when hundreds of requests wait inside it at once (benchmarks/README.md)."""

    def _send_limiter(self) -> anyio.CapacityLimiter:
        # Created on first use, inside the event loop that will use it.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_concurrent_sends)
        return self._limiter

    max_response_bytes: int = 16 * 1_048_576
    """Largest body (or single SSE event) read from the runtime; larger answers are errors."""

    def __repr__(self) -> str:
        return f"VoiceflowClient(runtime_url={self._base_url!r}, environment={self.environment!r})"

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def environment(self) -> str:
        """The environment legacy calls use unless a call names one."""
        return self._settings.default_environment

    @property
    def api_version(self) -> str:
        """`legacy` (the state/v2 endpoints) or `v4` (session keys); state calls are shared."""
        return self._settings.api_version

    async def __aenter__(self) -> VoiceflowClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @property
    def closed(self) -> bool:
        """Whether its connection pool is closed (a shared pool closes with its owner)."""
        return self._http.is_closed

    # -- conversation ------------------------------------------------------------------------------

    async def interact(
        self,
        user_id: str,
        action: BaseAction,
        *,
        variables: Mapping[str, Any] | None = None,
        config: InteractConfig | None = None,
        environment: str | None = None,
        verbose: bool = True,
        attempts: Attempts | None = None,
    ) -> InteractResult:
        """Run one turn: `POST /state/user/{userID}/interact`.

        `variables` are merged into the stored state before the turn. With `verbose` (the default)
        the state after the turn comes back in the same request, so no extra GET is needed.
        On the v4 generation (`VOICEFLOW_API_VERSION=v4`) it is `POST /v4/interact` in the user's
        session instead, and the state is not returned (`state` is None). `attempts` counts how
        often the request was sent (retries included).
        """
        if self.api_version == "v4":
            return await self._v4_interact(
                user_id, action, variables, config, environment, attempts
            )
        body: dict[str, Any] = {"action": action.to_wire()}
        if config is not None:
            body["config"] = config.to_wire()
        if variables:
            body["state"] = {"variables": dict(variables)}
        path = f"/state/user/{_segment(user_id)}/interact"
        params = {"verbose": "true"} if verbose else None
        data = await self._request_json(
            "POST",
            path,
            json_body=body,
            params=params,
            environment=environment,
            attempts=attempts,
            route="/state/user/{userID}/interact",
        )
        try:
            if isinstance(data, list):
                return InteractResult(traces=parse_traces(data))
            if isinstance(data, dict) and isinstance(data.get("trace"), list):
                state = data.get("state")
                return InteractResult(
                    traces=parse_traces(data["trace"]),
                    state=State.model_validate(state) if isinstance(state, dict) else None,
                )
        except (ValueError, ValidationError) as exc:
            raise self._malformed("POST", path, exc) from None
        raise self._malformed("POST", path, f"unexpected body of type {type(data).__name__}")

    def interact_stream(
        self,
        user_id: str,
        action: BaseAction,
        *,
        variables: Mapping[str, Any] | None = None,
        environment: str | None = None,
        project_id: str | None = None,
        completion_events: bool = False,
        state: bool = False,
        audio_events: bool = False,
        audio_encoding: str | None = None,
        modality: Modality | None = None,
        session_id: str | None = None,
        attempts: Attempts | None = None,
    ) -> AsyncGenerator[StreamEvent]:
        """Run one turn over SSE: `POST /v2/project/{projectID}/user/{userID}/interact/stream`.

        Yields each trace as it arrives (and the state, when `state=True`). Iterate inside
        `contextlib.aclosing(...)`: closing the generator early closes the upstream request at once.
        A stream that ends without the runtime's closing `end` event raises
        `StreamInterruptedError`: a partial answer is never passed off as a whole one.
        On v4 it is `POST /v4/interact/stream` in the user's session (`completionEvents` in the
        body's config); a `state` event is yielded only if the runtime sends one.
        """
        if self.api_version == "v4":
            return self._v4_stream(
                user_id, action, variables, environment, completion_events, attempts
            )
        flags = {
            "completion_events": completion_events,
            "state": state,
            "audio_events": audio_events,
        }
        params = {
            "environment": environment or self.environment,
            **{name: "true" for name, on in flags.items() if on},
            **({"audio_encoding": audio_encoding} if audio_encoding else {}),
            **({"modality": modality} if modality else {}),
        }
        body: dict[str, Any] = {
            "action": action.to_wire(),
            **({"variables": dict(variables)} if variables else {}),
            **({"sessionID": session_id} if session_id else {}),
        }
        project = _segment(self._project_id(project_id, "the streaming interact endpoint"))
        path = f"/v2/project/{project}/user/{_segment(user_id)}/interact/stream"
        return self._v2_stream(path, body, params, attempts)

    async def _v2_stream(
        self,
        path: str,
        body: dict[str, Any],
        params: dict[str, str],
        attempts: Attempts | None,
    ) -> AsyncGenerator[StreamEvent]:
        response = await self._send(
            "POST",
            path,
            json_body=body,
            params=params,
            headers=self._headers(accept="text/event-stream"),
            attempts=attempts,
            route="/v2/project/{projectID}/user/{userID}/interact/stream",
        )
        # Closing this generator must close the inner one (and its response) at once.
        async with aclosing(self._read_stream(response, path)) as events:
            async for event in events:
                yield event

    async def _read_stream(
        self, response: httpx.Response, path: str
    ) -> AsyncGenerator[StreamEvent]:
        """The events of an SSE turn until the runtime's `end` event; closes the response."""
        events = EventSource(response).aiter_sse()
        try:
            ended = False
            try:
                async for sse in events:
                    if (
                        len(sse.data) > self.max_response_bytes
                        or response.num_bytes_downloaded > self.max_response_bytes
                    ):
                        raise ResponseError(
                            f"The stream of POST {path} grew past "
                            f"{self.max_response_bytes // 1_048_576} MiB, so the turn's answer "
                            "was not read further"
                        )
                    if sse.event == "trace":
                        trace = parse_trace(_loads(sse.data))
                        yield TraceEvent(id=sse.id or None, trace=trace, received_at=_now())
                    elif sse.event == "state":
                        yield StateEvent(state=State.model_validate(_loads(sse.data)))
                    elif sse.event == "end":
                        ended = True
                        break
                    # Other event names (keep-alives, future additions) carry nothing for us.
                if ended:
                    # Read the last bytes of the body so the connection goes back to the pool
                    # and the parser finishes, instead of both being torn down half-read. The
                    # answer is complete: a failure now must not be reported as a broken turn.
                    with anyio.move_on_after(_DRAIN_SECONDS), suppress(httpx.HTTPError, SSEError):
                        async for _ in events:
                            pass
            except SSEError as exc:
                raise self._malformed("POST", path, exc) from None
            except (ValueError, ValidationError) as exc:
                raise self._malformed("POST", path, exc) from None
            except httpx.HTTPError as exc:
                raise self._stream_broke(path, exc) from None
            if not ended:
                raise _interrupted(path, "the runtime closed it")
        finally:
            await events.aclose()
            await response.aclose()

    # -- v4 sessions -------------------------------------------------------------------------------

    async def _v4_session_key(
        self, user_id: str, environment: str | None, *, refused: str | None = None
    ) -> str:
        """The user's v4 session key: the stored one, or a new session started with the API key.

        `POST /v4/project/{projectID}[/environment/{environmentID}]/session`; with no environment
        configured or given, the project's traffic split picks one. One start at a time per user:
        a new session ends the previous one, so concurrent turns must share a start, and a turn
        whose key was `refused` uses a key another turn renewed meanwhile.
        """
        chosen = environment or self._settings.v4_environment
        # Per user, not per environment: any start ends the user's previous session. The store
        # makes it one start across workers too; a start outlasting its retries must not hold
        # the others back forever, nor be overtaken while it may still succeed.
        start = SessionStart(
            open=lambda: self._v4_start_session(user_id, chosen),
            hold_seconds=self._settings.timeout + self._retry.deadline + 1,
            refused=refused,
        )
        return await self._session_keys.session_key(user_id, chosen, start)

    async def _v4_start_session(self, user_id: str, environment: str | None) -> str:
        project = _segment(self._project_id(None, "starting a v4 session"))
        path = f"/v4/project/{project}/session"
        route = "/v4/project/{projectID}/session"
        if environment:
            path = f"/v4/project/{project}/environment/{_segment(environment)}/session"
            route = "/v4/project/{projectID}/environment/{environmentID}/session"
        _, body = await self._call(
            "POST", path, json_body={"userID": user_id}, headers=self._headers(), route=route
        )
        try:
            key = _loads(body.decode("utf-8", errors="replace")).get("sessionKey")
        except (ValueError, AttributeError):
            key = None
        if not isinstance(key, str) or not key:
            raise self._malformed("POST", path, "no sessionKey in the answer")
        return key

    async def _v4_send(
        self,
        path: str,
        user_id: str,
        body: dict[str, Any],
        environment: str | None,
        *,
        accept: str = "application/json",
        attempts: Attempts | None = None,
    ) -> httpx.Response:
        """Send in the user's session; a key the runtime refuses is renewed once, transparently."""
        refused: str | None = None
        while True:
            key = await self._v4_session_key(user_id, environment, refused=refused)
            headers = {"Authorization": key, "Accept": accept}
            try:
                # The v4 paths hold no id (the key travels in a header): each is its template.
                return await self._send(
                    "POST",
                    path,
                    json_body=body,
                    params=None,
                    headers=headers,
                    attempts=attempts,
                    route=path,
                )
            except AuthenticationError as exc:
                if refused is not None:
                    exc.add_detail(
                        "A new session was started and its key was refused too, so the API key "
                        "or project is at fault, not an expired session"
                    )
                    raise
                refused = key
                _log.info("a v4 session key was refused; renewing the session")

    async def _v4_interact(
        self,
        user_id: str,
        action: BaseAction,
        variables: Mapping[str, Any] | None,
        config: InteractConfig | None,
        environment: str | None,
        attempts: Attempts | None,
    ) -> InteractResult:
        body: dict[str, Any] = {"action": action.to_wire()}
        if variables:
            body["variables"] = dict(variables)
        if config is not None:
            body["config"] = config.to_wire()
        path = "/v4/interact"
        response = await self._v4_send(path, user_id, body, environment, attempts=attempts)
        try:
            raw = await self._read_body(response, "POST", path)
        finally:
            await response.aclose()
        try:
            data = _loads(raw.decode("utf-8", errors="replace"))
        except ValueError as exc:
            raise self._malformed("POST", path, exc) from None
        if not isinstance(data, dict) or not isinstance(data.get("traces"), list):
            raise self._malformed("POST", path, "expected an object with a `traces` list")
        return InteractResult(traces=parse_traces(data["traces"]))

    async def _v4_stream(
        self,
        user_id: str,
        action: BaseAction,
        variables: Mapping[str, Any] | None,
        environment: str | None,
        completion_events: bool,
        attempts: Attempts | None,
    ) -> AsyncGenerator[StreamEvent]:
        body: dict[str, Any] = {"action": action.to_wire()}
        if variables:
            body["variables"] = dict(variables)
        if completion_events:
            body["config"] = {"completionEvents": True}
        path = "/v4/interact/stream"
        response = await self._v4_send(
            path, user_id, body, environment, accept="text/event-stream", attempts=attempts
        )
        # Closing this generator must close the inner one (and its response) at once.
        async with aclosing(self._read_stream(response, path)) as events:
            async for event in events:
                yield event

    # -- state -------------------------------------------------------------------------------------

    async def get_state(self, user_id: str, *, environment: str | None = None) -> State | None:
        """`GET /state/user/{userID}`: the user's state, or None when the runtime has none."""
        path = f"/state/user/{_segment(user_id)}"
        data = await self._request_json("GET", path, environment=environment, route=_STATE)
        if data is None or data == {}:
            return None
        return self._state(data, "GET", path)

    async def replace_state(
        self, user_id: str, state: State, *, environment: str | None = None
    ) -> State:
        """`PUT /state/user/{userID}`: replace the WHOLE state; whatever is left out is wiped."""
        path = f"/state/user/{_segment(user_id)}"
        body = state.to_wire()
        # `turn` is per-turn scratch data that GET may return, but the runtime's PUT schema
        # accepts only stack, storage and variables; and the base frame GET returns has
        # `"nodeID": null`, which the same schema refuses (a string or absent): see
        # https://github.com/voiceflow/general-runtime/blob/ae6efa58/lib/controllers/stateManagement/requests.ts
        body.pop("turn", None)
        for frame in body.get("stack", []):
            if isinstance(frame, dict) and frame.get("nodeID", "") is None:
                del frame["nodeID"]
        data = await self._request_json(
            "PUT", path, json_body=body, environment=environment, route=_STATE
        )
        return self._state(data, "PUT", path)

    async def delete_state(self, user_id: str, *, environment: str | None = None) -> None:
        """`DELETE /state/user/{userID}`: forget the conversation.

        Voiceflow's open-source runtime removes the whole record, variables included (the next
        GET is `{}`); the hosted service's docs say the user's variables are kept.
        """
        path = f"/state/user/{_segment(user_id)}"
        await self._request("DELETE", path, environment=environment, route=_STATE)

    async def update_variables(
        self, user_id: str, variables: Mapping[str, Any], *, environment: str | None = None
    ) -> State:
        """`PATCH /state/user/{userID}/variables`: merge `variables` into the state."""
        path = f"/state/user/{_segment(user_id)}/variables"
        data = await self._request_json(
            "PATCH",
            path,
            json_body=dict(variables),
            environment=environment,
            route="/state/user/{userID}/variables",
        )
        return self._state(data, "PATCH", path)

    # -- session -----------------------------------------------------------------------------------

    async def emit_event(
        self,
        session_id: str,
        action: BaseAction,
        *,
        project_id: str | None = None,
        session_owner: str | None = None,
    ) -> EventResult:
        """`POST /v2/project/{projectID}/session/{sessionID}/event`: send an action to a session.

        The runtime applies it only to a session with an open socket connection (web chat, voice
        calls); a conversation driven over plain HTTP interact calls never sees it, and a 2xx
        answer does not guarantee that the session exists.
        """
        project = self._project_id(project_id, "the session event endpoint")
        target = session_id
        shown = None
        if self.api_version == "v4":
            # v4 targets the session by its key (answered 201); `session_id` is our user id.
            found = await self._session_keys.current_session_key(session_owner or session_id)
            if found is None:
                raise InvalidInputError(
                    f"No v4 session is open for {session_id!r}: start one with a turn first "
                    "(interact), then send the event"
                )
            target = found
            shown = f"/v2/project/{_segment(project)}/session/<session key of {session_id}>/event"
        path = f"/v2/project/{_segment(project)}/session/{_segment(target)}/event"
        response, body = await self._call(
            "POST",
            path,
            json_body={"action": action.to_wire()},
            headers=self._headers(),
            shown_path=shown,
            route="/v2/project/{projectID}/session/{sessionID}/event",
        )
        return EventResult(status_code=response.status_code, message=_body_text(body))

    # -- plumbing ----------------------------------------------------------------------------------

    def _headers(
        self, *, environment: str | None = None, accept: str = "application/json"
    ) -> dict[str, str]:
        headers = {"Authorization": self._api_key, "Accept": accept}
        if environment is not None:
            headers["versionID"] = environment
        return headers

    def _project_id(self, project_id: str | None, what: str) -> str:
        project = project_id or self._settings.project_id
        if not project:
            raise ConfigurationError(
                f"{ENV_PROJECT_ID} is not set, and {what} needs it: set it to the project ID "
                "from your agent's settings (Voiceflow > Agent > Settings > Project ID)"
            )
        return project

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        environment: str | None = None,
        attempts: Attempts | None = None,
        route: str,
    ) -> tuple[httpx.Response, bytes]:
        """One call whose whole (size-capped) body is read: the response and its bytes."""
        headers = self._headers(environment=environment or self.environment)
        return await self._call(
            method,
            path,
            json_body=json_body,
            params=params,
            headers=headers,
            attempts=attempts,
            route=route,
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        shown_path: str | None = None,
        attempts: Attempts | None = None,
        route: str,
    ) -> tuple[httpx.Response, bytes]:
        response = await self._send(
            method,
            path,
            json_body=json_body,
            params=params,
            headers=headers,
            shown_path=shown_path,
            attempts=attempts,
            route=route,
        )
        try:
            return response, await self._read_body(response, method, shown_path or path)
        finally:
            await response.aclose()

    async def _read_body(self, response: httpx.Response, method: str, path: str) -> bytes:
        """The body, refusing one larger than `max_response_bytes` before it fills memory."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ResponseError(
                        f"The Voiceflow runtime's answer to {method} {path} is larger than "
                        f"{self.max_response_bytes // 1_048_576} MiB, so it was not read; check "
                        f"that {ENV_RUNTIME_URL} points at a Voiceflow runtime"
                    )
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise self._transport_error(method, path, exc) from None
        return b"".join(chunks)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        shown_path: str | None = None,
        attempts: Attempts | None = None,
        route: str,
    ) -> httpx.Response:
        """Send one call, retrying it only where the retry policy says it is safe.

        A POST here is a turn or a session event: it is repeated only when it certainly did not
        run (429, or no connection could be opened). The response comes back unread (streamed):
        the caller reads it, within the size cap, and closes it. `route` is the path's template,
        for telemetry: the path itself holds user ids and, on v4, may hold a session key.
        """
        request = self._http.build_request(
            method, self._base_url + path, json=json_body, params=params, headers=headers
        )
        # A path may hold a credential (a v4 session key): messages and logs show `shown_path`,
        # and the runtime's own words must not echo the real one either.
        hidden = path if shown_path else None
        shown = shown_path or path

        async def status_error(response: httpx.Response) -> VfMcpError:
            try:
                body = await self._read_body(response, method, shown)
            finally:
                await response.aclose()
            return self._api_error(response, body, method, shown, hidden=hidden)

        return await send_with_retries(
            self._http,
            request,
            policy=self._retry,
            idempotent=method in IDEMPOTENT_METHODS,
            transport_error=lambda exc: self._transport_error(method, shown, exc),
            status_error=status_error,
            limiter=self._send_limiter(),
            attempts=attempts,
            what=f"{method} {shown}",
            route=route,
            runtime=self.api_version,
        )

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        environment: str | None = None,
        attempts: Attempts | None = None,
        route: str,
    ) -> Any:
        _, body = await self._request(
            method,
            path,
            json_body=json_body,
            params=params,
            environment=environment,
            attempts=attempts,
            route=route,
        )
        if not body.strip():
            return None
        try:
            return _loads(body.decode("utf-8", errors="replace"))
        except ValueError as exc:
            raise self._malformed(method, path, exc) from None

    def _state(self, data: Any, method: str, path: str) -> State:
        if not isinstance(data, dict):
            raise self._malformed(method, path, f"expected a state object, got {data!r:.60}")
        try:
            return State.model_validate(data)
        except ValidationError as exc:
            raise self._malformed(method, path, exc) from None

    def _malformed(self, method: str, path: str, detail: object) -> ResponseError:
        reason = str(detail).splitlines()[0] if str(detail) else type(detail).__name__
        return ResponseError(
            f"The Voiceflow runtime's answer to {method} {path} could not be understood "
            f"({reason[:200]}); check that {ENV_RUNTIME_URL} points at a Voiceflow runtime"
        )

    def _transport_error(
        self, method: str, path: str, exc: httpx.HTTPError, *, streaming: bool = False
    ) -> TransportError:
        where = f"{method} {path}"
        cls = transport_error_class(exc)
        if cls is ConnectError:
            return ConnectError(
                f"Could not connect to the Voiceflow runtime at {self._base_url} for {where} "
                f"({type(exc).__name__}); nothing was sent. Check {ENV_RUNTIME_URL} and the network"
            )
        if cls is ResponseTimeoutError:
            limit = self._settings.timeout
            waited = (
                f"went silent for {limit:g} s mid-stream"
                if streaming
                else (f"did not answer within {limit:g} s")
            )
            return ResponseTimeoutError(
                f"The Voiceflow runtime {waited} on {where}; the request may have run, so check "
                f"get_state before repeating a turn, or raise {ENV_TIMEOUT} for slow agents"
            )
        return cls(
            f"The connection to the Voiceflow runtime broke during {where} "
            f"({type(exc).__name__}: {str(exc)[:120]}); the request may have run, so check "
            "get_state before repeating a turn"
        )

    def _stream_broke(self, path: str, exc: httpx.HTTPError) -> UpstreamError:
        """A stream answered 2xx and then failed: silence is a timeout, anything else leaves a
        partial answer, which is never passed off as a whole one."""
        if transport_error_class(exc) is ResponseTimeoutError:
            return self._transport_error("POST", path, exc, streaming=True)
        return _interrupted(path, f"the connection broke: {type(exc).__name__}")

    def _api_error(
        self,
        response: httpx.Response,
        body: bytes,
        method: str,
        path: str,
        *,
        hidden: str | None = None,
    ) -> APIError:
        status = response.status_code
        answer = _upstream_answer(body, response.headers.get("content-type", ""))
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        cls = api_error_class(status, service_body=answer.runtime_json)
        hint = _hint(cls, method, retry_after)
        upstream = answer.message or response.reason_phrase or "no message"
        if hidden:
            upstream = upstream.replace(hidden, path)
        said = (
            f"this runtime has no such route ({upstream})"
            if cls is RouteNotFoundError
            else upstream
        )
        reason = response.reason_phrase or "error"
        return cls(
            f"Voiceflow runtime answered {status} {reason} to {method} {path}: "
            f"{said.rstrip('.')}. {hint}",
            status_code=status,
            upstream_message=upstream,
            method=method,
            path=path,
            retry_after=retry_after,
            request_id=answer.request_id,
        )


def _hint(cls: type[APIError], method: str, retry_after: float | None) -> str:
    """What to do about an error of class `cls` (`vf_mcp.http_errors` chose it)."""
    if cls is RateLimitError:
        wait = f"{retry_after:g} s" if retry_after is not None else "a moment"
        return f"Wait {wait} before trying again, or slow down"
    if cls is ServerError:
        return (
            "The runtime failed on its side; try again shortly"
            if method in IDEMPOTENT_METHODS
            else "The runtime failed on its side and the turn may or may not have run, so "
            "check get_state before repeating it"
        )
    return _HINTS.get(cls, "See the runtime's message")


_HINTS: dict[type[APIError], str] = {
    AuthenticationError: (
        f"Check {ENV_API_KEY} (the agent's VF.DM. key) and, for streaming and events, "
        f"{ENV_PROJECT_ID}"
    ),
    # Express answers an unknown route with its own HTML page, never the runtime's JSON:
    # the environment is not the problem, the route is.
    RouteNotFoundError: (
        f"Check that {ENV_RUNTIME_URL} is the runtime's base URL and that this runtime "
        "offers the endpoint (older and private deployments may not)"
    ),
    NotFoundError: (
        "Check the environment: 'development' exists only after the agent was run once "
        "in Voiceflow, 'production' only after it was published"
    ),
    BadRequestError: (
        "Fix the request as the message says (environment, version id, body or action)"
    ),
}


def _interrupted(path: str, how: str) -> StreamInterruptedError:
    return StreamInterruptedError(
        f"The stream of POST {path} ended before its closing 'end' event ({how}), so the "
        "agent's answer is incomplete; check get_state to see whether the turn ran before "
        "repeating it"
    )


def _segment(value: str) -> str:
    """Quote a user, project or session id for use as one path segment."""
    return quote(value, safe="")


def _loads(text: str) -> Any:
    # The runtime may put raw control characters inside JSON strings; Voiceflow's own recipe
    # strips them first: https://docs.voiceflow.com/cookbook/stream-a-response.md
    # Masked as it is read: an agent saying a credential of this server shows the mask in every
    # result, transcript and report after this (`vf_mcp.redaction`).
    return json.loads(mask_secrets(text), strict=False)


def _now() -> float:
    return time.perf_counter()


def _body_text(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = _loads(text) if text else ""
    except ValueError:
        return text[:200]
    return data if isinstance(data, str) else text[:200]


class _UpstreamAnswer(NamedTuple):
    message: str | None
    """One line of plain text: the runtime's message, never markup."""
    request_id: str | None
    runtime_json: bool
    """Whether the body is one of the runtime's JSON error shapes (ResponseBuilder, VError, or a
    validation body: tests/fixtures/real_runtime/README.md)."""


_RUNTIME_ERROR_KEYS = ("data", "message", "errors", "code", "details")


def _upstream_answer(body: bytes, content_type: str) -> _UpstreamAnswer:
    """The error message from any of the runtime's body shapes, or a plain-text summary."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = _loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        rid = data.get("requestID")
        request_id = rid if isinstance(rid, str) else None
        runtime_json = any(key in data for key in _RUNTIME_ERROR_KEYS)
        return _UpstreamAnswer(_json_message(data), request_id, runtime_json)
    if isinstance(data, str) and data.strip():
        return _UpstreamAnswer(_one_line(data), None, True)
    if "html" in content_type.lower() or text.startswith("<"):
        return _UpstreamAnswer(_html_message(text), None, False)
    return _UpstreamAnswer(_one_line(text) if text else None, None, False)


def _json_message(data: dict[str, Any]) -> str | None:
    for key in ("data", "message", "error"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return _one_line(value)
    errors = data.get("errors")
    if isinstance(errors, dict):
        # Validation bodies key each message by the field; the whole body's key is "".
        parts = []
        for field, detail in errors.items():
            said = detail.get("message", detail) if isinstance(detail, dict) else detail
            parts.append(f"{field}: {said}" if field else str(said))
        return _one_line("; ".join(parts))
    for key in ("details", "data"):
        if isinstance(data.get(key), dict | list):
            return _one_line(json.dumps(data[key])[:300])
    return None


_PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _html_message(text: str) -> str:
    """What an HTML error page says (Express: `<pre>Cannot POST /path</pre>`), without markup."""
    found = _PRE.search(text) or _TITLE.search(text)
    said = _one_line(html.unescape(_TAG.sub(" ", found.group(1)))) if found else ""
    return said or "an HTML page, not the runtime's JSON"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


__all__ = [
    "BaseTrace",
    "EventResult",
    "InteractResult",
    "StateEvent",
    "StreamEvent",
    "TraceEvent",
    "VoiceflowClient",
]
