"""Run handles: a suite started with start_run runs in a worker's background; any worker reads its
progress and results and cancels it; a killed worker's run reads lost, a stopped one's stopped."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.canary import CANARY_KEY
from tests.processes import as_caller, http_server, server_env
from tests.services import redis_server
from vf_mcp.callers import namespace_for
from vf_mcp.config import Settings
from vf_mcp.domain.run import RunRecord
from vf_mcp.domain.transcript import RunResult
from vf_mcp.emulator import Emulator
from vf_mcp.errors import StoreError
from vf_mcp.logs import RedactingFormatter
from vf_mcp.runs.models import run_key
from vf_mcp.runs.store import StoredRun
from vf_mcp.server import build_server
from vf_mcp.store import Store
from vf_mcp.store.memory import InMemoryRuns, in_memory_store
from vf_mcp.store.redis import redis_store

pytestmark = pytest.mark.anyio

TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-fedcba9876543210"
INTERACT = {"path_contains": "interact"}
SLOW_MS = 3000  # a turn this slow is still in flight when the test acts on its run
MISSING = "run-0000000000000000"
# Three tests in order on one user: two quick ones (the second fails), then a slow one.
SEQUENCE = """
name: sequence
new_user_per_test: false
tests:
  - id: greets
    turns:
      - launch: true
        expect:
          - contains: Acme
  - id: wrong
    turns:
      - choice: Track an order
        expect:
          - contains: words the agent never says
  - id: tracks
    turns:
      - message: "1002"
"""
QUICK = """
name: quick
tests:
  - id: greets
    turns:
      - launch: true
        expect:
          - contains: Acme
