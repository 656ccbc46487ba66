"""Every failure an A2A client meets at vf-mcp reaches the official JavaScript SDK (`@a2a-js/sdk`,
pinned in tests/clients/package.json) as the server's one line: the error the SDK throws, or the
task's state and its status message. What a person's code shows when a call fails is what it
reads there, so each case here checks that line: one line, the server's own words for what
happened and what to send next, the expected state, and no trace of the API key.

One server (bearer tokens on, turns streamed from the emulator, a few conversations answered with
faults), one Node process (tests/clients/a2a_errors.mjs) walking every case. Before the refusals
were JSON-RPC errors in lines of vf-mcp's own, the SDK showed: for a call without a token, "HTTP
error for SendMessage! Status: 401 Unauthorized. Response: {...}" (a JSON dump), and streamed, "An
unexpected error occurred." (the server's words dropped); for an empty message "Validation
failed"; for an unknown task "Task not found"; for a cancelled task cancelled again "Task cannot
be canceled"; for a message to it "Task ... is in terminal state: TASK_STATE_CANCELED"; for a
request over the size limit "HTTP error for SendMessage! Status: 413 ... Request body too large".

The OAuth refusals of the A2A endpoint, which the Node process does not reach (it needs an
authorization server), are checked in process at the end.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.a2a_helpers import a2a_server, introspection_server, with_oauth
from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.node_tools import CLIENTS, require, system_node
from tests.processes import http_server, server_env
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan, default_agent
from vf_mcp.web import JSON_RPC_REFUSED

SCRIPT = CLIENTS / "a2a_errors.mjs"
SDK = CLIENTS / "node_modules" / "@a2a-js" / "sdk" / "package.json"
TOKEN = "js-errors-token-0123456789abcdef"
CONTEXTS = {
    "auth": "js-auth",
    "refused": "js-refused",
    "failing": "js-failing",
    "failingStream": "js-failing-stream",
    "refusedKey": "js-refused-key",
    "menu": "js-menu",
    "cancelled": "js-cancelled",
    "busy": "js-busy",
}
TOO_LARGE = 4_200_000  # characters of text: over the 4 MiB request limit once sent
# Each fault is matched by the conversation's upstream user id, `<caller namespace>.<context>`.
FAULTS = {
    "failing": {"times": -1, "status": 503},
    "failingStream": {"times": -1, "status": 503},
    "refusedKey": {"times": -1, "status": 401},
    # The first turn of `busy` streams slowly: a second message arrives while it still runs. The
    # script sends it on the turn's first progress event, not after a timer; the delay between
    # the later frames only keeps the turn running long enough for it to arrive.
    "busy": {"times": 1, "chunk_delay_ms": 800},
}

INPUT_REQUIRED, FAILED = "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_FAILED"
SEND_A_TOKEN = (
    "send 'Authorization: Bearer <token>' with one of the tokens set in VF_MCP_AUTH_TOKENS"
)
NO_TASK = ("No task 'no-such-task' for this caller", "a message without a taskId starts a new one")
CANCELLED = "with contextId js-cancelled"


@dataclass(frozen=True)
class Case:
    id: str
    says: tuple[str, ...]
    """Pieces of the server's own line the person must read: what happened, what to do next."""
    error: str | None = None
    """The SDK error's class (`error.name`) for a call that threw; None: the call resolved."""
    state: str | None = None
    """The task's state, for a call that resolved (the person reads its status message)."""
    kind: str | None = None
    """The reply metadata's `errorKind`, for a turn that failed or was refused."""


