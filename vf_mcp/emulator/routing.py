"""HTTP plumbing shared by the runtime routes: recording, faults, auth, bodies, responses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from .agent import AgentDefinition
from .core import AuthError, EmulatorCore
from .faults import FaultPlan
from .recording import REDACTED, RecordedRequest
from .sessions import redact_session_keys
from .traces import Trace
from .wire import crash_body, response_builder_body, validation_body, verror_body

DEFAULT_EXCLUDE_TYPES = ("block", "debug", "flow")
UNRESOLVED_ALIAS = "Cannot resolve version alias, please verify that your API key is correct."
JSON_TYPE = "application/json; charset=utf-8"


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """JSON with Express's content type (``application/json; charset=utf-8``)."""
    return JSONResponse(content, status_code=status_code, headers=headers, media_type=JSON_TYPE)


class Reject(Exception):
    """Abort a handler with a ready-made error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class Call:
    request: Request
    body: Any  # None when the body is empty or not JSON
    body_is_garbage: bool  # non-empty but not JSON
    fault: FaultPlan | None


Handler = Callable[[EmulatorCore, Call], Awaitable[Response]]


def builder_error(code: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(response_builder_body(code, data), status_code=code, headers=headers)


def invalid(**errors: str) -> Reject:
    return Reject(json_response(validation_body(errors), status_code=400))


def crash(message: str) -> Reject:
    """What the runtime answers when a handler throws (its third error shape)."""
    return Reject(json_response(crash_body(message), status_code=500))


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").strip().lower() in ("true", "1", "yes")


def parse_body(raw: bytes) -> tuple[Any, bool]:
    """(value, is_garbage): an empty body is None, an unparsable one is flagged."""
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def fault_response(plan: FaultPlan) -> Response:
    status = plan.status or 500
    headers: dict[str, str] = {}
    if plan.retry_after is not None or status == 429:
        headers["Retry-After"] = str(plan.retry_after if plan.retry_after is not None else 1)
    if plan.body is None:
        message = "Unknown error" if status == 500 else HTTPStatus(status).phrase
        return builder_error(status, message, headers)
    if isinstance(plan.body, str):
        if plan.content_type:
            return Response(
                plan.body, status_code=status, headers=headers, media_type=plan.content_type
            )
        return PlainTextResponse(plan.body, status_code=status, headers=headers)
    return json_response(plan.body, status_code=status, headers=headers)


def api_route(
    core: EmulatorCore, handler: Handler, *, streaming: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a runtime route with recording, fault injection and error-response plumbing."""

    async def endpoint(request: Request) -> Response:
        body, is_garbage = parse_body(await request.body())
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
        if plan is not None and plan.drop_connection and request.client is not None:
            core.drop_connection(request.client.port)
            return Response(status_code=500)  # never written: the connection is gone
        if plan is not None and plan.status is not None:
            return fault_response(plan)
        try:
            return await handler(core, Call(request, body, is_garbage, plan))
        except Reject as rejection:
            return rejection.response

    return endpoint


# -- request checks ---------------------------------------------------------------------------


def agent_for(core: EmulatorCore, request: Request) -> AgentDefinition:
    try:
        return core.agent_for_key(request.headers.get("authorization"))
    except AuthError as exc:
        raise Reject(builder_error(401, str(exc))) from exc


def check_project(agent: AgentDefinition, request: Request) -> None:
    if request.path_params["projectID"].lower() != agent.project_id.lower():
        raise Reject(builder_error(401, "no access to project"))


def check_version(core: EmulatorCore, agent: AgentDefinition, request: Request) -> None:
    version = request.headers.get("versionid") or "development"
    if not core.environment_exists(agent, version):
        raise Reject(json_response(verror_body(UNRESOLVED_ALIAS), status_code=400))


def check_environment(core: EmulatorCore, agent: AgentDefinition, environment: str) -> None:
    if not core.environment_exists(agent, environment):
        raise Reject(builder_error(404, f"Environment {environment} does not exist"))


def object_body(call: Call) -> dict[str, Any]:
    if call.body_is_garbage:
        raise invalid(body="must be valid JSON")
    if call.body is None:
        return {}
    if not isinstance(call.body, dict):
        raise invalid(body="must be a JSON object")
    return call.body


def action_of(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise invalid(action="must be an object with a string `type`")
    return value


def string_list(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(**{field: "must be an array of strings"})
    return value


def visibility(exclude: Sequence[str] | None) -> Callable[[Trace], bool]:
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
