"""How the A2A agent is served: alone (`vf-mcp a2a`), beside /mcp or not, by several workers
sharing one Redis, and never loaded by a stdio start."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from a2a.types import TaskState

from tests.a2a_helpers import CARD_PATH, a2a_server, caller, message, texts
from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.children import spawn, stop
from tests.processes import free_port, http_server, server_env, wait_until_healthy
from tests.test_agents import EXAMPLES, KEYS, base, two_agents  # noqa: F401 - fixtures
from tests.test_scale_out import redis_url  # noqa: F401 - the module's real Redis, as a fixture
from tests.threaded_server import serve_in_thread
from vf_mcp.agents import load_agents
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator
from vf_mcp.http import build_fronts, http_app

pytestmark = pytest.mark.anyio


@contextmanager
def a2a_alone(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`vf-mcp a2a` as a real process; its stderr is read once it stopped."""
    port = free_port()
    process = spawn(
        [sys.executable, "-m", "vf_mcp", "a2a", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{url}/healthz", process)
        yield url, process
    finally:
        stop(process)


async def test_vf_mcp_a2a_serves_the_agent_alone(emulator: Emulator) -> None:
    with a2a_alone(server_env(emulator.url)) as (url, process):
        async with caller(url) as agent:
            first = await agent.send(message("track my order"))
            shipped = await agent.send(
                message("1001", context_id=first.context_id, task_id=first.id)
            )
            no_mcp = await agent.http.post(f"{url}/mcp", json={})
    assert process.returncode == 0  # stopped in order: nothing in flight was cut
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    assert texts(shipped) == ["Order 1001 has shipped and should arrive on Friday."]
    assert no_mcp.status_code == 404
    assert f"serving A2A at {url}{CARD_PATH}" in stderr
    for output in (stderr, *agent.bodies):
        assert CANARY_KEY not in output
        assert CANARY_SECRET not in output


def test_http_serves_a2a_beside_mcp_unless_turned_off(emulator: Emulator) -> None:
    # Served by default: tests/test_a2a_js.py talks to `vf-mcp --transport http` as it starts.
    with http_server(server_env(emulator.url, VF_MCP_A2A="false")) as (off, _):
        none = httpx.get(off + CARD_PATH)
        rpc = httpx.post(off + "/a2a/default", json={})
        mcp = httpx.post(off + "/mcp", json={})
    assert (none.status_code, rpc.status_code) == (404, 404)
    assert mcp.status_code != 404  # MCP is still served


def test_a_stdio_start_does_not_load_the_a2a_sdk() -> None:
    probe = (
        "import sys\n"
        "from vf_mcp.cli import build_parser\n"
        "from vf_mcp.config import Settings\n"
        "from vf_mcp.server import build_server\n"
        "build_parser()\n"
        f"build_server(Settings.validated({{'api_key': {CANARY_KEY!r}}}))\n"
        "print(sorted(m for m in sys.modules if m == 'a2a' or m.startswith('a2a.')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"


async def test_any_worker_answers_any_task_through_one_redis(
    stream_settings: Settings,
    emulator: Emulator,
    redis_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    shared = Settings.validated(stream_settings.model_dump() | {"store_url": redis_url})
    with a2a_server(shared) as one, a2a_server(shared) as two:
        async with caller(one.url) as first, caller(two.url) as second:
            started = await first.send(message("track my order"))
            found = await second.get_task(started.id)
            ids = {"context_id": started.context_id, "task_id": started.id}
            number = message("1001", **ids)
            shipped = await second.send(number)  # worker one holds the task; two runs the turn
            before = Counter(r.path for r in emulator.requests)
            resent = await first.send(number)  # answered by two: one finds the answer in Redis
            after = Counter(r.path for r in emulator.requests)
            cancelled = await second.cancel(started.id)
            seen_by_one = await first.get_task(started.id)
    assert found.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert texts(shipped) == ["Order 1001 has shipped and should arrive on Friday."]
    assert texts(resent) == texts(shipped)
    assert after == before
    assert cancelled.status.state == seen_by_one.status.state == TaskState.TASK_STATE_CANCELED


async def test_each_agent_of_the_agents_file_is_an_a2a_agent_of_its_own(
    base: Settings,  # noqa: F811 - the agents tests' fixtures, imported above
    two_agents: Emulator,  # noqa: F811
) -> None:
    directory = load_agents(EXAMPLES / "agents.yaml", base, KEYS)
    with serve_in_thread(http_app(build_fronts(base, agents=directory), base)) as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            default = (await http.get(CARD_PATH)).json()
            billing = (await http.get(f"/a2a/billing{CARD_PATH}")).json()
        async with caller(running.url) as agent:
            agent.http.headers["A2A-Version"] = "1.0"
            sent = {"messageId": "b1", "role": "ROLE_USER", "parts": [{"data": {}}]}
            answer = await agent.rpc("SendMessage", {"message": sent}, path="/a2a/billing")
    assert (default["name"], default["description"]) == (
        "support",
        "orders, tracking and questions",
    )
    assert (billing["name"], billing["description"]) == ("billing", "refunds and invoices")
    assert billing["supportedInterfaces"][0]["url"] == f"{running.url}/a2a/billing"
    reply = answer["result"]["task"]["status"]["message"]["parts"][0]["text"]
    assert reply == "Hi, this is Acme billing. How can I help?"
