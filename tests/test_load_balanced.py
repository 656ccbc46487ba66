"""Three workers behind Debian's haproxy, one redis-server, 200 conversations at once, faults
injected, and one worker stopped mid-run (SIGKILL, or SIGTERM) and started again.

What must hold: every conversation completes or ends on an error that says whether its turn may
have run (the driver repeats a turn only when it certainly did not); a turn whose connection was
cut (its worker died) is either answered, or recorded as lost in flight, which the next call
(`get_state`) explains in one line; the runtime sees no turn of a user twice; every transcript
holds every turn answered to the client; the survivors' memory and the runtime's open
connections come back to their level before the run.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.children import spawn, stop
from tests.processes import free_port, server_env, wait_until_healthy
from tests.services import haproxy, redis_server
from vf_mcp.emulator import Emulator
from vf_mcp.tools.errors import ERROR_META_KEY

# `heavy`: under `pytest -n 2` the load tests share one worker, never loading both cores at once.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240), pytest.mark.xdist_group("heavy")]

CONVERSATIONS = 200
WORKERS = 3
STOP_AFTER_TURNS = 150  # about a fifth of the run: plenty of turns in flight on every worker
PROBE = "probe-in-flight"
"""A conversation whose turn is sent straight to the stopped worker, slowed at the runtime, so one
turn is surely in flight there when the signal comes (whatever the balancer did with the rest)."""
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
# The example agent's order path, then goodbye: four turns a conversation.
SCRIPT: list[dict[str, Any]] = [
    {"launch": True},
    {"choice": "Track an order"},
    {"message": "1002"},
    {"choice": "That's all"},
]


@dataclass
class Tally:
    """What the driver saw, for the asserts and the report."""

    completed: int = 0
    ended_may_have_run: int = 0
    repeated_not_run: int = 0
    turns_answered: int = 0
    cut: int = 0  # turns whose connection was cut (a worker died under them)
    waited: int = 0  # times the next call found the cut turn still held by its worker's lease
    answered: dict[str, list[str]] = field(default_factory=dict)  # user id -> kinds answered
    lost: dict[str, str] = field(default_factory=dict)  # user id -> the one-line explanation
    settled: dict[str, Any] = field(default_factory=dict)  # user id -> what get_state said
    finished: set[str] = field(default_factory=set)  # user ids whose every turn was answered
    endings: Counter[str] = field(default_factory=Counter)  # why conversations ended early

    def report(self) -> str:
        return (
            f"{self.completed} completed, {self.ended_may_have_run} ended on a turn that may "
            f"have run, {self.repeated_not_run} turns repeated that certainly did not run, "
            f"{self.turns_answered} turns answered, {self.cut} cut ({len(self.lost)} lost in "
            f"flight, {self.waited} waits); endings: {dict(self.endings)}"
        )


@dataclass
class Worker:
    port: int
    env: dict[str, str]
    process: subprocess.Popen[Any] | None = None

    def start(self) -> None:
        # From the main thread: the child is tied to its starting thread's life.
        command = [sys.executable, "-m", "vf_mcp", "--transport", "http", "--port", str(self.port)]
        self.process = spawn(command, env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip

    def wait_ready(self) -> None:
        assert self.process is not None
        wait_until_healthy(f"http://127.0.0.1:{self.port}/healthz", self.process)

    def rss_kib(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


def rpc(name: str, arguments: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def tool_result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC result of a stateless call answered as JSON or as one SSE message."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        text = data[-1]
    message = json.loads(text)
    assert "result" in message, message
    result: dict[str, Any] = message["result"]
    return result


async def turn(
    http: httpx.AsyncClient, url: str, arguments: dict[str, Any], tool: str = "interact"
) -> tuple[str, Any]:
    """One call: ("ok", result), ("not_run", why) to repeat, ("cut", why) when the connection
    broke under it (a worker died), ("running" | "lost", line) when a cut turn is found, or
    ("may_have_run", why) to stop."""
    try:
        response = await http.post(url, json=rpc(tool, arguments), headers=HEADERS)
    except httpx.TransportError as exc:
        return "cut", repr(exc)  # haproxy closed a reused connection: the worker died on it
    if response.status_code == 503:
        return "not_run", "no worker took it"  # haproxy found no worker to connect to
    if response.status_code != 200:
        return "cut", f"HTTP {response.status_code}"  # e.g. 502: a worker died on it
    result = tool_result(response)
    if not result.get("isError"):
        return "ok", result
    error = result["_meta"][ERROR_META_KEY]
    if error["kind"] in ("turn_running", "turn_lost"):
        return error["kind"].removeprefix("turn_"), error["message"]
    return ("may_have_run" if error["may_have_run"] else "not_run"), error["message"]


async def after_a_cut(http: httpx.AsyncClient, url: str, user_id: str, tally: Tally) -> None:
    """What a client does when its call was cut: ask get_state, which says what became of the
    turn (still running on a live worker, lost in flight, or answered)."""
    for _ in range(200):  # a lapsed lease (3 s) is found within a few polls
        outcome, detail = await turn(http, url, {"user_id": user_id}, tool="get_state")
        if outcome == "running":
            tally.waited += 1
            await anyio.sleep(0.1)  # polling interval of a client waiting, not synchronisation
            continue
        if outcome == "lost":
            assert "\n" not in detail and "lost in flight" in detail, detail
            tally.lost[user_id] = detail
        elif outcome == "not_run":
            continue  # no worker took the get_state (the balancer between checks): ask again
        tally.settled[user_id] = (outcome, detail)
        return
    raise AssertionError(f"{user_id}: the cut turn stayed pending")


async def conversation(
    http: httpx.AsyncClient, url: str, tally: Tally, on_turn: anyio.Event, turns_seen: list[int]
) -> None:
    user_id: str | None = None
    for step in SCRIPT:
        arguments = dict(step) if user_id is None else {"user_id": user_id, **step}
        for _ in range(20):  # bounded: a turn that never ran is repeated, never forever
            outcome, detail = await turn(http, url, arguments)
            if outcome != "not_run":
                break
            tally.repeated_not_run += 1
        if outcome == "cut":
            tally.cut += 1
            if user_id is not None:  # a launch without an id cut off: no conversation to ask
                await after_a_cut(http, url, user_id, tally)
        if outcome != "ok":
            tally.ended_may_have_run += 1
            tally.endings[re.sub(r"/v2.*?/user/[^/ ]+", "", str(detail))[:80]] += 1
            return
        user_id = detail["structuredContent"]["user_id"]
        assert user_id is not None
        tally.answered.setdefault(user_id, []).append(next(iter(step)))
        tally.turns_answered += 1
        turns_seen[0] += 1
        if turns_seen[0] >= STOP_AFTER_TURNS:
            on_turn.set()
    tally.completed += 1
    if user_id is not None:
        tally.finished.add(user_id)


async def transcripts_hold_every_answered_turn(
    http: httpx.AsyncClient, url: str, tally: Tally
) -> int:
    checked = 0
    for user_id, kinds in tally.answered.items():
        response = await http.post(
            url, json=rpc("transcript", {"user_id": user_id}), headers=HEADERS
        )
        turns = tool_result(response)["structuredContent"]["turns"]
        recorded = [t["user"]["kind"] for t in turns]
        # Every answered turn, in order; one more only where the last turn was cut off with its
        # worker: answered before the worker died, or recorded as lost in flight (and then the
        # driver was told so in one line).
        assert recorded[: len(kinds)] == kinds, (user_id, recorded, kinds)
        assert len(recorded) - len(kinds) <= (0 if user_id in tally.finished else 1), (
            user_id,
            recorded,
            kinds,
        )
        lost = [t for t in turns if t.get("lost_in_flight")]
        assert len(lost) == (1 if user_id in tally.lost else 0), (user_id, turns)
        checked += 1
    return checked


def turns_run_twice(emulator: Emulator) -> list[tuple[str, str]]:
    """(user, action) pairs the runtime ran more than once (a refused request did not run)."""
    ran = Counter(
        (request.path, json.dumps(request.json, sort_keys=True))
        for request in emulator.requests
        if "interact" in request.path and (request.fault is None or request.fault.status is None)
    )
    return [key for key, count in ran.items() if count > 1]


@pytest.fixture
def workers(emulator: Emulator, project_id: str) -> Iterator[list[Worker]]:
    with redis_server() as redis_url:
        env = server_env(
            emulator.url,
            VOICEFLOW_PROJECT_ID=project_id,  # streamed turns, so streams can be cut
            VF_MCP_STORE_URL=redis_url,
            VF_MCP_LOG_LEVEL="WARNING",
            VOICEFLOW_RETRY_DEADLINE="10",
            VF_MCP_SHUTDOWN_DRAIN="1",  # haproxy checks every 200 ms and marks down on one failure
        )
        pool = [Worker(free_port(), env) for _ in range(WORKERS)]
        for worker in pool:
            worker.start()
        try:
            for worker in pool:
                worker.wait_ready()
            yield pool
        finally:
            for worker in pool:
                if worker.process is not None:
                    stop(worker.process)


def inject_faults(emulator: Emulator) -> None:
    interact = {"path_contains": "interact"}
    emulator.faults.add({"match": interact, "latency_ms": 150, "times": 60})
    emulator.faults.add({"match": interact, "status": 429, "retry_after": "0.2", "times": 25})
    emulator.faults.add({"match": interact, "status": 500, "times": 8})
    emulator.faults.add({"match": interact, "cut_stream_after_events": 1, "times": 8})


async def run_with_a_stop(
    emulator: Emulator, pool: list[Worker], tmp_path: Path, how: signal.Signals
) -> tuple[Tally, int | None]:
    victim = pool[1]
    assert victim.process is not None
    with ExitStack() as stack:
        base = stack.enter_context(haproxy([w.port for w in pool], tmp_path))
        url = f"{base}/mcp"
        limits = httpx.Limits(max_connections=CONVERSATIONS, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            warm = Tally()
            async with anyio.create_task_group() as tasks:
                for _ in range(2 * WORKERS):
                    tasks.start_soon(conversation, http, url, warm, anyio.Event(), [0])
            assert warm.completed == 2 * WORKERS, warm.report()
            rss_before = {w.port: w.rss_kib() for w in pool if w is not victim}
            connections_before = emulator.open_connections
            emulator.reset()
            tally, stop_now, seen = Tally(), anyio.Event(), [0]
            assert (await turn(http, url, {"user_id": PROBE, "launch": True}))[0] == "ok"
            tally.answered[PROBE] = ["launch"]
            # First: the first matching fault is the one applied.
            probe_turns = f"/user/{PROBE}/interact"
            emulator.faults.add({"match": {"path_contains": probe_turns}, "latency_ms": 3000})
            inject_faults(emulator)

            probed: list[tuple[str, Any]] = []
            code: int | None = None
            async with anyio.create_task_group() as tasks:
                for _ in range(CONVERSATIONS):
                    tasks.start_soon(conversation, http, url, tally, stop_now, seen)
                with anyio.fail_after(120):
                    await stop_now.wait()
                tasks.start_soon(probe, http, victim, probed)
                # Its second turn (the launch was the first) reached the runtime: it is in flight.
                assert await anyio.to_thread.run_sync(emulator.wait_for_requests, 2, probe_turns)
                victim.process.send_signal(how)
                code = await anyio.to_thread.run_sync(lambda: victim.process.wait(timeout=60))
                victim.start()
                await anyio.to_thread.run_sync(victim.wait_ready)
            await settle_probe(http, url, tally, probed, how)
            checked = await transcripts_hold_every_answered_turn(http, url, tally)
        print(f"\n[{how.name}] {tally.report()}; {checked} transcripts checked; worker exit {code}")
        assert tally.completed + tally.ended_may_have_run == CONVERSATIONS, tally.report()
        # Most complete; those a killed worker cut are accounted for above, not counted here.
        assert tally.completed + tally.cut > CONVERSATIONS // 2, tally.report()
        assert turns_run_twice(emulator) == []
        # The workers' idle connections to the runtime close (its keep-alive timeout).
        assert await anyio.to_thread.run_sync(
            lambda: emulator.wait_for_connections(connections_before, 15)
        ), f"{emulator.open_connections} connections left open (before: {connections_before})"
        for worker in pool:
            if worker is not victim:
                grown = worker.rss_kib() - rss_before[worker.port]
                print(f"[{how.name}] worker {worker.port} RSS grew {grown} KiB")
                assert grown < 40 * 1024, f"worker {worker.port} kept {grown} KiB after the run"
    return tally, code


async def probe(http: httpx.AsyncClient, victim: Worker, probed: list[tuple[str, Any]]) -> None:
    direct = f"http://127.0.0.1:{victim.port}/mcp"
    probed.append(await turn(http, direct, {"user_id": PROBE, "message": "track my order"}))


async def settle_probe(
    http: httpx.AsyncClient,
    url: str,
    tally: Tally,
    probed: list[tuple[str, Any]],
    how: signal.Signals,
) -> None:
    """The probe's turn was in flight at the signal: a drained worker answers it; a killed one
    cuts it, and the next call (get_state, through the balancer) says it was lost in flight."""
    ((outcome, detail),) = probed
    if how == signal.SIGTERM:
        assert outcome == "ok", detail
        tally.answered[PROBE].append("message")
        return
    assert outcome == "cut", detail
    tally.cut += 1
    await after_a_cut(http, url, PROBE, tally)
    assert "lost in flight" in tally.lost.get(PROBE, ""), tally.settled.get(PROBE)


async def test_a_killed_worker_loses_no_conversation_and_runs_no_turn_twice(
    emulator: Emulator, workers: list[Worker], tmp_path: Path
) -> None:
    tally, code = await run_with_a_stop(emulator, workers, tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert PROBE in tally.lost, tally.report()  # a turn in flight there was found and recorded


async def test_a_worker_stopped_with_sigterm_abandons_no_turn(
    emulator: Emulator, workers: list[Worker], tmp_path: Path
) -> None:
    tally, code = await run_with_a_stop(emulator, workers, tmp_path, signal.SIGTERM)
    assert code == 0  # nothing abandoned: every call in flight was answered
    # Only the injected 500s and cut streams end a conversation; no stop-related 502 or reset.
    assert tally.ended_may_have_run <= 16, tally.report()
    injected = ("Voiceflow runtime answered 500", "The stream of POST")
    assert all(why.startswith(injected) for why in tally.endings), tally.report()
