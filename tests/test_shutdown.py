"""A worker stopped with SIGTERM finishes the calls in flight, closes its clients and exits 0; one
that had to cut a call at its deadline says so with exit code 1."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import anyio
import httpx
import pytest

from tests.node_tools import CLIENTS, require, system_node
from tests.processes import http_server, server_env
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator
from vf_mcp.errors import ConfigurationError
from vf_mcp.runs.manager import STOPPING
from vf_mcp.shutdown import KEEP_ALIVE_SECONDS, uvicorn_config

pytestmark = pytest.mark.anyio


# One stateless JSON-RPC POST: an SDK client would also reconnect in the background to a
# worker that is stopping, which is beside the point here.
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "interact", "arguments": {"launch": True}},
}
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
QUICK = "name: quick\ntests:\n  - id: greets\n    turns:\n      - launch: true\n"
START_RUN = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "start_run", "arguments": {"script": QUICK}},
}


def tool_result(answer: httpx.Response) -> dict[str, object]:
    """The `result` of a JSON-RPC answer, sent as JSON or as one SSE event."""
    body = answer.text
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        body = next(line[5:] for line in body.splitlines() if line.startswith("data:"))
    result = json.loads(body)["result"]
    assert isinstance(result, dict)
    return result


async def turn_while_stopping(emulator: Emulator, env: dict[str, str]) -> tuple[str | None, int]:
    """Start a turn, SIGTERM the worker once the runtime has it; (the answer's body, exit code)."""
    with http_server(env) as (base, process):
        answers: list[str | None] = []

        async def call() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                try:
                    answer = await http.post(f"{base}/mcp", json=CALL, headers=HEADERS)
                    answers.append(answer.text if answer.status_code == 200 else None)
                except httpx.TransportError:
                    answers.append(None)  # cut: the worker abandoned the call

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            arrived = await anyio.to_thread.run_sync(emulator.wait_for_requests, 1, "interact")
            assert arrived, "the turn never reached the runtime"
            process.send_signal(signal.SIGTERM)
        code = await anyio.to_thread.run_sync(lambda: process.wait(timeout=30))
    return answers[0], code


async def test_sigterm_lets_the_turn_in_flight_finish_and_exits_0(emulator: Emulator) -> None:
    emulator.faults.add({"match": {"path_contains": "interact"}, "latency_ms": 800})
    answer, code = await turn_while_stopping(emulator, server_env(emulator.url))
    assert code == 0
    assert answer is not None and "Acme order assistant" in answer
    assert '"isError":true' not in answer.replace(" ", "")
    # The worker closed its client on the way out: no connection to the runtime is left.
    assert await anyio.to_thread.run_sync(emulator.wait_for_connections, 0)


async def test_a_turn_cut_at_the_deadline_is_reported_by_exit_code_1(
    emulator: Emulator, project_id: str
) -> None:
    # A streamed turn whose events each come within the timeout, but whose whole outlasts the
    # shutdown deadline.
    emulator.faults.add({"match": {"path_contains": "interact"}, "chunk_delay_ms": 700})
    env = server_env(
        emulator.url,
        VOICEFLOW_PROJECT_ID=project_id,
        VOICEFLOW_TIMEOUT="1",
        VF_MCP_SHUTDOWN_TIMEOUT="1",
    )
    _, code = await turn_while_stopping(emulator, env)
    assert code == 1


def test_a_deadline_shorter_than_one_answer_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.validated({"timeout": 30, "shutdown_timeout": 5})
    assert str(caught.value) == (
        "VF_MCP_SHUTDOWN_TIMEOUT (5 s) is shorter than VOICEFLOW_TIMEOUT (30 s), so a stopping "
        "worker could cut a turn that is still within its timeout: set it to at least 30"
    )
    assert Settings.validated({"timeout": 30}).shutdown_deadline == 40


def _wait_for_log(process: subprocess.Popen[bytes], needle: str) -> str:
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode(errors="replace")
        if needle in line:
            return line
    raise AssertionError(f"the worker exited ({process.wait()}) without logging {needle!r}")


async def test_sigterm_with_a_drain_fails_the_health_check_while_still_serving(
    emulator: Emulator,
) -> None:
    # Behind a balancer: new calls keep being served until it has seen the health check fail,
    # but no new run: it would be stopped when the drain ends.
    with http_server(server_env(emulator.url, VF_MCP_SHUTDOWN_DRAIN="3")) as (base, process):
        async with httpx.AsyncClient(timeout=30) as http:
            before = await http.post(f"{base}/mcp", json=START_RUN, headers=HEADERS)
            process.send_signal(signal.SIGTERM)
            logged = await anyio.to_thread.run_sync(_wait_for_log, process, "answers 503")
            health = await http.get(f"{base}/healthz")
            answer = await http.post(f"{base}/mcp", json=CALL, headers=HEADERS)
            run = await http.post(f"{base}/mcp", json=START_RUN, headers=HEADERS)
        code = await anyio.to_thread.run_sync(lambda: process.wait(timeout=30))
    assert "for 3 s" in logged
    assert (health.status_code, health.json()) == (503, {"status": "stopping"})
    assert health.headers["content-type"] == "application/json"
    assert answer.status_code == 200 and "Acme order assistant" in answer.text
    assert tool_result(before).get("isError") is not True
    refused = tool_result(run)
    assert refused["isError"] is True
    assert refused["content"] == [{"type": "text", "text": STOPPING}]
    assert code == 0


def test_idle_connections_outlive_the_clients_own_idle_expiry() -> None:
    # A server closing an idle connection races the client's next POST on it (a read error, not
    # resent); so the client's pool, which expires idle connections first, must close them.
    config = uvicorn_config(lambda *_: None, Settings.validated({}), host="127.0.0.1", port=0)
    assert config.timeout_keep_alive == KEEP_ALIVE_SECONDS
    assert httpx.Limits().keepalive_expiry < KEEP_ALIVE_SECONDS  # httpx and the MCP SDK: 5 s
    assert KEEP_ALIVE_SECONDS > 60  # the idle timeout balancers commonly use


def test_sigterm_with_idle_sdk_clients_connected_exits_0_within_the_drain(
    emulator: Emulator,
) -> None:
    # The TypeScript SDK opens a standalone GET /mcp stream after initialize and keeps it; held
    # open, three such streams kept a stopping worker 27.7 s and made it exit 1. Answered 405,
    # none is held.
    drain = 1
    env = server_env(emulator.url, VF_MCP_SHUTDOWN_DRAIN=str(drain))
    script = require(CLIENTS / "ts_idle_http.mjs", "the idle TypeScript client")
    with http_server(env) as (base, process):
        idle = subprocess.Popen(
            [system_node(), str(script), f"{base}/mcp", "3"],
            cwd=CLIENTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert idle.stdout is not None
            assert json.loads(idle.stdout.readline()) == {"connected": 3}
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=drain + 5)
            took = time.monotonic() - started
        finally:
            idle.kill()
            idle.wait()
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
    assert code == 0
    assert took < drain + 5
    assert "abandoned" not in stderr and "Traceback" not in stderr
