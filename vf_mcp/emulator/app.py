"""HTTP surface: Voiceflow runtime routes (auth, environments, error bodies) and control routes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .agent import AgentDefinition
from .core import AuthError, EmulatorCore
from .engine import Trace, Turn, TurnOptions, fresh_state, run_turn
from .faults import FaultPlan
from .recording import REDACTED, RecordedRequest, RecordedSessionEvent
from .sessions import SessionBinding, redact_session_keys
from .sse import TurnStream
from .wire import response_builder_body, validation_body, verror_body

DEFAULT_EXCLUDE_TYPES = ("block", "debug", "flow")
UNRESOLVED_ALIAS = "Cannot resolve version alias, please verify that your API key is correct."
SESSION_EVENT_REPLY = "Event broadcasted, does not guarantee if the session exists"
STATE_KEYS = ("stack", "storage", "variables")
INVALID_SESSION_KEY = "Invalid or expired session key"
MAX_USER_ID_LENGTH = 256  # v4 session start: userID is 1..256 characters


class _Reject(Exception):
    """Abort a handler with a ready-made error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class _Call:
    request: Request
    body: Any  # None when the body is empty or not JSON
    body_is_garbage: bool  # non-empty but not JSON
    fault: FaultPlan | None


_Handler = Callable[[EmulatorCore, _Call], Awaitable[Response]]


