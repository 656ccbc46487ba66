"""Latency and judge-token budgets: `latency_ms` on a turn, a conversation and a suite, timed by
the emulator's injected delays; judge tokens from the endpoint's `usage`, summed per test, suite
and run, in every report, with `max_judge_tokens`; a replay reaches the same verdicts.

Margins are wide on purpose: a turn delayed 400 ms must fail a 200 ms limit, and a limit of a
minute must pass, however loaded the machine is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.evaluation_fixtures import (
    FakeJudge,
    closed_port_settings,
    judge_client,
    running_judge,
    verdict,
)
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import JudgeUsage, RunResult
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.evaluation.budgets import nearest_rank
from vf_mcp.evaluation.cli import failure_lines
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.html_report import html_report
from vf_mcp.evaluation.recording import Recorder, Replayer
from vf_mcp.evaluation.regrade import regrade
from vf_mcp.evaluation.reports import json_report, junit_xml, markdown_report
from vf_mcp.evaluation.runner import run_suites
from vf_mcp.evaluation.script import Suite

pytestmark = pytest.mark.anyio

XSD = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "schemas" / "junit-windyroad.xsd")))

DELAY_MS = 400
SLOW = {"latency_ms": {"max": 200}}
GENEROUS = {"latency_ms": {"max": 60000}}

TIMED = {
    "name": "Timed",
    # Over every turn of the suite: the delayed turn is the slowest, so `max` fails.
    "latency_ms": {"max": 200},
    "max_judge_tokens": 100,
    "tests": [
        {
            "id": "delayed",
            "turns": [
                {"launch": True, "expect": [SLOW, GENEROUS]},
                {"choice": "Track an order", "expect": [GENEROUS]},
            ],
            "expect": [{"latency_ms": {"p95": 60000}}, {"always": GENEROUS}],
        },
        {
            "id": "judged",
            # Its own budget wins over the suite's.
            "max_judge_tokens": 1000,
            "turns": [{"launch": True, "expect": [{"judge": "The agent greets the user"}]}],
        },
        {
            "id": "over_budget",
            "turns": [{"launch": True, "expect": [{"judge": "The agent greets the user"}]}],
        },
    ],
}


def outcomes(run: RunResult) -> dict[str, list[tuple[str, str]]]:
    found = {t.test_id: [(c.label, c.outcome) for c in t.all_checks()] for t in run.transcripts}
    found["(suite)"] = [(c.label, c.outcome) for s in run.suites for c in s.checks]
    return found


def delay_the_first_turn(emulator: Emulator) -> None:
    # One request is delayed: with concurrency 1 it is the first test's launch.
    emulator.faults.add(
        FaultPlan.model_validate({"match": {"path_contains": "/interact"}, "latency_ms": DELAY_MS})
    )


async def test_latency_and_token_budgets_and_a_replay_that_reaches_the_same_verdicts(
    settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    suite = Suite.model_validate(TIMED)
    delay_the_first_turn(emulator)
    judge = FakeJudge([("Criterion:", verdict(True))], usage=(90, 30))
    recorder = Recorder(tmp_path / "rec")
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            factory = ServiceFactory(settings, transport=recorder.transport(), clock=recorder)
            run = await run_suites([suite], factory, judge=recorder.chat(chat), concurrency=1)
    recorder.save()

    delayed, judged, over = run.transcripts
    assert delayed.turns[0].latency_ms >= DELAY_MS
    assert outcomes(run) == {
        "delayed": [
            ("latency max 200 ms", "failed"),
            ("latency max 60000 ms", "passed"),
            ("latency max 60000 ms", "passed"),
            ("latency p95 60000 ms", "passed"),
            ("always: latency max 60000 ms", "passed"),
            # No judge call: nothing was spent, so the suite's budget holds.
            ("judge tokens at most 100", "passed"),
        ],
        "judged": [
            ("judge: The agent greets the user", "passed"),
            ("judge tokens at most 1000", "passed"),
        ],
        "over_budget": [
            ("judge: The agent greets the user", "passed"),
            ("judge tokens at most 100", "failed"),
        ],
        "(suite)": [("latency max 200 ms", "failed")],
    }
    first = delayed.turns[0].checks[0]
    assert first.evidence == f"turn 1 took {delayed.turns[0].latency_ms:g} ms"
    one_call = JudgeUsage(calls=1, input_tokens=90, output_tokens=30)
    assert delayed.judge_usage is None
    assert judged.judge_usage == over.judge_usage == one_call
    assert (
        run.judge_usage
        == run.suites[0].judge_usage
        == JudgeUsage(calls=2, input_tokens=180, output_tokens=60)
    )
    assert over.checks[-1].evidence == "the judge spent 120 tokens (90 in, 30 out, 1 call)"
    assert not run.succeeded()

    # The replay answers from the recording, with no runtime and no judge: the latencies and the
    # tokens are the recorded ones, so every budget comes out the same.
    requests_seen = len(emulator.requests)
    replayer = Replayer(tmp_path / "rec")
    replay_factory = ServiceFactory(
        closed_port_settings(settings), transport=replayer.transport(), clock=replayer
    )
    replayed = await run_suites([suite], replay_factory, judge=replayer.chat(), concurrency=1)
    assert len(emulator.requests) == requests_seen
    assert outcomes(replayed) == outcomes(run)
    assert [t.latency_ms for x in replayed.transcripts for t in x.turns] == [
        t.latency_ms for x in run.transcripts for t in x.turns
    ]
    assert replayed.judge_usage == run.judge_usage

    # Regraded with looser budgets, no runtime and no judge call: the recorded latencies and the
    # run's tokens meet them now.
    looser = Suite.model_validate({**TIMED, "latency_ms": GENEROUS["latency_ms"],
                                   "max_judge_tokens": 1000})  # fmt: skip
    regraded = await regrade(run, [looser], None, closed_port_settings(settings))
    assert len(emulator.requests) == requests_seen
    assert regraded.succeeded() is False  # the turn's own max 200 ms still fails
    assert outcomes(regraded)["(suite)"] == [("latency max 60000 ms", "passed")]
    assert outcomes(regraded)["over_budget"][-1] == ("judge tokens at most 1000", "passed")
    assert regraded.judge_usage == run.judge_usage


async def test_every_report_shows_the_judge_tokens_and_the_suite_checks(
    settings: Settings, emulator: Emulator
) -> None:
    suite = Suite.model_validate(TIMED)
    delay_the_first_turn(emulator)
    judge = FakeJudge([("Criterion:", verdict(True))], usage=(90, 30))
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            run = await run_suites([suite], ServiceFactory(settings), judge=chat, concurrency=2)

    spent = "240 tokens (180 in, 60 out, 2 calls)"
    report: dict[str, Any] = json.loads(json_report(run))
    assert report["judge_usage"] == {
        "calls": 2, "input_tokens": 180, "output_tokens": 60, "unreported": 0
    }  # fmt: skip
    assert report["suites"][0]["checks"][0]["outcome"] == "failed"
    assert report["suites"][0]["tests"][0]["judge_usage"] is None

    markdown = markdown_report(run)
    assert f"Judge: {spent}." in markdown
    assert "| Timed | over_budget | failed | 1 |" in markdown and "| 120 |" in markdown
    assert "## Suite checks: Timed" in markdown and "- failed: latency max 200 ms — " in markdown

    junit = etree.fromstring(junit_xml(run).encode())
    XSD.assertValid(junit)  # the suite's own checks as testcases keep the strict schema
    properties = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert properties["judge_input_tokens"] == "180"
    assert properties["judge_output_tokens"] == "60"
    assert properties["judge_calls"] == "2"
    [suite_case] = [c for c in junit.iter("testcase") if c.get("name").startswith("suite: ")]
    assert suite_case.get("name") == "suite: latency max 200 ms"
    assert suite_case.find("failure") is not None
    assert junit.find("testsuite").get("tests") == "4"

    assert "FAILED Timed (suite): latency max 200 ms: slowest " in "\n".join(
        failure_lines(run, allow_ungraded=False)
    )

    page = html_report(run)
    assert f"Judge: {spent}." in page
    assert "Suite checks: Timed" in page and "120 tokens (90 in, 30 out, 1 call)" in page


async def test_a_judge_that_reports_no_usage_cannot_meet_a_token_budget(
    settings: Settings,
) -> None:
    data = {**TIMED, "tests": [TIMED["tests"][2]]}
    data.pop("latency_ms")
    judge = FakeJudge([("Criterion:", verdict(True))])  # answers without `usage`
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            run = await run_suites(
                [Suite.model_validate(data)], ServiceFactory(settings), judge=chat
            )
    [test] = run.transcripts
    assert test.judge_usage == JudgeUsage(calls=1, unreported=1)
    budget = test.checks[-1]
    assert budget.outcome == "error" and "carried no `usage`" in budget.evidence
    assert test.outcome == "error"


def test_p95_is_a_latency_that_was_measured() -> None:
    values = [float(v) for v in range(1, 21)]  # 20 turns: the 19th fastest is the p95
    assert nearest_rank(values, 95) == 19.0
    assert nearest_rank([5.0], 95) == 5.0
    assert nearest_rank([3.0, 1.0, 2.0], 95) == 3.0


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"latency_ms": {}}, "latency_ms needs `max` or `p95`"),
        ({"latency_ms": {"max": 0}}, "greater than 0"),
        ({"latency_ms": {"max": 100, "median": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_a_latency_check_without_a_usable_limit_is_refused(
    check: dict[str, Any], problem: str
) -> None:
    data = {"name": "s", "tests": [{"id": "t", "turns": [{"launch": True, "expect": [check]}]}]}
    with pytest.raises(ValueError, match=problem):
        Suite.model_validate(data)
