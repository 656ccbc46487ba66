"""The emulator's v4 runtime generation (session keys, /v4/interact[/stream]) over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator_fixtures import KEY
from tests.sse_frames import parse_sse, stream_traces
from vf_mcp.emulator import AgentDefinition, Emulator, FaultPlan, running_emulator

REPO = Path(__file__).resolve().parents[1]
ANY_24_HEX = "66ac4456ce370d54189e8731"
LAUNCH = {"type": "launch"}
ASK = {"type": "path-ask_question", "payload": {"label": "Ask a question"}}
QUESTION = {"type": "text", "payload": "How do I return an item?"}


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def anonymous(emu: Emulator) -> Iterator[httpx.Client]:
    """No default Authorization: v4 calls pass the session key themselves."""
    with httpx.Client(base_url=emu.url, timeout=10) as http:
        yield http


def start_session(client: httpx.Client, project: str, user: str, env: str | None = None) -> str:
    scope = f"/environment/{env}" if env is not None else ""
    response = client.post(f"/v4/project/{project}{scope}/session", json={"userID": user})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"sessionKey"}
    key: str = body["sessionKey"]
    return key


def v4(http: httpx.Client, key: str, action: Any, **body: Any) -> httpx.Response:
    return http.post(
        "/v4/interact", json={"action": action, **body}, headers={"authorization": key}
    )


def v4_traces(http: httpx.Client, key: str, action: Any, **body: Any) -> list[dict[str, Any]]:
    response = v4(http, key, action, **body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert set(payload) == {"traces"}
    traces: list[dict[str, Any]] = payload["traces"]
    return traces


def v4_stream(
    http: httpx.Client, key: str, action: Any, query: str = "", **body: Any
) -> tuple[httpx.Response, bytes]:
    headers = {"authorization": key}
    url = f"/v4/interact/stream{query}"
    with http.stream("POST", url, json={"action": action, **body}, headers=headers) as response:
        return response, response.read()


def texts(traces: list[dict[str, Any]]) -> list[str]:
    return [t["payload"]["message"] for t in traces if t["type"] == "text"]


def event(name: str) -> dict[str, Any]:
    return {"type": "event", "payload": {"event": {"name": name}}}


def assert_builder_error(response: httpx.Response, code: int, data: str) -> None:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["code"] == code
    assert body["data"] == data
    assert body["dateTime"].endswith("Z")
    assert isinstance(body["timestamp"], int)


# -- session start ----------------------------------------------------------------------------


@pytest.mark.parametrize("env", [None, "production", "main", ANY_24_HEX])
def test_session_start_on_both_paths(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator, env: str | None
) -> None:
    key = start_session(client, project, "ann", env)
    binding = emu.session_for_key(key)
    assert binding is not None
    assert (binding.project_id, binding.user_id) == (project, "ann")
    # The emulator's stand-in for the traffic split is `development`.
    assert binding.environment == (env or "development")
    assert key.startswith("vfsk_")
    assert len(key) == len("vfsk_") + 32
    assert KEY not in key
    assert v4(anonymous, key, LAUNCH).status_code == 200


def test_session_keys_are_random_per_user(client: httpx.Client, project: str) -> None:
    keys = {start_session(client, project, user) for user in ("a", "b", "c")}
    assert len(keys) == 3


def test_session_start_auth_and_environment_errors(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    body = {"userID": "bo"}
    assert_builder_error(
        anonymous.post(f"/v4/project/{project}/session", json=body), 401, "Auth Key Required"
    )
    assert_builder_error(
        client.post(
            f"/v4/project/{project}/session", json=body, headers={"Authorization": "Bearer x"}
        ),
        401,
        "Unauthorized",
    )
    for scope in ("", "/environment/main"):
        path = f"/v4/project/{ANY_24_HEX}{scope}/session"
        assert_builder_error(client.post(path, json=body), 401, "no access to project")
    assert_builder_error(
        client.post(f"/v4/project/{project}/environment/nightly/session", json=body),
        404,
        "Environment nightly does not exist",
    )


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "userID"),
        (b"{}", "userID"),
        (b'{"userID": ""}', "userID"),
        (b'{"userID": 7}', "userID"),
        (json.dumps({"userID": "x" * 257}).encode(), "userID"),
        (b"[]", "body"),
        (b"{not json", "body"),
    ],
)
def test_session_start_rejects_bad_bodies(
    client: httpx.Client, project: str, content: bytes, field: str
) -> None:
    response = client.post(
        f"/v4/project/{project}/session",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert set(response.json()) == {"errors"}
    assert list(response.json()["errors"]) == [field]
    assert isinstance(response.json()["errors"][field]["message"], str)


def test_longest_user_id_is_accepted(client: httpx.Client, project: str) -> None:
    start_session(client, project, "x" * 256)


def test_new_session_for_the_same_user_ends_the_old_one(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    first = start_session(client, project, "cy")
    other_user = start_session(client, project, "dee")
    assert v4(anonymous, first, LAUNCH).status_code == 200
    second = start_session(client, project, "cy", "production")
    assert second != first
    assert_builder_error(v4(anonymous, first, LAUNCH), 401, "Invalid or expired session key")
    assert v4(anonymous, second, LAUNCH).status_code == 200
    assert v4(anonymous, other_user, LAUNCH).status_code == 200


# -- interact and stream shapes ---------------------------------------------------------------


def test_interact_returns_a_traces_object(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    key = start_session(client, project, "eve")
    traces = v4_traces(anonymous, key, LAUNCH)
    assert [t["type"] for t in traces] == ["text", "choice"]
    assert texts(traces)[0].startswith("Hi!")
    assert all(isinstance(t["time"], int) for t in traces)


def test_interact_default_and_explicit_exclusions(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    key = start_session(client, project, "fay")
    default = {t["type"] for t in v4_traces(anonymous, key, event("all_traces"))}
    assert not default & {"block", "debug", "flow"}
    everything = {
        t["type"]
        for t in v4_traces(anonymous, key, event("all_traces"), config={"excludeTypes": []})
    }
    assert {"block", "debug", "flow"} <= everything
    only = v4_traces(anonymous, key, event("all_traces"), config={"excludeTypes": ["text"]})
    assert "text" not in {t["type"] for t in only}
    assert "debug" in {t["type"] for t in only}


def test_credit_exhaustion_is_delivered_on_both_v4_routes(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    key = start_session(client, project, "gus")
    _, raw = v4_stream(anonymous, key, event("credit_error"))
    for traces in (v4_traces(anonymous, key, event("credit_error")), stream_traces(raw)):
        assert [t["type"] for t in traces] == ["path", "debug", "end"]
        assert traces[1]["payload"]["level"] == "error"
        assert "credit_limit_reached" in traces[1]["payload"]["message"]


def test_stream_framing_ends_with_empty_object_and_has_no_state_event(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    key = start_session(client, project, "hal")
    response, raw = v4_stream(anonymous, key, LAUNCH, "?state=true")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = parse_sse(raw)
    assert [e.event for e in events] == ["trace", "trace", "end"]
    assert [e.id for e in events] == ["1", "2", "3"]
    assert raw.startswith(b"event: trace\nid: 1\ndata: {")
    assert raw.endswith(b"event: end\nid: 3\ndata: {}\n\n")
    assert events[-1].json() == {}
    assert events[0].json()["payload"]["message"].startswith("Hi!")


def test_v2_stream_end_frame_is_unchanged(client: httpx.Client, project: str) -> None:
    url = f"/v2/project/{project}/user/ida/interact/stream"
    with client.stream("POST", url, json={"action": LAUNCH}) as response:
        raw = response.read()
    assert raw.endswith(b"event: end\nid: 3\n\n")


def test_stream_writes_control_characters_raw(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    key = start_session(client, project, "ian")
    _, raw = v4_stream(anonymous, key, event("all_traces"))
    assert b"\x01" in raw
    assert b"\\u0001" not in raw
    assert not {t["type"] for t in stream_traces(raw)} & {"block", "debug", "flow"}


def test_completion_events_come_from_the_body_not_the_query(
    client: httpx.Client, anonymous: httpx.Client, project: str
) -> None:
    key = start_session(client, project, "jo")
    v4_traces(anonymous, key, LAUNCH)

    v4_traces(anonymous, key, ASK)
    _, raw = v4_stream(anonymous, key, QUESTION, "?completion_events=true")
    ignored = stream_traces(raw)
    assert "completion" not in {t["type"] for t in ignored}
    [plain] = texts(ignored)

    v4_traces(anonymous, key, ASK)
    _, raw = v4_stream(anonymous, key, QUESTION, config={"completionEvents": True})
    completions = [t for t in stream_traces(raw) if t["type"] == "completion"]
    assert completions[0]["payload"]["state"] == "start"
    assert completions[-1]["payload"]["state"] == "end"
    streamed = "".join(t["payload"].get("content", "") for t in completions)
    assert streamed == plain


def test_variables_merge_and_state_is_shared_with_legacy_routes(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    key = start_session(client, project, "kim")
    v4_traces(
        anonymous,
        key,
        LAUNCH,
        variables={"order_number": "1001"},
        state={"ignored": True},
        config={"userTimezone": "America/New_York"},
    )
    legacy_state = client.get("/state/user/kim").json()
    assert legacy_state["variables"]["order_number"] == "1001"
    assert legacy_state["variables"]["vf_user_timezone"] == "America/New_York"
    assert legacy_state["variables"]["user_id"] == "kim"
    assert legacy_state["variables"]["sessions"] == 2  # a new user's first launch
    assert legacy_state == emu.state("kim")

    # The legacy route carries on the same conversation, and the v4 stream sees its changes.
    client.patch("/state/user/kim/variables", json={"order_number": "2002"})
    legacy = client.post("/state/user/kim/interact", json={"action": ASK}).json()
    assert [t["type"] for t in legacy] == ["path", "text"]
    _, raw = v4_stream(anonymous, key, QUESTION, variables={"extra": 1})
    assert "return" in texts(stream_traces(raw))[0].lower()
    final = emu.state("kim")
    assert final is not None
    assert final["variables"]["order_number"] == "2002"
    assert final["variables"]["extra"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "action"),
        ({"action": None}, "action"),
        ({"action": {"payload": 1}}, "action"),
        ({"action": LAUNCH, "variables": []}, "variables"),
        ({"action": LAUNCH, "config": []}, "config"),
        ({"action": LAUNCH, "config": {"completionEvents": "yes"}}, "config.completionEvents"),
        ({"action": LAUNCH, "config": {"excludeTypes": "debug"}}, "config.excludeTypes"),
        ({"action": LAUNCH, "config": {"userTimezone": 5}}, "config.userTimezone"),
    ],
)
def test_interact_rejects_bad_bodies(
    client: httpx.Client, anonymous: httpx.Client, project: str, body: Any, field: str
) -> None:
    key = start_session(client, project, "lu")
    for path in ("/v4/interact", "/v4/interact/stream"):
        response = anonymous.post(path, json=body, headers={"authorization": key})
        assert response.status_code == 400
        assert field in response.json()["errors"]


# -- session keys as credentials --------------------------------------------------------------


def test_unknown_missing_and_api_keys_are_401(
    client: httpx.Client, anonymous: httpx.Client, emu: Emulator
) -> None:
    for path in ("/v4/interact", "/v4/interact/stream"):
        missing = anonymous.post(path, json={"action": LAUNCH})
        assert_builder_error(missing, 401, "Auth Key Required")
        for bad in ("vfsk_" + "A" * 32, KEY, f"Bearer {KEY}"):
            response = anonymous.post(path, json={"action": LAUNCH}, headers={"authorization": bad})
            assert_builder_error(response, 401, "Invalid or expired session key")
    assert emu.open_streams == 0


def test_expired_keys_are_401_until_a_new_session(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    first, second = start_session(client, project, "mo"), start_session(client, project, "ned")
    assert v4(anonymous, first, LAUNCH).status_code == 200
    assert emu.expire_session_keys() == 2
    assert emu.expire_session_keys() == 0
    for key in (first, second):
        assert_builder_error(v4(anonymous, key, LAUNCH), 401, "Invalid or expired session key")
        response, _ = v4_stream(anonymous, key, LAUNCH)
        assert response.status_code == 401
    renewed = start_session(client, project, "mo")
    assert v4(anonymous, renewed, ASK).status_code == 200  # the conversation itself survives


def test_session_ttl_is_configurable() -> None:
    with pytest.raises(ValueError, match="positive"):
        Emulator(session_ttl_seconds=0)
    assert Emulator().session_ttl_seconds == 3600
    # A nanosecond lifetime has always run out by the time the next request arrives.
    with (
        running_emulator(session_ttl_seconds=1e-9) as emu,
        httpx.Client(base_url=emu.url, headers={"Authorization": KEY}) as http,
    ):
        assert emu.session_ttl_seconds == 1e-9
        key = start_session(http, emu.agents[0].project_id, "ola")
        assert_builder_error(v4(http, key, LAUNCH), 401, "Invalid or expired session key")


def test_reset_forgets_session_keys(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    key = start_session(client, project, "pat")
    emu.reset()
    assert v4(anonymous, key, LAUNCH).status_code == 401


def test_keys_are_bound_to_their_project_and_user() -> None:
    def agent(project_id: str, name: str) -> AgentDefinition:
        return AgentDefinition.model_validate(
            {
                "project_id": project_id,
                "name": name,
                "start": "hi",
                "environments": ["main"],
                "nodes": {"hi": {"steps": [{"type": "text", "message": f"I am {name}"}]}},
            }
        )

    first, second = agent("a" * 24, "first"), agent("b" * 24, "second")
    second_key = {"Authorization": f"VF.DM.{second.project_id}.secret"}
    with running_emulator([first, second]) as emu, httpx.Client(base_url=emu.url) as http:
        # Without `development`, the traffic split lands on the agent's first environment.
        started = http.post(
            f"/v4/project/{second.project_id}/session", json={"userID": "u"}, headers=second_key
        )
        key = started.json()["sessionKey"]
        binding = emu.session_for_key(key)
        assert binding is not None
        assert binding.environment == "main"
        assert texts(v4_traces(http, key, LAUNCH)) == ["I am second"]
        assert emu.state("u", second.project_id) is not None
        assert emu.state("u", first.project_id) is None
        wrong_project = http.post(
            f"/v4/project/{first.project_id}/session", json={"userID": "u"}, headers=second_key
        )
        assert_builder_error(wrong_project, 401, "no access to project")
        development = http.post(
            f"/v4/project/{second.project_id}/environment/development/session",
            json={"userID": "u"},
            headers=second_key,
        )
        assert_builder_error(development, 404, "Environment development does not exist")
        # A session event for another project's key is the older, session-id variant.
        first_key = {"Authorization": f"VF.DM.{first.project_id}.secret"}
        other = http.post(
            f"/v4/project/{first.project_id}/session", json={"userID": "u"}, headers=first_key
        ).json()["sessionKey"]
        response = http.post(
            f"/v2/project/{second.project_id}/session/{other}/event",
            json={"action": event("ping")},
            headers=second_key,
        )
        assert response.status_code == 200
        assert emu.session_events[-1].v4_session is False


# -- session events ---------------------------------------------------------------------------


def test_session_event_with_a_live_key_is_201_without_body(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    key = start_session(client, project, "quy")
    v4_traces(anonymous, key, LAUNCH)
    before = emu.state("quy")
    action = {"type": "event", "payload": {"event": {"name": "order_shipped"}}, "metadata": {}}
    response = client.post(f"/v2/project/{project}/session/{key}/event", json={"action": action})
    assert response.status_code == 201
    assert response.content == b""
    [recorded] = emu.session_events
    assert recorded.session_id == key
    assert recorded.project_id == project
    assert recorded.action == action
    assert recorded.v4_session is True
    assert recorded.applied is False
    assert recorded.to_dict()["v4_session"] is True
    assert emu.state("quy") == before  # no socket connection, so nothing happens


def test_session_event_with_an_id_or_a_dead_key_keeps_the_200_reply(
    client: httpx.Client, project: str, emu: Emulator
) -> None:
    key = start_session(client, project, "ray")
    emu.expire_session_keys()
    for session_id in ("ray", key):
        response = client.post(
            f"/v2/project/{project}/session/{session_id}/event", json={"action": event("x")}
        )
        assert response.status_code == 200
        assert response.json() == "Event broadcasted, does not guarantee if the session exists"
    assert [e.v4_session for e in emu.session_events] == [False, False]
    assert client.post(f"/v2/project/{project}/session/{key}/event", json={}).status_code == 400


# -- faults -----------------------------------------------------------------------------------


def test_status_and_latency_faults_on_v4_routes(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    emu.faults.add(
        FaultPlan.model_validate({"match": {"path_contains": "/session"}, "status": 503})
    )
    failed = client.post(f"/v4/project/{project}/session", json={"userID": "sid"})
    assert_builder_error(failed, 503, "Service Unavailable")
    key = start_session(client, project, "sid")

    emu.faults.add(FaultPlan(status=429, retry_after=2))
    limited = v4(anonymous, key, LAUNCH)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    emu.faults.add(FaultPlan.model_validate({"match": {"path_contains": "/stream"}, "status": 500}))
    response, _ = v4_stream(anonymous, key, LAUNCH)
    assert_builder_error(response, 500, "Unknown error")
    emu.faults.add(FaultPlan(latency_ms=5))
    assert v4(anonymous, key, LAUNCH).status_code == 200
    assert [r.fault.status or r.fault.latency_ms for r in emu.requests if r.fault] == [
        503, 429, 500, 5
    ]  # fmt: skip
    assert emu.faults.pending == []


def test_cut_stream_on_v4_has_no_end_event_and_closes(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    key = start_session(client, project, "tom")
    emu.faults.add(FaultPlan(cut_stream_after_events=2))
    assert v4(anonymous, key, LAUNCH).status_code == 200  # stream-only faults wait for a stream
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        anonymous.stream(
            "POST",
            "/v4/interact/stream",
            json={"action": event("all_traces")},
            headers={"authorization": key},
        ) as response,
    ):
        for chunk in response.iter_raw():
            received.extend(chunk)
    assert [e.event for e in parse_sse(bytes(received))] == ["trace", "trace"]
    assert emu.wait_for_streams_closed(5)
    assert emu.open_streams == 0
    state = emu.state("tom")
    assert state is not None
    assert state["stack"][-1]["nodeID"] == "all_traces"  # the turn still completed server-side


def test_slow_v4_stream_still_delivers_everything(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    key = start_session(client, project, "uli")
    emu.faults.add(FaultPlan(chunk_delay_ms=1))
    _, raw = v4_stream(anonymous, key, LAUNCH)
    assert [e.event for e in parse_sse(raw)] == ["trace", "trace", "end"]
    assert emu.requests[-1].fault is not None
    assert emu.requests[-1].fault.chunk_delay_ms == 1
    assert emu.wait_for_streams_closed(5)


# -- recordings -------------------------------------------------------------------------------


def test_recordings_redact_api_and_session_keys(
    client: httpx.Client, anonymous: httpx.Client, project: str, emu: Emulator
) -> None:
    key = start_session(client, project, "vic")
    v4(anonymous, key, LAUNCH, variables={"a": 1})
    v4_stream(anonymous, key, LAUNCH)
    client.post(f"/v2/project/{project}/session/{key}/event", json={"action": event("x")})
    recorded = emu.requests
    assert [r.path for r in recorded] == [
        f"/v4/project/{project}/session",
        "/v4/interact",
        "/v4/interact/stream",
        f"/v2/project/{project}/session/<redacted>/event",
    ]
    assert all(r.headers["authorization"] == "<redacted>" for r in recorded)
    assert recorded[0].json == {"userID": "vic"}
    assert recorded[1].json == {"action": LAUNCH, "variables": {"a": 1}}
    with httpx.Client(base_url=emu.url) as control:
        dumped = control.get("/_emulator/requests").text + control.get("/_emulator/faults").text
    assert key not in dumped
    assert KEY not in dumped
    assert key not in json.dumps([r.to_dict() for r in recorded])