def _builder_error(code: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(response_builder_body(code, data), status_code=code, headers=headers)


def _invalid(**errors: str) -> _Reject:
    return _Reject(JSONResponse(validation_body(errors), status_code=400))


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").strip().lower() in ("true", "1", "yes")


def _parse_body(raw: bytes) -> tuple[Any, bool]:
    """(value, is_garbage): an empty body is None, an unparsable one is flagged."""
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def _fault_response(plan: FaultPlan) -> Response:
    status = plan.status or 500
    headers: dict[str, str] = {}
    if plan.retry_after is not None or status == 429:
        headers["Retry-After"] = str(plan.retry_after if plan.retry_after is not None else 1)
    if plan.body is None:
        message = "Unknown error" if status == 500 else HTTPStatus(status).phrase
        return _builder_error(status, message, headers)
    if isinstance(plan.body, str):
        if plan.content_type:
            return Response(
                plan.body, status_code=status, headers=headers, media_type=plan.content_type
            )
        return PlainTextResponse(plan.body, status_code=status, headers=headers)
    return JSONResponse(plan.body, status_code=status, headers=headers)


def _api(
    core: EmulatorCore, handler: _Handler, *, streaming: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a runtime route with recording, fault injection and error-response plumbing."""

    async def endpoint(request: Request) -> Response:
        body, is_garbage = _parse_body(await request.body())
        # Session events carry a v4 session key in the path; it is a credential like the
        # Authorization value, so neither recordings nor the applied-fault log keep it.
        path = redact_session_keys(request.url.path, REDACTED)
        plan = core.faults.take(request.method, path, streaming=streaming)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if "authorization" in headers:
            headers["authorization"] = REDACTED
        core.recorder.add_request(
            RecordedRequest(
                method=request.method,
                path=path,
                query=dict(request.query_params),
                headers=headers,
                json=body,
                time=time.time(),
                fault=plan,
                client_port=request.client.port if request.client else None,
            )
        )
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        if plan is not None and plan.status is not None:
            return _fault_response(plan)
        try:
            return await handler(core, _Call(request, body, is_garbage, plan))
        except _Reject as rejection:
            return rejection.response

    return endpoint


# -- request checks ---------------------------------------------------------------------------


def _agent(core: EmulatorCore, request: Request) -> AgentDefinition:
    try:
        return core.agent_for_key(request.headers.get("authorization"))
    except AuthError as exc:
        raise _Reject(_builder_error(401, str(exc))) from exc


def _project(agent: AgentDefinition, request: Request) -> None:
    if request.path_params["projectID"].lower() != agent.project_id.lower():
        raise _Reject(_builder_error(401, "no access to project"))


def _version(core: EmulatorCore, agent: AgentDefinition, request: Request) -> None:
    version = request.headers.get("versionid") or "development"
    if not core.environment_exists(agent, version):
        raise _Reject(JSONResponse(verror_body(UNRESOLVED_ALIAS), status_code=400))


def _environment_exists(core: EmulatorCore, agent: AgentDefinition, environment: str) -> None:
    if not core.environment_exists(agent, environment):
        raise _Reject(_builder_error(404, f"Environment {environment} does not exist"))


def _object_body(call: _Call) -> dict[str, Any]:
    if call.body_is_garbage:
        raise _invalid(body="must be valid JSON")
    if call.body is None:
        return {}
    if not isinstance(call.body, dict):
        raise _invalid(body="must be a JSON object")
    return call.body


def _action(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise _invalid(action="must be an object with a string `type`")
    return value


def _string_list(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(**{field: "must be an array of strings"})
    return value


def _visibility(exclude: Sequence[str] | None) -> Callable[[Trace], bool]:
    """Trace filter for ``config.excludeTypes``.

    With the default list, error-level debug traces still get through so credit exhaustion and
    internal errors stay visible; an explicit list is applied literally.
    """

    def visible(trace: Trace) -> bool:
        kind = trace.get("type")
        if exclude is not None:
            return kind not in exclude
        if kind == "debug":
            payload = trace.get("payload")
            level = payload.get("level") if isinstance(payload, dict) else None
            return level in ("error", "fatal")
        return kind not in DEFAULT_EXCLUDE_TYPES

    return visible


# -- runtime routes ---------------------------------------------------------------------------


async def _interact(core: EmulatorCore, call: _Call) -> Response:
    request = call.request
    agent = _agent(core, request)
    _version(core, agent, request)
    body = _object_body(call)
    action = _action(body["action"] if "action" in body else body.get("request"))
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise _invalid(config="must be an object")
    exclude = _string_list(config.get("excludeTypes"), "config.excludeTypes")
    stop_types = _string_list(config.get("stopTypes"), "config.stopTypes") or []
    state_in = body.get("state") or {}
    variables = state_in.get("variables") if isinstance(state_in, dict) else None
    if variables is not None and not isinstance(variables, dict):
        raise _invalid(**{"state.variables": "must be an object"})
    user_id = request.path_params["userID"]
    options = TurnOptions(
        user_id=user_id,
        stop_all=bool(config.get("stopAll", False)),
        stop_types=frozenset(stop_types),
        strip_ssml=bool(config.get("stripSSML", True)),
        platform=request.headers.get("platform", "api"),
        variables=variables or {},
    )
    traces, state = run_turn(agent, core.store.get(agent.project_id, user_id), action, options)
    core.store.put(agent.project_id, user_id, state)
    visible = _visibility(exclude)
    traces = [trace for trace in traces if visible(trace)]
    if _flag(request, "verbose"):
        return JSONResponse({"state": state, "trace": traces, "request": action})
    return JSONResponse(traces)


async def _interact_stream(core: EmulatorCore, call: _Call) -> Response:
    request = call.request
    agent = _agent(core, request)
    _project(agent, request)
    environment = request.query_params.get("environment") or "development"
    _environment_exists(core, agent, environment)
    body = _object_body(call)
    action = _action(body.get("action"))
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _invalid(variables="must be an object")
    user_id = request.path_params["userID"]
    options = TurnOptions(
        user_id=user_id,
        completion_events=_flag(request, "completion_events"),
        audio_events=_flag(request, "audio_events"),
        audio_encoding=request.query_params.get("audio_encoding") or "audio/mp3",
        platform=request.headers.get("platform", "api"),
        variables=variables or {},
    )
    turn = Turn(agent, core.store.get(agent.project_id, user_id), action, options)
    project_id = agent.project_id
    fault = call.fault
    return TurnStream(
        turn,
        save_state=lambda state: core.store.put(project_id, user_id, state),
        on_open=core.count_stream,
        is_visible=_visibility(None),
        include_state=_flag(request, "state"),
        cut_after=fault.cut_stream_after_events if fault else None,
        frame_delay_ms=(fault.chunk_delay_ms or 0) if fault else 0,
    )


async def _session_event(core: EmulatorCore, call: _Call) -> Response:
    request = call.request
    agent = _agent(core, request)
    _project(agent, request)
    body = _object_body(call)
    action = body.get("action")
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise _invalid(action="must be an object with a string `type`")
    session_id = request.path_params["sessionID"]
    binding = core.sessions.resolve(session_id)
    # Two documented variants share this path: a v4 session key gets the newer 201 with no
    # body, anything else (a voice session id) the older 200 broadcast message.
    v4_session = binding is not None and binding.project_id == agent.project_id
    core.recorder.add_session_event(
        RecordedSessionEvent(
            project_id=agent.project_id,
            session_id=session_id,
            action=action,
            time=time.time(),
            v4_session=v4_session,
        )
    )
    if v4_session:
        return Response(status_code=201)
    return JSONResponse(SESSION_EVENT_REPLY)


async def _get_state(core: EmulatorCore, call: _Call) -> Response:
    agent = _agent(core, call.request)
    _version(core, agent, call.request)
    state = core.store.get(agent.project_id, call.request.path_params["userID"])
    return JSONResponse(state or {})


def _state_errors(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    errors = {key: "is not allowed" for key in body if key not in STATE_KEYS}
    errors.update({key: "is required" for key in STATE_KEYS if key not in body})
    stack = body.get("stack")
    if "stack" in body and not isinstance(stack, list):
        errors["stack"] = "must be an array"
    elif isinstance(stack, list):
        for index, frame in enumerate(stack):
            if not isinstance(frame, dict) or not isinstance(frame.get("diagramID"), str):
                errors[f"stack[{index}].diagramID"] = "is required"
    for key in ("storage", "variables"):
        if key in body and not isinstance(body[key], dict):
            errors[key] = "must be an object"
    return errors


async def _put_state(core: EmulatorCore, call: _Call) -> Response:
    agent = _agent(core, call.request)
    _version(core, agent, call.request)
    errors = {"body": "must be valid JSON"} if call.body_is_garbage else _state_errors(call.body)
    if errors:
        raise _invalid(**errors)
    core.store.put(agent.project_id, call.request.path_params["userID"], call.body)
    return JSONResponse(call.body)


async def _delete_state(core: EmulatorCore, call: _Call) -> Response:
    agent = _agent(core, call.request)
    _version(core, agent, call.request)
    user_id = call.request.path_params["userID"]
    state = core.store.get(agent.project_id, user_id)
    if state is not None:
        # Resetting a conversation keeps the user's variables (Voiceflow's documented behaviour).
        variables = state.get("variables") if isinstance(state.get("variables"), dict) else {}
        reset: dict[str, Any] = {"stack": [], "storage": {}, "variables": variables, "turn": {}}
        core.store.put(agent.project_id, user_id, reset)
    return Response(status_code=200)


async def _patch_variables(core: EmulatorCore, call: _Call) -> Response:
    agent = _agent(core, call.request)
    _version(core, agent, call.request)
    if call.body_is_garbage or not isinstance(call.body, dict):
        raise _invalid(body="must be a JSON object of variables")
    user_id = call.request.path_params["userID"]
    state = core.store.get(agent.project_id, user_id) or fresh_state(agent, user_id)
    if not isinstance(state.get("variables"), dict):
        state["variables"] = {}
    state["variables"].update(call.body)
    core.store.put(agent.project_id, user_id, state)
    return JSONResponse(state)


# -- v4 routes: a session key from session start stands for (project, user, environment) ------


async def _v4_session_start(core: EmulatorCore, call: _Call) -> Response:
    request = call.request
    agent = _agent(core, request)
    _project(agent, request)
    environment = request.path_params.get("environmentID")
    if environment is None:
        environment = core.traffic_split_environment(agent)
    _environment_exists(core, agent, environment)
    body = _object_body(call)
    user_id = body.get("userID")
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= MAX_USER_ID_LENGTH:
        raise _invalid(userID=f"must be a string of 1 to {MAX_USER_ID_LENGTH} characters")
    key = core.sessions.start(agent.project_id, user_id, environment)
    return JSONResponse({"sessionKey": key})


def _session(core: EmulatorCore, request: Request) -> tuple[AgentDefinition, SessionBinding]:
    key = request.headers.get("authorization")
    if not key:
        raise _Reject(_builder_error(401, "Auth Key Required"))
    # An API key is no session key: it fails here like any unknown value.
    binding = core.sessions.resolve(key)
    if binding is None:
        raise _Reject(_builder_error(401, INVALID_SESSION_KEY))
    return core.agent_for_project(binding.project_id), binding


@dataclass(frozen=True)
class _V4Body:
    action: dict[str, Any]
    variables: dict[str, Any]
    completion_events: bool
    exclude: list[str] | None


def _v4_body(call: _Call) -> _V4Body:
    body = _object_body(call)
    if "action" not in body:
        raise _invalid(action="is required")
    action = _action(body["action"])
    if action is None:
        raise _invalid(action="must be an object with a string `type`")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _invalid(variables="must be an object")
    # `state` is documented only as "any", with no stated effect: accepted and ignored.
    config = body.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise _invalid(config="must be an object")
    completion_events = config.get("completionEvents", False)
    if not isinstance(completion_events, bool):
        raise _invalid(**{"config.completionEvents": "must be a boolean"})
    timezone = config.get("userTimezone")
    if timezone is not None and not isinstance(timezone, str):
        raise _invalid(**{"config.userTimezone": "must be a string"})
    merged = dict(variables or {})
    if timezone:
        # Where Voiceflow keeps the user's timezone (socket docs), so flows can read it.
        merged.setdefault("vf_user_timezone", timezone)
    return _V4Body(
        action=action,
        variables=merged,
        completion_events=completion_events,
        exclude=_string_list(config.get("excludeTypes"), "config.excludeTypes"),
    )


def _v4_options(request: Request, binding: SessionBinding, body: _V4Body) -> TurnOptions:
    return TurnOptions(
        user_id=binding.user_id,
        completion_events=body.completion_events,
        platform=request.headers.get("platform", "api"),
        variables=body.variables,
    )


async def _v4_interact(core: EmulatorCore, call: _Call) -> Response:
    agent, binding = _session(core, call.request)
    body = _v4_body(call)
    options = _v4_options(call.request, binding, body)
    project_id, user_id = binding.project_id, binding.user_id
    traces, state = run_turn(agent, core.store.get(project_id, user_id), body.action, options)
    core.store.put(project_id, user_id, state)
    visible = _visibility(body.exclude)
    return JSONResponse({"traces": [trace for trace in traces if visible(trace)]})


async def _v4_interact_stream(core: EmulatorCore, call: _Call) -> Response:
    agent, binding = _session(core, call.request)
    body = _v4_body(call)
    # Unlike v2, completion events come only from the body: `?completion_events` is ignored.
    options = _v4_options(call.request, binding, body)
    project_id, user_id = binding.project_id, binding.user_id
    turn = Turn(agent, core.store.get(project_id, user_id), body.action, options)
    fault = call.fault
    return TurnStream(
        turn,
        save_state=lambda state: core.store.put(project_id, user_id, state),
        on_open=core.count_stream,
        is_visible=_visibility(body.exclude),
        cut_after=fault.cut_stream_after_events if fault else None,
        frame_delay_ms=(fault.chunk_delay_ms or 0) if fault else 0,
        end_data="{}",
    )


# -- control routes (unauthenticated, never faulted or recorded) ------------------------------


def _control_routes(core: EmulatorCore) -> list[Route]:
    async def add_fault(request: Request) -> Response:
        body, _ = _parse_body(await request.body())
        try:
            plan = FaultPlan.model_validate(body)
        except ValidationError as exc:
            errors = json.loads(exc.json(include_url=False, include_context=False))
            return JSONResponse({"errors": errors}, status_code=400)
        return JSONResponse(core.faults.add(plan).to_dict(), status_code=201)

    async def list_faults(_: Request) -> Response:
        pending = [fault.to_dict() for fault in core.faults.pending]
        applied = [
            {"id": a.fault_id, "method": a.method, "path": a.path} for a in core.faults.applied
        ]
        return JSONResponse({"pending": pending, "applied": applied})

    async def clear_faults(_: Request) -> Response:
        return JSONResponse({"cleared": core.faults.clear()})

    async def requests(_: Request) -> Response:
        return JSONResponse([r.to_dict() for r in core.recorder.requests])

    async def session_events(_: Request) -> Response:
        return JSONResponse([e.to_dict() for e in core.recorder.session_events])

    async def reset(_: Request) -> Response:
        core.reset()
        return JSONResponse({"reset": True})

    async def health(_: Request) -> Response:
        agents = [
            {"project_id": a.project_id, "name": a.name, "environments": a.environments}
            for a in core.agents
        ]
        return JSONResponse({"status": "ok", "agents": agents})

    return [
        Route("/_emulator/faults", add_fault, methods=["POST"]),
        Route("/_emulator/faults", list_faults, methods=["GET"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/requests", requests, methods=["GET"]),
        Route("/_emulator/session-events", session_events, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
    ]


def create_app(core: EmulatorCore) -> Starlette:
    routes = [
        Route("/state/user/{userID}/interact", _api(core, _interact), methods=["POST"]),
        Route("/state/user/{userID}/variables", _api(core, _patch_variables), methods=["PATCH"]),
        Route("/state/user/{userID}", _api(core, _get_state), methods=["GET"]),
        Route("/state/user/{userID}", _api(core, _put_state), methods=["PUT"]),
        Route("/state/user/{userID}", _api(core, _delete_state), methods=["DELETE"]),
        Route(
            "/v2/project/{projectID}/user/{userID}/interact/stream",
            _api(core, _interact_stream, streaming=True),
            methods=["POST"],
        ),
        Route(
            "/v2/project/{projectID}/session/{sessionID}/event",
            _api(core, _session_event),
            methods=["POST"],
        ),
        Route(
            "/v4/project/{projectID}/environment/{environmentID}/session",
            _api(core, _v4_session_start),
            methods=["POST"],
        ),
        Route("/v4/project/{projectID}/session", _api(core, _v4_session_start), methods=["POST"]),
        Route("/v4/interact", _api(core, _v4_interact), methods=["POST"]),
        Route(
            "/v4/interact/stream",
            _api(core, _v4_interact_stream, streaming=True),
            methods=["POST"],
        ),
        *_control_routes(core),
    ]
    return Starlette(routes=routes)