"""


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def not_found(run_id: str) -> str:
    return (
        f"No run {run_id!r}: this server holds no run with that id for you (runs are kept as "
        "long as conversations, VF_MCP_STORE_TTL); start one with start_run"
    )


async def settled(client: Client, run_id: str, deadline_s: float = 10) -> Any:
    """get_run, round trip after round trip, until the run is no longer running."""
    with anyio.fail_after(deadline_s):
        while True:
            read = await client.call_tool("get_run", {"run_id": run_id})
            assert not read.is_error, text_of(read)
            if read.structured_content["state"] != "running":
                return read
            await anyio.sleep(0.05)  # the pace of polling; each look is a real call


async def wait_for_turns(emulator: Emulator, count: int) -> None:
    assert await anyio.to_thread.run_sync(emulator.wait_for_requests, count, "interact")


async def test_a_run_is_read_and_cancelled_from_another_worker_and_hidden_from_other_callers(
    emulator: Emulator, redis_url: str
) -> None:
    # The first two turns are quick; the third is still in flight while the test reads the run.
    emulator.faults.add({"match": INTERACT, "latency_ms": 0, "times": 2})
    emulator.faults.add({"match": INTERACT, "latency_ms": SLOW_MS, "times": 1})
    env = server_env(
        emulator.url, VF_MCP_STORE_URL=redis_url, VF_MCP_AUTH_TOKENS=f"{TOKEN_A},{TOKEN_B}"
    )
    with http_server(env) as (first, _), http_server(env) as (second, _):
        async with (
            as_caller(first, TOKEN_A) as a,
            as_caller(second, TOKEN_A) as b,
            as_caller(second, TOKEN_B) as other,
        ):
            started = await a.call_tool("start_run", {"script": SEQUENCE})
            run_id = started.structured_content["run_id"]
            await wait_for_turns(emulator, 3)  # the two quick tests are done and recorded
            progress = await b.call_tool("get_run", {"run_id": run_id})
            hidden = await other.call_tool("get_run", {"run_id": run_id})
            not_theirs = await other.call_tool("cancel_run", {"run_id": run_id})
            missing = await b.call_tool("get_run", {"run_id": MISSING})
            cancelling = await b.call_tool("cancel_run", {"run_id": run_id})
            cancelled = await settled(b, run_id)
            emulator.faults.add({"match": INTERACT, "latency_ms": SLOW_MS, "times": 1})
            going = await a.call_tool("start_run", {"script": QUICK})
            await wait_for_turns(emulator, 4)
    # Both workers were stopped with SIGTERM, the first with a run still going: it said so.
    store = redis_store(redis_url, ttl_seconds=60)
    try:
        key = run_key(namespace_for(TOKEN_A), going.structured_content["run_id"])
        stopped = await store.runs.load(key)
    finally:
        await store.aclose()
    assert stopped is not None and stopped.record.state == "stopped"
    assert started.structured_content["tests_total"] == 3
    assert progress.structured_content["state"] == "running"
    assert text_of(progress).startswith(
        f"Run {run_id} is running on agent default: 2 of 3 tests done, 2 turns; failing so far: "
        "sequence / wrong."
    )
    # Another caller's run is not found, in the very words of a run that never was.
    assert hidden.is_error and text_of(hidden) == not_found(run_id)
    assert not_theirs.is_error and text_of(not_theirs) == not_found(run_id)
    assert missing.is_error and text_of(missing) == not_found(MISSING)
    # The cancel reached the worker running it through the store, before its slow turn ended.
    assert cancelling.structured_content["cancel_requested"] is True
    assert cancelled.structured_content["state"] == "cancelled"
    assert text_of(cancelled).startswith(
        f"Run {run_id} was cancelled after 2 of 3 tests done, 2 turns; failing so far: "
        "sequence / wrong; cancel_run asked it to stop. The 2 tests it finished follow;"
    )
    # The tests that finished before the cancel keep their results; the one cut off is not shown.
    kept = RunResult.model_validate(cancelled.structured_content["result"])
    assert [(t.key, t.outcome) for t in kept.transcripts] == [
        ("greets", "passed"),
        ("wrong", "failed"),
    ]
    assert kept.stopped == "the run was cancelled: cancel_run asked it to stop"
    assert "sequence / wrong: FAILED" in text_of(cancelled)
    assert "sequence / tracks" not in text_of(cancelled)


async def test_a_finished_run_outlives_its_worker_and_a_killed_workers_run_reads_lost(
    emulator: Emulator, redis_url: str
) -> None:
    env = server_env(emulator.url, VF_MCP_STORE_URL=redis_url)
    with http_server(env) as (first, worker):
        async with Client(f"{first}/mcp") as a:
            done = await a.call_tool("start_run", {"script": QUICK})
            done_id = done.structured_content["run_id"]
            await settled(a, done_id)
            emulator.faults.add({"match": INTERACT, "latency_ms": SLOW_MS, "times": 1})
            going = await a.call_tool("start_run", {"script": QUICK})
        await wait_for_turns(emulator, 2)
        worker.kill()  # SIGKILL: no orderly stop, nothing recorded on the way out
        worker.wait()
    # The worker restarted: it reads the finished run's results from Redis, the other as lost.
    going_id = going.structured_content["run_id"]
    with http_server(env) as (second, _):
        async with Client(f"{second}/mcp") as b:
            again = await b.call_tool("get_run", {"run_id": done_id})
            lost = await settled(b, going_id)
    assert again.structured_content["state"] == "finished"
    (test,) = again.structured_content["result"]["suites"][0]["tests"]
    assert test["outcome"] == "passed"
    assert text_of(again).startswith(f"Run {done_id} finished: 1 test (1 passed), 1 turn.")
    assert "quick / greets: PASSED" in text_of(again)
    assert lost.structured_content["state"] == "lost"
    assert text_of(lost).startswith(f"Run {going_id} was lost with its worker after 0 of 1 test")
    assert f":{worker.pid} stopped renewing the run's heartbeat" in text_of(lost)


async def test_a_run_still_going_when_its_server_stops_reads_stopped(
    emulator: Emulator, settings: Settings
) -> None:
    emulator.faults.add({"match": INTERACT, "latency_ms": SLOW_MS, "times": 1})
    store = in_memory_store()  # outlives both servers, as Redis would
    async with Client(build_server(settings, store=store)) as client:
        started = await client.call_tool("start_run", {"script": QUICK})
        await wait_for_turns(emulator, 1)
    run_id = started.structured_content["run_id"]
    async with Client(build_server(settings, store=store)) as client:
        stopped = await client.call_tool("get_run", {"run_id": run_id})
    assert stopped.structured_content["state"] == "stopped"
    assert text_of(stopped) == (
        f"Run {run_id} stopped with its worker after 0 of 1 test done, 0 turns; its worker shut "
        "down while it ran. Start it again with start_run to get its results."
    )
    kept = await store.runs.load(run_key(None, run_id))
    assert kept is not None and kept.record.state == "stopped"


async def test_run_conversation_refuses_a_long_suite_and_names_start_run(
    settings: Settings,
) -> None:
    limited = settings.model_copy(update={"run_conversation_max_turns": 2})
    async with Client(build_server(limited)) as client:
        refused = await client.call_tool("run_conversation", {"script": SEQUENCE})
        fits = await client.call_tool("run_conversation", {"script": QUICK})
    assert refused.is_error
    assert text_of(refused) == (
        "This suite scripts 3 turns, more than run_conversation runs in one call "
        "(VF_MCP_RUN_CONVERSATION_MAX_TURNS=2), which a client would cut off: run it with "
        "start_run, then poll get_run for its progress and results"
    )
    assert not fits.is_error


async def test_unknown_run_ids_and_broken_scripts_are_refused_in_one_line(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as client:
        unknown = await client.call_tool("get_run", {"run_id": MISSING})
        odd = await client.call_tool("cancel_run", {"run_id": "../../etc"})
        broken = await client.call_tool("start_run", {"script": "tests: [oops"})
        started = await client.call_tool("start_run", {"script": QUICK})
        finished = await settled(client, started.structured_content["run_id"])
        again = await client.call_tool(
            "cancel_run", {"run_id": started.structured_content["run_id"]}
        )
    assert unknown.is_error and text_of(unknown) == not_found(MISSING)
    assert odd.is_error and text_of(odd) == not_found("../../etc")
    assert broken.is_error and "\n" not in text_of(broken)
    assert finished.structured_content["state"] == "finished"
    # Cancelling a run that is over leaves it as it was.
    assert again.structured_content["state"] == "finished"


async def test_run_keys_in_redis_carry_the_store_ttl_and_the_heartbeat_a_short_one(
    redis_url: str,
) -> None:
    from redis.asyncio import Redis

    from vf_mcp.domain.run import RunRecord

    store = redis_store(redis_url, ttl_seconds=120, prefix="test-runs:")
    redis = Redis.from_url(redis_url)
    key = run_key("t0123", MISSING)
    try:
        assert await store.runs.load(key) is None
        await store.runs.save(
            key, RunRecord(run_id=MISSING, agent="a", state="running", worker="w")
        )
        await store.runs.request_cancel(key)
        await store.runs.beat(key, 2.5)
        stored = await store.runs.load(key)
        assert stored is not None and stored.cancel_requested and stored.alive
        for name in ("run:t0123/" + MISSING, "run:t0123/" + MISSING + ":cancel"):
            assert 0 < await redis.ttl("test-runs:" + name) <= 120, name
        assert 0 < await redis.pttl(f"test-runs:run:t0123/{MISSING}:alive") <= 2500
    finally:
        await redis.delete(*await redis.keys("test-runs:*"))
        await redis.aclose()
        await store.aclose()


class FaultyRuns:
    """The in-process run store (our `RunStore` protocol), failing on purpose: the first
    `final_faults` writes of a run's final state fail as a Redis blip does, and `progress_fault`,
    when given, is what the first write of a finished test raises (a fault in the store)."""

    def __init__(self, *, final_faults: int = 0, progress_fault: Exception | None = None) -> None:
        self.inner = InMemoryRuns()
        self.final_faults = final_faults
        self.final_writes = 0
        self.progress_fault = progress_fault

    async def save(self, key: str, record: RunRecord) -> None:
        if record.state != "running":
            self.final_writes += 1
            if self.final_writes <= self.final_faults:
                raise StoreError("The store could not save the run: Redis is down; try again")
        elif record.tests_done and self.progress_fault is not None:
            raise self.progress_fault
        await self.inner.save(key, record)

    async def load(self, key: str) -> StoredRun | None:
        return await self.inner.load(key)

    async def request_cancel(self, key: str) -> None:
        await self.inner.request_cancel(key)

    async def cancel_requested(self, key: str) -> bool:
        return await self.inner.cancel_requested(key)

    async def beat(self, key: str, ttl_seconds: float) -> None:
        await self.inner.beat(key, ttl_seconds)


def store_with(runs: FaultyRuns) -> Store:
    return dataclasses.replace(in_memory_store(), runs=runs)


async def test_a_run_broken_inside_reads_error_in_one_masked_line_and_logs_its_traceback(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fault = ValueError(f"the record was refused:\n  key {CANARY_KEY}\n  (line 2)")
    store = store_with(FaultyRuns(progress_fault=fault))
    with caplog.at_level(logging.ERROR, logger="vf_mcp.runs.manager"):
        async with Client(build_server(settings, store=store)) as client:
            started = await client.call_tool("start_run", {"script": QUICK})
            failed = await settled(client, started.structured_content["run_id"])
    detail = (
        "it broke inside vf-mcp (ValueError: the record was refused: key VF.DM.*** (line 2)); "
        "start it again with start_run, and report it if it repeats (the server's log holds "
        "the traceback)"
    )
    assert failed.structured_content["state"] == "error"
    assert failed.structured_content["detail"] == detail
    run_id = started.structured_content["run_id"]
    assert text_of(failed) == f"Run {run_id} failed after 1 of 1 test done, 1 turn; {detail}."
    (logged,) = [r for r in caplog.records if r.getMessage() == f"run {run_id} broke inside vf-mcp"]
    line = RedactingFormatter().format(logged)
    assert "Traceback" in line and "ValueError: the record was refused" in line
    assert CANARY_KEY not in line and "\n" not in line


async def test_a_store_blip_at_the_end_of_a_run_does_not_lose_its_results(
    settings: Settings,
) -> None:
    runs = FaultyRuns(final_faults=2)
    async with Client(build_server(settings, store=store_with(runs))) as client:
        started = await client.call_tool("start_run", {"script": QUICK})
        finished = await settled(client, started.structured_content["run_id"])
    assert runs.final_writes == 3  # two failed, the third landed
    assert finished.structured_content["state"] == "finished"
    (test,) = finished.structured_content["result"]["suites"][0]["tests"]
    assert test["outcome"] == "passed"


async def test_a_caller_runs_at_most_max_runs_at_once(
    emulator: Emulator, settings: Settings
) -> None:
    # Long enough for the next call to land while the first run's turn is still in flight.
    emulator.faults.add({"match": INTERACT, "latency_ms": 1000, "times": 1})
    limited = settings.model_copy(update={"max_runs": 1})
    async with Client(build_server(limited)) as client:
        going = await client.call_tool("start_run", {"script": QUICK})
        await wait_for_turns(emulator, 1)
        refused = await client.call_tool("start_run", {"script": QUICK})
        run_id = going.structured_content["run_id"]
        await client.call_tool("cancel_run", {"run_id": run_id})
        after = await client.call_tool("start_run", {"script": QUICK})
        await settled(client, after.structured_content["run_id"])
    assert refused.is_error
    assert text_of(refused) == (
        f"You have 1 run(s) going on this worker ({run_id}), the most it runs at once for one "
        "caller (VF_MCP_MAX_RUNS=1): wait for one to finish (get_run reads it) or stop one with "
        "cancel_run, then call start_run again"
    )
    assert not after.is_error, text_of(after)


async def test_the_in_process_store_never_drops_a_run_still_going() -> None:
    runs = InMemoryRuns(max_runs=2)

    def record(run_id: str, state: Any) -> RunRecord:
        return RunRecord(run_id=run_id, agent="a", state=state, worker="w")

    await runs.save("-/going", record("going", "running"))
    await runs.beat("-/going", 60)
    await runs.save("-/dead", record("dead", "running"))  # never beat: its worker is gone
    for name in ("one", "two"):
        await runs.save(f"-/{name}", record(name, "finished"))
    kept = {name: await runs.load(f"-/{name}") is not None for name in ("going", "dead", "one")}
    assert kept == {"going": True, "dead": False, "one": False}
    assert await runs.load("-/two") is not None
