"""HTTP surface: Voiceflow runtime routes (auth, environments, error bodies) and control routes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .agent import AgentDefinition
from .analytics import analytics_routes
from .analytics import control_routes as analytics_control_routes
from .core import EmulatorCore
from .engine import Turn, TurnOptions
from .faults import FaultPlan
from .recording import RecordedSessionEvent
from .routing import (
    Call,
    Reject,
    action_of,
    agent_for,
    api_route,
    builder_error,
    check_environment,
    check_project,
    check_version,
    crash,
    flag,
    invalid,
    json_response,
    object_body,
    parse_body,
    string_list,
    visibility,
)
from .sessions import SessionBinding
from .sse import TurnStream
from .state_routes import delete_state, get_state, patch_variables, put_state
from .wire import express_not_found

SESSION_EVENT_REPLY = "Event broadcasted, does not guarantee if the session exists"
INVALID_SESSION_KEY = "Invalid or expired session key"
MAX_USER_ID_LENGTH = 256  # v4 session start: userID is 1..256 characters


# -- runtime routes ---------------------------------------------------------------------------


def _runtime_request(value: Any) -> dict[str, Any] | None:
    """The runtime accepts any object with a non-empty string ``type`` (or no request at all);
    anything else makes its handler throw, which it answers with a 500."""
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("type"), str) and value["type"]:
        return value
    shown = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise crash(f"invalid runtime request type: {shown}")


async def _interact(core: EmulatorCore, call: Call) -> Response:
    request = call.request
    agent = agent_for(core, request)
    check_version(core, agent, request)
    body = object_body(call)
    # `request` is the deprecated name; the runtime reads `action ?? request`.
    given = body.get("action")
    action = _runtime_request(given if given is not None else body.get("request"))
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise invalid(config="must be an object")
    exclude = string_list(config.get("excludeTypes"), "config.excludeTypes")
    stop_types = string_list(config.get("stopTypes"), "config.stopTypes") or []
    state_in = body.get("state") or {}
    variables = state_in.get("variables") if isinstance(state_in, dict) else None
    if variables is not None and not isinstance(variables, dict):
        raise invalid(**{"state.variables": "must be an object"})
    user_id = request.path_params["userID"]
    options = TurnOptions(
        user_id=user_id,
        stop_all=bool(config.get("stopAll", False)),
        stop_types=frozenset(stop_types),
        strip_ssml=config.get("stripSSML") is not False,
        variables=variables or {},
    )
    turn = Turn(agent, core.store.get(agent.project_id, user_id), action, options)
    visible = visibility(exclude)
    emitted = [e for e in turn.emissions() if isinstance(e, dict)]
    traces = [e for e in emitted if visible(e)]
    state = turn.state
    core.store.put(agent.project_id, user_id, state)
    version = request.headers.get("versionid") or "development"
    core.transcripts.record_turn(agent.project_id, user_id, version, action, emitted)
    if flag(request, "verbose"):
        return json_response({"state": state, "trace": traces, "request": turn.request})
    return json_response(traces)


async def _interact_stream(core: EmulatorCore, call: Call) -> Response:
    request = call.request
    agent = agent_for(core, request)
    check_project(agent, request)
    environment = request.query_params.get("environment") or "development"
    check_environment(core, agent, environment)
    body = object_body(call)
    action = action_of(body.get("action"))
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise invalid(variables="must be an object")
    user_id = request.path_params["userID"]
    options = TurnOptions(
        user_id=user_id,
        completion_events=flag(request, "completion_events"),
        audio_events=flag(request, "audio_events"),
        audio_encoding=request.query_params.get("audio_encoding") or "audio/mp3",
        strip_ssml=False,  # streams keep SSML in speak traces, as the runtime's stream does
        variables=variables or {},
    )
    turn = Turn(agent, core.store.get(agent.project_id, user_id), action, options)
    project_id = agent.project_id
    fault = call.fault
    return TurnStream(
        turn,
        save_state=lambda state: core.store.put(project_id, user_id, state),
        on_traces=lambda traces: core.transcripts.record_turn(
            project_id, user_id, environment, action, traces
        ),
        on_open=core.count_stream,
        is_visible=visibility(None),
        include_state=flag(request, "state"),
        cut_after=fault.cut_stream_after_events if fault else None,
        frame_delay_ms=(fault.chunk_delay_ms or 0) if fault else 0,
    )


async def _session_event(core: EmulatorCore, call: Call) -> Response:
    request = call.request
    agent = agent_for(core, request)
    check_project(agent, request)
    body = object_body(call)
    action = body.get("action")
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise invalid(action="must be an object with a string `type`")
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
    return json_response(SESSION_EVENT_REPLY)


# -- v4 routes: a session key from session start stands for (project, user, environment) ------


async def _v4_session_start(core: EmulatorCore, call: Call) -> Response:
    request = call.request
    agent = agent_for(core, request)
    check_project(agent, request)
    environment = request.path_params.get("environmentID")
    if environment is None:
        environment = core.traffic_split_environment(agent)
    check_environment(core, agent, environment)
    body = object_body(call)
    user_id = body.get("userID")
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= MAX_USER_ID_LENGTH:
        raise invalid(userID=f"must be a string of 1 to {MAX_USER_ID_LENGTH} characters")
    key = core.sessions.start(agent.project_id, user_id, environment)
    return json_response({"sessionKey": key})


def _session(core: EmulatorCore, request: Request) -> tuple[AgentDefinition, SessionBinding]:
    key = request.headers.get("authorization")
    if not key:
        raise Reject(builder_error(401, "Auth Key Required"))
    # An API key is no session key: it fails here like any unknown value.
    binding = core.sessions.resolve(key)
    if binding is None:
        raise Reject(builder_error(401, INVALID_SESSION_KEY))
    return core.agent_for_project(binding.project_id), binding


@dataclass(frozen=True)
class _V4Body:
    action: dict[str, Any]
    variables: dict[str, Any]
    completion_events: bool
    exclude: list[str] | None


def _v4_body(call: Call) -> _V4Body:
    body = object_body(call)
    if "action" not in body:
        raise invalid(action="is required")
    action = action_of(body["action"])
    if action is None:
        raise invalid(action="must be an object with a string `type`")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise invalid(variables="must be an object")
    # `state` is documented only as "any", with no stated effect: accepted and ignored.
    config = body.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise invalid(config="must be an object")
    completion_events = config.get("completionEvents", False)
    if not isinstance(completion_events, bool):
        raise invalid(**{"config.completionEvents": "must be a boolean"})
    timezone = config.get("userTimezone")
    if timezone is not None and not isinstance(timezone, str):
        raise invalid(**{"config.userTimezone": "must be a string"})
    merged = dict(variables or {})
    if timezone:
        # Where Voiceflow keeps the user's timezone (socket docs), so flows can read it.
        merged.setdefault("vf_user_timezone", timezone)
    return _V4Body(
        action=action,
        variables=merged,
        completion_events=completion_events,
        exclude=string_list(config.get("excludeTypes"), "config.excludeTypes"),
    )


def _v4_options(binding: SessionBinding, body: _V4Body, *, stream: bool) -> TurnOptions:
    return TurnOptions(
        user_id=binding.user_id,
        completion_events=body.completion_events,
        strip_ssml=not stream,
        variables=body.variables,
    )


async def _v4_interact(core: EmulatorCore, call: Call) -> Response:
    agent, binding = _session(core, call.request)
    body = _v4_body(call)
    options = _v4_options(binding, body, stream=False)
    project_id, user_id = binding.project_id, binding.user_id
    turn = Turn(agent, core.store.get(project_id, user_id), body.action, options)
    traces = [e for e in turn.emissions() if isinstance(e, dict)]
    state = turn.state
    core.store.put(project_id, user_id, state)
    core.transcripts.record_turn(project_id, user_id, binding.environment, body.action, traces)
    visible = visibility(body.exclude)
    return json_response({"traces": [trace for trace in traces if visible(trace)]})


async def _v4_interact_stream(core: EmulatorCore, call: Call) -> Response:
    agent, binding = _session(core, call.request)
    body = _v4_body(call)
    # Unlike v2, completion events come only from the body: `?completion_events` is ignored.
    options = _v4_options(binding, body, stream=True)
    project_id, user_id = binding.project_id, binding.user_id
    turn = Turn(agent, core.store.get(project_id, user_id), body.action, options)
    fault = call.fault
    return TurnStream(
        turn,
        save_state=lambda state: core.store.put(project_id, user_id, state),
        on_traces=lambda traces: core.transcripts.record_turn(
            project_id, user_id, binding.environment, body.action, traces
        ),
        on_open=core.count_stream,
        is_visible=visibility(body.exclude),
        cut_after=fault.cut_stream_after_events if fault else None,
        frame_delay_ms=(fault.chunk_delay_ms or 0) if fault else 0,
        end_data="{}",
    )


# -- control routes (unauthenticated, never faulted or recorded) ------------------------------


def _control_routes(core: EmulatorCore) -> list[Route]:
    async def add_fault(request: Request) -> Response:
        body, _ = parse_body(await request.body())
        try:
            plan = FaultPlan.model_validate(body)
        except ValidationError as exc:
            errors = json.loads(exc.json(include_url=False, include_context=False))
            return json_response({"errors": errors}, status_code=400)
        return json_response(core.faults.add(plan).to_dict(), status_code=201)

    async def list_faults(_: Request) -> Response:
        pending = [fault.to_dict() for fault in core.faults.pending]
        applied = [
            {"id": a.fault_id, "method": a.method, "path": a.path} for a in core.faults.applied
        ]
        return json_response({"pending": pending, "applied": applied})

    async def clear_faults(_: Request) -> Response:
        return json_response({"cleared": core.faults.clear()})

    async def requests(_: Request) -> Response:
        return json_response([r.to_dict() for r in core.recorder.requests])

    async def session_events(_: Request) -> Response:
        return json_response([e.to_dict() for e in core.recorder.session_events])

    async def reset(_: Request) -> Response:
        core.reset()
        return json_response({"reset": True})

    async def health(_: Request) -> Response:
        agents = [
            {"project_id": a.project_id, "name": a.name, "environments": a.environments}
            for a in core.agents
        ]
        return json_response({"status": "ok", "agents": agents})

    return [
        Route("/_emulator/faults", add_fault, methods=["POST"]),
        Route("/_emulator/faults", list_faults, methods=["GET"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/requests", requests, methods=["GET"]),
        Route("/_emulator/session-events", session_events, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
    ]


async def _express_not_found(request: Request, _: Exception) -> Response:
    # Express answers any route (or method) it does not have with this page.
    page = express_not_found(request.method, request.url.path)
    return HTMLResponse(page, status_code=404, media_type="text/html; charset=utf-8")


def create_app(core: EmulatorCore) -> Starlette:
    routes = [
        Route("/state/user/{userID}/interact", api_route(core, _interact), methods=["POST"]),
        Route(
            "/state/user/{userID}/variables", api_route(core, patch_variables), methods=["PATCH"]
        ),
        Route("/state/user/{userID}", api_route(core, get_state), methods=["GET"]),
        Route("/state/user/{userID}", api_route(core, put_state), methods=["PUT"]),
        Route("/state/user/{userID}", api_route(core, delete_state), methods=["DELETE"]),
    ]
    if core.routes == "hosted":
        routes += _hosted_routes(core) + analytics_routes(core)
    routes += _control_routes(core) + analytics_control_routes(core)
    handlers = {404: _express_not_found, 405: _express_not_found}
    return Starlette(routes=routes, exception_handlers=handlers)


def _hosted_routes(core: EmulatorCore) -> list[Route]:
    """Routes of the hosted service that the open-source runtime does not have."""
    return [
        Route(
            "/v2/project/{projectID}/user/{userID}/interact/stream",
            api_route(core, _interact_stream, streaming=True),
            methods=["POST"],
        ),
        Route(
            "/v2/project/{projectID}/session/{sessionID}/event",
            api_route(core, _session_event),
            methods=["POST"],
        ),
        Route(
            "/v4/project/{projectID}/environment/{environmentID}/session",
            api_route(core, _v4_session_start),
            methods=["POST"],
        ),
        Route(
            "/v4/project/{projectID}/session", api_route(core, _v4_session_start), methods=["POST"]
        ),
        Route("/v4/interact", api_route(core, _v4_interact), methods=["POST"]),
        Route(
            "/v4/interact/stream",
            api_route(core, _v4_interact_stream, streaming=True),
            methods=["POST"],
        ),
    ]
