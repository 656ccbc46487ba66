"""Large results fit the host: the tools whose results grow with a suite or a conversation declare
the size they may reach, a model reads the verdict and the failures first, and a long run or
transcript comes a page at a time, each page saying how to read the next."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mcp import Client

from tests.test_runs import settled
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import RunResult
from vf_mcp.emulator import Emulator
from vf_mcp.server import build_server
from vf_mcp.transcripts.render import TEXT_BUDGET, render_run, render_transcript

pytestmark = pytest.mark.anyio

SUITE = """
name: sizes
tests:
  - id: greets
    turns:
      - launch: true
        expect:
          - contains: Acme order assistant
  - id: sells_pizza
    turns:
      - launch: true
        expect:
          - contains: pizza
"""
NEXT = re.compile(r"offset=(\d+)\) shows the next ones\.$")


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_the_large_tools_declare_the_size_their_results_may_reach(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    declared = {
        name: (tool.meta or {}).get("anthropic/maxResultSizeChars") for name, tool in tools.items()
    }
    assert {name for name, size in declared.items() if size} == {
        "run_conversation",
        "get_run",
        "transcript",
        "import_transcripts",
    }
    assert declared["get_run"] == 500_000  # Claude Code's ceiling for the declaration


async def test_a_run_reads_its_verdict_and_failures_first_then_pages_by_test(
    settings: Settings, emulator: Emulator
) -> None:
    async with Client(build_server(settings)) as client:
        ran = await client.call_tool("run_conversation", {"script": SUITE})
        started = await client.call_tool("start_run", {"script": SUITE})
        run_id = started.structured_content["run_id"]
        await settled(client, run_id)
        first = await client.call_tool("get_run", {"run_id": run_id, "limit": 1})
        second = await client.call_tool("get_run", {"run_id": run_id, "offset": 1, "limit": 1})
    text = text_of(ran)
    lines = text.splitlines()
    assert lines[0] == "Verdict: NOT PASSED (2 tests: 1 failed, 1 passed)"
    assert lines[1].startswith("- sizes / sells_pizza: FAIL [FAIL] ")
    # The failing test's transcript comes before the passing one's, whatever the suite's order.
    assert text.index("sizes / sells_pizza: FAILED") < text.index("sizes / greets: PASSED")
    assert "Shown:" not in text  # a short run is shown whole
    assert text_of(first).splitlines()[2] == lines[0]  # after get_run's own line
    assert text_of(first).endswith(
        f"Shown: tests 1-1 of 2; get_run(run_id={run_id!r}, offset=1) shows the next ones."
    )
    assert "sizes / greets: PASSED" not in text_of(first)
    assert "sizes / greets: PASSED" in text_of(second)
    assert text_of(second).endswith("Shown: tests 2-2 of 2.")
    # The structured content holds the whole run, whichever page the text shows.
    assert len(first.structured_content["result"]["suites"][0]["tests"]) == 2


async def test_a_long_run_comes_in_pages_within_the_budget(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        ran = await client.call_tool("run_conversation", {"script": SUITE})
    run = RunResult.model_validate(ran.structured_content)
    suite = run.suites[0]
    passing = next(t for t in suite.tests if t.outcome == "passed")
    turn = passing.turns[0]
    bulky = turn.agent.messages[0].model_copy(update={"text": "x" * 6_000})
    agent = turn.agent.model_copy(update={"messages": [bulky]})
    long_test = passing.model_copy(update={"turns": [turn.model_copy(update={"agent": agent})]})
    tests = [*suite.tests, *(long_test.model_copy(update={"name": f"t{i:02}"}) for i in range(30))]
    big = run.model_copy(update={"suites": [suite.model_copy(update={"tests": tests})]})

    def rest(offset: int) -> str:
        return f"get_run(run_id='r', offset={offset}) shows the next ones"

    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = render_run(big, offset=offset, rest=rest)
        assert len(page) < TEXT_BUDGET + 7_000  # within the budget, or one test over it
        assert page.startswith("Verdict: NOT PASSED (32 tests: 31 passed, 1 failed)")
        seen += re.findall(r"^sizes / (\w+): [A-Z]+$", page, flags=re.MULTILINE)
        found = NEXT.search(page)
        offset = int(found.group(1)) if found else None
    assert len(seen) == len(set(seen)) == 32  # every test, once
    assert seen[0] == "sells_pizza"
    whole = sum(len(render_transcript(t)) for t in big.transcripts)
    assert whole > 3 * TEXT_BUDGET  # in one piece it would not fit


async def test_a_transcript_pages_by_turn(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await client.call_tool("interact", {"user_id": "p1", "launch": True})
        await client.call_tool("interact", {"user_id": "p1", "choice": "Track an order"})
        await client.call_tool("interact", {"user_id": "p1", "message": "1001"})
        whole = await client.call_tool("transcript", {"user_id": "p1"})
        first = await client.call_tool("transcript", {"user_id": "p1", "limit": 2})
        rest = await client.call_tool("transcript", {"user_id": "p1", "offset": 2})
    assert "Shown:" not in text_of(whole)
    assert "Turn 2" in text_of(first) and "Turn 3" not in text_of(first)
    assert text_of(first).endswith(
        "Shown: turns 1-2 of 3; transcript(user_id='p1', offset=2) shows the next ones."
    )
    assert "Order 1001 has shipped" in text_of(rest) and "Turn 1\n" not in text_of(rest)
    assert text_of(rest).endswith("Shown: turns 3-3 of 3.")
    assert len(first.structured_content["turns"]) == 3  # the structured content holds them all