CASES = [
    # No token, a wrong one: refused with 401 before anything runs (the card stays public).
    Case("no-token", ("carried no token", SEND_A_TOKEN), "JsonRpcTransportError"),
    Case("no-token-stream", ("carried no token", SEND_A_TOKEN), "JsonRpcTransportError"),
    Case(
        "wrong-token",
        ("bearer token is not one this server takes", SEND_A_TOKEN),
        "JsonRpcTransportError",
    ),
    Case("wrong-token-get", ("bearer token is not one", SEND_A_TOKEN), "JsonRpcTransportError"),
    # Messages that cannot run: refused, no task made.
    Case(
        "empty-message",
        ("lacks what A2A requires (message.parts)", "at least one part"),
        "RequestMalformedError",
    ),
    Case("empty-part", ("Part 0 is empty: give it text or data",), "RequestMalformedError"),
    Case(
        "file-part",
        ("Part 0 is a file (url)", "takes text parts and data parts only"),
        "ContentTypeNotSupportedError",
    ),
    Case(
        "not-an-object",
        ("Data part 0 is not an object", 'send one of {"choice"'),
        "RequestMalformedError",
    ),
    Case(
        "unknown-key",
        ("unknown keys (launch)", "it takes choice, action, variables"),
        "RequestMalformedError",
    ),
    Case("two-turns", ("One message is one turn", "not text and choice"), "RequestMalformedError"),
    Case(
        "too-large",
        ("over this server's limit of 4194304 bytes", "send a shorter message"),
        "JsonRpcTransportError",
    ),
    Case("unknown-task", NO_TASK, "TaskNotFoundError"),
    Case("unknown-task-stream", NO_TASK, "TaskNotFoundError"),
    # Tasks that are not there, or ended.
    Case("get-unknown", (*NO_TASK, "ListTasks shows yours"), "TaskNotFoundError"),
    Case("cancel-unknown", NO_TASK, "TaskNotFoundError"),
    Case("cancel", ("Cancelled: vf-mcp forgot this conversation",), state="TASK_STATE_CANCELED"),
    Case(
        "cancel-again",
        ("has already ended (canceled)", "nothing to cancel", CANCELLED),
        "TaskNotCancelableError",
    ),
    Case(
        "after-cancel",
        ("has ended (canceled) and takes no more messages", CANCELLED, "starts over"),
        "UnsupportedOperationError",
    ),
    Case("after-cancel-stream", ("has ended (canceled)", CANCELLED), "UnsupportedOperationError"),
    # The runtime failing: the task fails with the turn's error.
    Case(
        "runtime-fails",
        ("Voiceflow runtime answered 503", "check get_state before repeating"),
        state=FAILED,
        kind="upstream",
    ),
    Case(
        "runtime-fails-stream",
        ("Voiceflow runtime answered 503", "may or may not have run"),
        state=FAILED,
        kind="upstream",
    ),
    Case(
        "runtime-refuses-key",
        ("Voiceflow runtime answered 401", "Check VOICEFLOW_API_KEY"),
        state=FAILED,
        kind="unauthorized",
    ),
    # Refused before it was sent: the task asks again.
    Case(
        "wrong-button",
        ("No button is labelled 'Order pizza'", "valid choices: 1) Track an"),
        state=INPUT_REQUIRED,
        kind="invalid_input",
    ),
    Case(
        "wrong-button-stream",
        ("No button is labelled 'Order pizza'",),
        state=INPUT_REQUIRED,
        kind="invalid_input",
    ),
    Case(
        "turn-running",
        (
            "A turn of conversation js-busy is still running",
            "nothing was sent now: wait for its answer",
        ),
        state=INPUT_REQUIRED,
        kind="turn_running",
    ),
]


@dataclass(frozen=True)
class Seen:
    results: dict[str, dict[str, Any]]
    output: str
    """Everything the Node process and the server wrote."""
    upstream: list[str]
    """The paths of the requests the runtime got."""


