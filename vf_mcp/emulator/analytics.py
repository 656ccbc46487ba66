"""The Analytics API's transcripts, properties and evaluations, filled from the turns the emulator
ran: every turn of every route (v2, stream, v4) lands in the transcript of its user, so a client
that imports conversations reads the ones the tests actually had.

Shapes follow https://docs.voiceflow.com/api-reference/transcript/* (stored in
/work/shared/voiceflow-analytics.md); what the docs leave open is marked in docs/emulator-spec.md.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import AuthError, EmulatorCore
from .routing import Call, Reject, api_route, json_response, object_body
from .transcript_book import Log, Transcript, TranscriptBook, new_id

MAX_TAKE = 100
DEFAULT_TAKE = 25
PROPERTY_TYPES = ("boolean", "number", "string")
# Conversation-only traces when `filterConversation=true` (the docs' list).
CONVERSATION_TRACES = frozenset({"text", "speak", "live-agent-handoff"})
# What "redacted" logs hide: the emulator's stand-in for Voiceflow's PII redaction.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_LONG_NUMBER = re.compile(r"\d{7,}")


def _iso(when: float) -> str:
    return (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _parse_iso(value: Any, name: str) -> float:
    if not isinstance(value, str):
        raise _error(400, f"{name} must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _error(400, f"{name} must be an ISO-8601 date-time string") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def environment_id(project_id: str, environment: str) -> str:
    """The environment's ID as transcripts show it: a turn run by alias (`development`) gets a
    stable made-up 24-hex ID per project and alias; one run by ID keeps it."""
    if re.fullmatch(r"[0-9a-fA-F]{24}", environment):
        return environment.lower()
    return hashlib.sha256(f"{project_id.lower()}/{environment}".encode()).hexdigest()[:24]


# -- wire shapes ----------------------------------------------------------------------------


def _error(status: int, message: str) -> Reject:
    """The NestJS-style body the docs leave undocumented (docs/emulator-spec.md)."""
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    body = {"statusCode": status, "message": message, "error": names.get(status, "Error")}
    return Reject(json_response(body, status_code=status))


def _properties_of(book: TranscriptBook, transcript: Transcript) -> list[dict[str, Any]]:
    shown = []
    for property_id, (value, meta, at) in transcript.values.items():
        definition = book.properties.get(property_id)
        if definition is None:
            continue
        shown.append(
            {
                "value": value,
                "metadata": meta,
                "createdAt": _iso(at),
                "updatedAt": _iso(at),
                "id": property_id,
                "name": definition["name"],
                "type": definition["type"],
                "default": False,
            }
        )
    return shown


def _evaluations_of(book: TranscriptBook, transcript: Transcript) -> list[dict[str, Any]]:
    shown = []
    for evaluation_id, (value, reason, cost, at) in transcript.results.items():
        definition = book.evaluations.get(evaluation_id, {})
        result: dict[str, Any] = {
            "value": value,
            "reason": reason,
            "cost": cost,
            "createdAt": _iso(at),
            "updatedAt": _iso(at),
            "id": evaluation_id,
            "name": definition.get("name", evaluation_id),
            "description": definition.get("description"),
            "default": False,
            "type": definition.get("type", "boolean"),
        }
        if result["type"] == "number":
            result["minimumValue"] = definition.get("minimumValue", 1)
            result["maximumValue"] = definition.get("maximumValue", 5)
        shown.append(result)
    return shown


def _transcript_body(book: TranscriptBook, transcript: Transcript) -> dict[str, Any]:
    return {
        "id": transcript.id,
        "sessionID": transcript.session_id,
        "projectID": transcript.project_id,
        "environmentID": environment_id(transcript.project_id, transcript.environment_id),
        "createdAt": _iso(transcript.created_at),
        "updatedAt": _iso(transcript.updated_at),
        "expiresAt": None,
        "endedAt": None if transcript.ended_at is None else _iso(transcript.ended_at),
        "recordingURL": None,
        "properties": _properties_of(book, transcript),
        "evaluations": _evaluations_of(book, transcript),
    }


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return _LONG_NUMBER.sub("[NUMBER]", _EMAIL.sub("[EMAIL]", value))
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _log_body(log: Log, *, unredacted: bool) -> dict[str, Any]:
    at = _iso(log.at)
    data = log.data if unredacted or log.type != "action" else _redacted(log.data)
    return {"type": log.type, "data": data, "createdAt": at, "updatedAt": at}


# -- access ---------------------------------------------------------------------------------


def _project_access(core: EmulatorCore, request: Request, project_id: str) -> None:
    """A workspace key (`VF.WS.`) reaches every project; a project key (`VF.DM.`) its own."""
    key = request.headers.get("authorization")
    if not key:
        raise _error(401, "Auth Key Required")
    if not any(a.project_id.lower() == project_id.lower() for a in core.agents):
        raise _error(404, f"Project {project_id} not found")
    if key.startswith("VF.WS.") and len(key) > len("VF.WS."):
        return
    try:
        agent = core.agent_for_key(key)
    except AuthError:
        raise _error(401, "Unauthorized") from None
    if agent.project_id.lower() != project_id.lower():
        raise _error(403, "token does not have permissions for some of the requested resources")


def _book(core: EmulatorCore) -> TranscriptBook:
    return core.transcripts


def _transcript(core: EmulatorCore, request: Request, transcript_id: str) -> Transcript:
    found = _book(core).get(transcript_id)
    if found is None:
        if not request.headers.get("authorization"):
            raise _error(401, "Auth Key Required")
        raise _error(404, f"Transcript {transcript_id} not found")
    _project_access(core, request, found.project_id)
    return found


# -- search ---------------------------------------------------------------------------------


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _error(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _error(400, f"{name} must be between {low} and {high}")
    return value


def _filter_value(book: TranscriptBook, transcript: Transcript, key: str) -> Any:
    if key in transcript.values:
        return transcript.values[key][0]
    if key in transcript.results:
        return transcript.results[key][0]
    return None


def _matches_filter(book: TranscriptBook, transcript: Transcript, item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise _error(400, "each filter needs a string id and an op")
    op = item.get("op")
    found = _filter_value(book, transcript, item["id"])
    if op == "exists":
        return found is not None
    if op == "not_exists":
        return found is None
    if op in ("eq", "neq"):
        same = found is not None and str(found).lower() == str(item.get("value")).lower()
        return same if op == "eq" else not same
    if op == "contains":
        return found is not None and str(item.get("value")) in str(found)
    raise _error(400, f"filter op {op!r} is not supported by the emulator")


def _selected(book: TranscriptBook, body: dict[str, Any], transcript: Transcript) -> bool:
    if "sessionID" in body and transcript.session_id != body["sessionID"]:
        return False
    if "environmentID" in body and body["environmentID"] != environment_id(
        transcript.project_id, transcript.environment_id
    ):
        return False
    if "startDate" in body and transcript.created_at < _parse_iso(body["startDate"], "startDate"):
        return False
    if "endDate" in body and transcript.created_at > _parse_iso(body["endDate"], "endDate"):
        return False
    filters = body.get("filters") or []
    if not isinstance(filters, list):
        raise _error(400, "filters must be an array")
    return all(_matches_filter(book, transcript, item) for item in filters)


async def _search(core: EmulatorCore, call: Call) -> Response:
    request = call.request
    project_id = request.path_params["projectID"]
    _project_access(core, request, project_id)
    take = _query_int(request, "take", DEFAULT_TAKE, 1, MAX_TAKE)
    skip = _query_int(request, "skip", 0, 0, 2**53 - 1)
    order = request.query_params.get("order", "DESC").upper()
    if order not in ("ASC", "DESC"):
        raise _error(400, "order must be ASC or DESC")
    body = object_body(call)
    book = _book(core)
    found = [t for t in book.of_project(project_id) if _selected(book, body, t)]
    found.sort(key=lambda t: (t.created_at, t.id), reverse=order == "DESC")
    page = found[skip : skip + take]
    return json_response({"transcripts": [_transcript_body(book, t) for t in page]})


async def _get(core: EmulatorCore, call: Call) -> Response:
    request = call.request
    transcript = _transcript(core, request, request.path_params["transcriptID"])
    unredacted = request.query_params.get("unredacted", "").lower() == "true"
    only_conversation = request.query_params.get("filterConversation", "").lower() == "true"
    kept = request.query_params.getlist("customTraceTypes")
    logs = [
        _log_body(log, unredacted=unredacted)
        for log in transcript.logs
        if not only_conversation
        or log.type != "trace"
        or log.data.get("type") in CONVERSATION_TRACES | set(kept)
    ]
    body = _transcript_body(_book(core), transcript)
    history = [{"id": transcript.id, "createdAt": body["createdAt"]}]
    return json_response({"transcript": {**body, "history": history, "logs": logs}})


# -- properties -----------------------------------------------------------------------------


def _named_definition(core: EmulatorCore, call: Call) -> tuple[dict[str, Any], str, str]:
    """A new property's or evaluation's body, project and name, checked as both routes do."""
    body = object_body(call)
    project_id, name = body.get("projectID"), body.get("name")
    if not isinstance(project_id, str):
        raise _error(400, "projectID must be a string")
    _project_access(core, call.request, project_id)
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise _error(400, "name must be a string of 1 to 100 characters")
    return body, project_id, name


async def _list_properties(core: EmulatorCore, call: Call) -> Response:
    project_id = call.request.path_params["projectID"]
    _project_access(core, call.request, project_id)
    found = [p for p in _book(core).properties.values() if p["projectID"] == project_id]
    return json_response({"properties": found})


async def _create_property(core: EmulatorCore, call: Call) -> Response:
    body, project_id, name = _named_definition(core, call)
    kind = body.get("type")
    if kind not in PROPERTY_TYPES:
        raise _error(400, f"type must be one of {', '.join(PROPERTY_TYPES)}")
    now = _iso(time.time())
    definition = {
        "id": new_id(),
        "projectID": project_id,
        "name": name,
        "type": kind,
        "default": False,
        "createdAt": now,
        "updatedAt": now,
    }
    _book(core).properties[definition["id"]] = definition
    return json_response({"property": definition}, status_code=201)


async def _set_value(core: EmulatorCore, call: Call) -> Response:
    body = object_body(call)
    property_id, transcript_id, value = (
        body.get(k) for k in ("propertyID", "transcriptID", "value")
    )
    if not isinstance(transcript_id, str) or not isinstance(property_id, str):
        raise _error(400, "propertyID and transcriptID must be strings")
    if not isinstance(value, str):
        raise _error(400, "value must be a string")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _error(400, "metadata must be an object or null")
    transcript = _transcript(core, call.request, transcript_id)
    book = _book(core)
    definition = book.properties.get(property_id)
    if definition is None or definition["projectID"] != transcript.project_id:
        raise _error(404, f"Property {property_id} not found")
    at = _iso(book.set_value(transcript, property_id, value, metadata))
    shown = {
        "propertyID": property_id,
        "transcriptID": transcript_id,
        "value": value,
        "metadata": metadata,
        "createdAt": at,
        "updatedAt": at,
    }
    return json_response({"propertyValue": shown}, status_code=201)


async def _values(core: EmulatorCore, call: Call) -> Response:
    transcript_id = call.request.path_params["transcriptID"]
    transcript = _transcript(core, call.request, transcript_id)
    shown = [
        {
            "propertyID": property_id,
            "transcriptID": transcript_id,
            "value": value,
            "metadata": meta,
            "createdAt": _iso(at),
            "updatedAt": _iso(at),
        }
        for property_id, (value, meta, at) in transcript.values.items()
    ]
    return json_response({"propertyValues": shown})


# -- evaluations ----------------------------------------------------------------------------


async def _list_evaluations(core: EmulatorCore, call: Call) -> Response:
    project_id = call.request.path_params["projectID"]
    _project_access(core, call.request, project_id)
    found = [e for e in _book(core).evaluations.values() if e["projectID"] == project_id]
    return json_response({"evaluations": found})


async def _create_evaluation(core: EmulatorCore, call: Call) -> Response:
    body, _, _ = _named_definition(core, call)  # the body keeps both
    kind = body.get("type")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= 10000:
        raise _error(400, "prompt must be a string of 1 to 10000 characters")
    if kind not in PROPERTY_TYPES:
        raise _error(400, f"type must be one of {', '.join(PROPERTY_TYPES)}")
    evaluation = {
        **{k: v for k, v in body.items() if k not in ("id", "default", "averageCost")},
        "id": new_id(),
        "description": body.get("description"),
        "default": False,
        "enabled": bool(body.get("enabled", True)),
        "averageCost": None,
        "settings": body.get("settings"),
    }
    _book(core).evaluations[evaluation["id"]] = evaluation
    return json_response({"evaluation": evaluation}, status_code=201)


def control_routes(core: EmulatorCore) -> list[Route]:
    """`POST /_emulator/transcript-evaluation-results`: what Voiceflow's evaluator would have
    found (`{transcriptID, evaluationID, value, reason?, cost?}`); the emulator runs no model."""

    async def plant_result(request: Request) -> Response:
        body = await request.json()
        transcript = _book(core).get(str(body.get("transcriptID")))
        if transcript is None or body.get("evaluationID") not in _book(core).evaluations:
            return json_response({"error": "unknown transcriptID or evaluationID"}, 404)
        _book(core).set_result(
            transcript,
            body["evaluationID"],
            body.get("value"),
            str(body.get("reason", "")),
            float(body.get("cost", 0.0)),
        )
        return json_response({"planted": True}, status_code=201)

    return [Route("/_emulator/transcript-evaluation-results", plant_result, methods=["POST"])]


def analytics_routes(core: EmulatorCore) -> list[Route]:
    def route(path: str, handler: Any, method: str) -> Route:
        return Route(path, api_route(core, handler), methods=[method])

    return [
        route("/v1/transcript/project/{projectID}", _search, "POST"),
        route("/v1/transcript/{transcriptID}", _get, "GET"),
        route("/v1/transcript-property/project/{projectID}", _list_properties, "GET"),
        route("/v1/transcript-property", _create_property, "POST"),
        route("/v1/transcript-property-value", _set_value, "POST"),
        route("/v1/transcript-property-value/transcript/{transcriptID}", _values, "GET"),
        route("/v1/transcript-evaluation/project/{projectID}", _list_evaluations, "GET"),
        route("/v1/transcript-evaluation", _create_evaluation, "POST"),
    ]