@pytest.fixture(scope="module")
def javascript(emulator_session: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    """What the JavaScript SDK was handed in every case: one server, one Node process."""
    node = system_node()
    require(SDK, "@a2a-js/sdk")
    require(SCRIPT, "the A2A error-matrix script")
    emulator_session.reset()
    for name, fault in FAULTS.items():
        match = {"path_contains": f".{CONTEXTS[name]}/"}
        emulator_session.faults.add(FaultPlan.model_validate({"match": match, **fault}))
    env = server_env(
        emulator_session.url,
        VOICEFLOW_PROJECT_ID=default_agent().project_id,
        VF_MCP_AUTH_TOKENS=TOKEN,
        VOICEFLOW_MAX_RETRIES="0",
    )
    plan = {"token": TOKEN, "contexts": CONTEXTS, "tooLarge": TOO_LARGE}
    plan_file = Path(tmp_path_factory.mktemp("a2a-js-errors")) / "plan.json"
    try:
        with http_server(env) as (base, process):
            plan_file.write_text(json.dumps({"base": base, **plan}), encoding="utf-8")
            ran = subprocess.run(
                [node, str(SCRIPT), str(plan_file)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                cwd=CLIENTS,
            )
            process.terminate()
            _, server_log = process.communicate(timeout=10)
        upstream = [r.path for r in emulator_session.requests]
    finally:
        emulator_session.reset()
    assert ran.returncode == 0, ran.stderr[-4000:]
    output = ran.stdout + ran.stderr + server_log.decode()
    return Seen(json.loads(ran.stdout)["results"], output, upstream)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_javascript_sdk_shows_the_servers_line(javascript: Seen, case: Case) -> None:
    seen = javascript.results[case.id]
    if case.error is not None:
        line = seen["threw"]
        assert isinstance(line, str), seen  # it threw, and its message is a string
        assert seen["error"] == case.error
    else:
        assert seen["threw"] is None, seen["threw"]
        assert seen["state"] == case.state
        (line,) = seen["texts"]  # the status message is the one line, nothing beside it
    assert "\n" not in line and "[object Object]" not in line
    for piece in case.says:
        assert piece in line
    if case.kind is not None:
        # The reply's metadata holds the same line, with its kind (as MCP's error result does).
        assert seen["metadata"]["error"] == line
        assert seen["metadata"]["errorKind"] == case.kind


def test_a_second_message_while_a_turn_runs_sends_nothing_and_the_first_is_answered(
    javascript: Seen,
) -> None:
    first = javascript.results["turn-running-first"]
    assert first["state"] == INPUT_REQUIRED
    assert first["texts"][-1] == "Sure. What's your order number?"
    assert javascript.results["turn-running"]["metadata"]["mayHaveRun"] is False
    # The first message's two turns (launch, then its text) reached the runtime; the second, none.
    busy = [path for path in javascript.upstream if f".{CONTEXTS['busy']}/" in path]
    assert len(busy) == 2


def test_what_is_refused_reaches_no_runtime(javascript: Seen) -> None:
    refused = [CONTEXTS["auth"], CONTEXTS["refused"]]
    assert not [p for p in javascript.upstream for c in refused if f".{c}/" in p]


def test_the_card_stays_public_and_names_its_bearer_scheme(javascript: Seen) -> None:
    assert javascript.results["card"] == {"name": "Voiceflow agent", "schemes": ["bearer"]}


def test_nothing_a_javascript_client_reads_holds_the_key(javascript: Seen) -> None:
    assert set(javascript.results) >= {c.id for c in CASES}
    assert CANARY_KEY not in javascript.output
    assert CANARY_SECRET not in javascript.output


# --- in process: the A2A endpoint's refusals are JSON-RPC errors, /mcp's keep OAuth's shape -----


@pytest.fixture
def introspection() -> Iterator[str]:
    with introspection_server() as url:
        yield url


def test_oauth_refusals_on_the_a2a_endpoint_are_json_rpc_errors_in_one_line(
    stream_settings: Settings, introspection: str
) -> None:
    settings = with_oauth(stream_settings, introspection)
    sent = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "t"}}
    with a2a_server(settings) as running, httpx.Client(base_url=running.url) as http:
        anonymous = http.post("/a2a/default", json=sent)
        narrow = http.post(
            "/a2a/default", json=sent, headers={"Authorization": "Bearer narrow-oauth-token"}
        )
        mcp = http.post("/mcp", json=sent)
    assert (anonymous.status_code, narrow.status_code) == (401, 403)
    # OAuth clients read the challenge, in the MCP SDK's words as before.
    assert 'error="invalid_token"' in anonymous.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in narrow.headers["www-authenticate"]
    refused = anonymous.json()
    assert refused["jsonrpc"] == "2.0" and refused["error"]["code"] == JSON_RPC_REFUSED
    assert refused["error"]["data"] == {"error": "invalid_token"}
    line = refused["error"]["message"]
    assert line.startswith("This request carried no valid OAuth access token: get one from ")
    assert introspection in line and "\n" not in line
    assert narrow.json()["error"]["message"] == (
        "This request's OAuth access token lacks the scope vf: get one whose scope holds 'vf' "
        "and send it instead"
    )
    assert "error" in mcp.json() and "jsonrpc" not in mcp.json()  # /mcp: the MCP SDK's answer
