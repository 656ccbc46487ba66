"""vf-mcp conversation scripts against the emulator: every check type, policies, users, 429s."""

from __future__ import annotations

from typing import Any

import pytest

from tests.evaluation_fixtures import EXAMPLES
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.loader import load_path, load_script
from vf_mcp.evaluation.runner import ProgressEvent, run_suite
from vf_mcp.evaluation.script import Suite

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["plain", "stream"])
def any_settings(
    request: pytest.FixtureRequest, settings: Settings, stream_settings: Settings
) -> Settings:
    """Both turn endpoints: plain interact (no project id) and SSE (project id set)."""
    return settings if request.param == "plain" else stream_settings


def suite_of(data: dict[str, Any]) -> Suite:
    return Suite.model_validate(data)


TRACK = [
    {"launch": True},
    {"choice": "Track an order"},
]


async def test_every_check_type_passes_and_fails(any_settings: Settings) -> None:
    """Each check type once where it holds and once where it does not."""
    expect_pass = [
        {"contains": "has shipped"},
        {"contains": "ORDER 1001", "ignore_case": True},
        {"not_contains": "couldn't find"},
        {"equals": "Order 1001 has shipped and should arrive on Friday."},
        {"regex": r"arrive on \w+day"},
        {"trace": "choice"},
        {"choice": "that's ALL"},
        {"status": "awaiting_user"},
        {"variable": "$.order_number", "equals": "1001"},
        {"variable": "order_status", "equals": "shipped"},
        {"variable": {"path": "$.question", "exists": True}},
        {"variable": "$.nothing_like_this", "exists": False},
    ]
    expect_fail = [
        {"contains": "has been delivered"},
        {"contains": "ORDER 1001"},
        {"not_contains": "shipped"},
        {"equals": "Order 1001 has shipped"},
        {"regex": r"arrive on Monday"},
        {"trace": "end"},
        {"choice": "Cancel my order"},
        {"status": "ended"},
        {"variable": "$.order_number", "equals": 1001},
        {"variable": "order_status", "equals": "processing"},
        {"variable": "$.nothing_like_this", "exists": True},
    ]
    suite = suite_of(
        {
            "name": "checks",
            "tests": [
                {"id": "passing", "turns": [*TRACK, {"message": "1001", "expect": expect_pass}]},
                {"id": "failing", "turns": [*TRACK, {"message": "1001", "expect": expect_fail}]},
            ],
        }
    )
    result = await run_suite(suite, ServiceFactory(any_settings))
    passing, failing = result.tests
    assert [c.outcome for c in passing.turns[2].checks] == ["passed"] * len(expect_pass), [
        (c.label, c.evidence) for c in passing.turns[2].checks if c.outcome != "passed"
    ]
    assert [c.outcome for c in failing.turns[2].checks] == ["failed"] * len(expect_fail), [
        (c.label, c.evidence) for c in failing.turns[2].checks if c.outcome != "failed"
    ]
    assert passing.outcome == "passed" and failing.outcome == "failed"
    evidence = {c.kind: c.evidence for c in failing.turns[2].checks}
    assert "arrive on Friday" in evidence["contains"]
    assert "offered: 'Track another order'" in evidence["choice"]
    assert evidence["status"] == "status was awaiting_user"
    assert evidence["variable"].startswith("$.")


async def test_status_trace_and_raw_actions_through_a_handoff(settings: Settings) -> None:
    suite = suite_of(
        {
            "name": "handoff",
            "tests": [
                {
                    "id": "h",
                    "turns": [
                        {"launch": True},
                        {
                            "choice": 3,
                            "expect": [{"status": "handoff"}, {"trace": "talk_to_agent"}],
                        },
                        {"action": {"type": "done"}, "expect": [{"contains": "You're back"}]},
                        {"event": "credit_error", "expect": [{"status": "error"}]},
                    ],
                }
            ],
        }
    )
    [test] = (await run_suite(suite, ServiceFactory(settings))).tests
    assert test.outcome == "passed", test.model_dump_json(indent=1)
    assert test.turns[1].user.text == "Talk to a person"  # the number resolved to its label
    assert test.turns[2].user.action == {"type": "done"}
    assert test.turns[3].user.kind == "event" and test.turns[3].status == "error"


async def test_continue_runs_every_turn_and_test_stop_stops_at_the_first_failure(
    settings: Settings,
) -> None:
    tests = [
        {
            "id": "first",
            "turns": [
                {"launch": True, "expect": [{"contains": "nope"}]},
                {"choice": "Track an order", "expect": [{"contains": "order number"}]},
            ],
        },
        {"id": "second", "turns": [{"launch": True}]},
    ]
    go_on = await run_suite(
        suite_of({"name": "c", "on_failure": "continue", "tests": tests}),
        ServiceFactory(settings),
        concurrency=1,
    )
    assert [t.outcome for t in go_on.tests] == ["failed", "passed"]
    assert len(go_on.tests[0].turns) == 2
    assert go_on.tests[0].turns[1].checks[0].outcome == "passed"

    stop = await run_suite(
        suite_of({"name": "s", "on_failure": "stop", "tests": tests}),
        ServiceFactory(settings),
        concurrency=1,
    )
    assert [t.outcome for t in stop.tests] == ["failed", "skipped"]
    assert len(stop.tests[0].turns) == 1
    assert "on_failure is stop" in stop.tests[1].warnings[0]


async def test_fresh_user_per_test_shared_user_and_suite_variables(
    settings: Settings, emulator: Emulator
) -> None:
    tests = [
        {"id": "a", "turns": [{"launch": True, "expect": [{"variable": "who", "equals": "Al"}]}]},
        {"id": "b", "variables": {"who": "Bo"}, "turns": [{"launch": True}]},
    ]
    fresh = await run_suite(
        suite_of({"name": "f", "variables": {"who": "Al"}, "tests": tests}),
        ServiceFactory(settings),
    )
    assert fresh.tests[0].outcome == "passed"
    assert fresh.tests[0].user_id != fresh.tests[1].user_id
    assert fresh.tests[1].turns[0].variables is not None
    assert fresh.tests[1].turns[0].variables["who"] == "Bo"  # the test's own value wins
    launches = [r for r in emulator.requests if r.path.endswith("/interact")]
    assert all(r.json["state"]["variables"]["who"] in ("Al", "Bo") for r in launches)

    shared = await run_suite(
        suite_of({"name": "s", "new_user_per_test": False, "tests": tests}),
        ServiceFactory(settings),
    )
    assert shared.tests[0].user_id == shared.tests[1].user_id


async def test_tests_run_concurrently_up_to_the_limit(
    settings: Settings, emulator: Emulator
) -> None:
    # Each launch takes 150 ms in the emulator; 4 tests with concurrency 4 overlap, so the suite
    # is far shorter than the 600 ms they would take one after another.
    emulator.faults.add(FaultPlan.model_validate({"match": {"path_contains": "/interact"},
                                                 "times": 4, "latency_ms": 150}))  # fmt: skip
    tests = [{"id": f"t{i}", "turns": [{"launch": True}]} for i in range(4)]
    events: list[ProgressEvent] = []

    async def progress(event: ProgressEvent) -> None:
        events.append(event)

    result = await run_suite(
        suite_of({"name": "p", "tests": tests}),
        ServiceFactory(settings),
        concurrency=4,
        on_progress=progress,
    )
    assert all(t.outcome == "passed" for t in result.tests)
    assert result.duration_ms < 450
    started = [e.kind for e in events].index("test_finished")
    assert [e.kind for e in events[:started]].count("test_started") == 4
    assert [e.kind for e in events].count("turn_finished") == 4
    assert events[-1].kind == "suite_done" and events[-1].tests_done == 4


async def test_a_429_is_waited_out_and_the_turn_sent_again(
    any_settings: Settings, emulator: Emulator
) -> None:
    emulator.faults.add(
        FaultPlan.model_validate(
            {"match": {"path_contains": "/interact"}, "times": 2, "status": 429, "retry_after": 0}
        )
    )
    suite = suite_of(
        {
            "name": "r",
            "tests": [{"id": "t", "turns": [{"launch": True, "expect": [{"contains": "Hi!"}]}]}],
        }
    )
    retrying = any_settings.model_copy(update={"max_retries": 3})
    [test] = (await run_suite(suite, ServiceFactory(retrying))).tests
    assert test.outcome == "passed"
    assert test.turns[0].rate_limit_retries == 2
    turns = [r for r in emulator.requests if r.path.endswith(("/interact", "/interact/stream"))]
    assert len(turns) == 3


async def test_a_turn_rate_limited_for_good_is_sent_at_most_max_retries_plus_one_times(
    settings: Settings, emulator: Emulator
) -> None:
    # The client's retry loop is the only one: the driver used to wrap it in its own, so one
    # scripted turn sent (3+1) x (5+1) = 24 requests and the transcript claimed 5.
    emulator.faults.add(
        FaultPlan.model_validate(
            {"match": {"path_contains": "/interact"}, "times": -1, "status": 429, "retry_after": 0}
        )
    )
    suite = suite_of({"name": "r", "tests": [{"id": "t", "turns": [{"launch": True}]}]})
    retrying = settings.model_copy(update={"max_retries": 3})
    [test] = (await run_suite(suite, ServiceFactory(retrying))).tests
    sent = [r for r in emulator.requests if r.path.endswith("/interact")]
    assert len(sent) == retrying.max_retries + 1
    assert test.outcome == "error"
    assert test.turns[0].rate_limit_retries == 3
    assert "after 3 retries" in (test.turns[0].error or "")


async def test_a_runtime_error_ends_the_test_as_an_error(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.faults.add(
        FaultPlan.model_validate({"match": {"path_contains": "/interact"}, "status": 500})
    )
    suite = suite_of(
        {"name": "e", "tests": [{"id": "t", "turns": [{"launch": True}, {"message": "hi"}]}]}
    )
    [test] = (await run_suite(suite, ServiceFactory(settings))).tests
    assert test.outcome == "error" and len(test.turns) == 1
    assert test.turns[0].error is not None and "ServerError" in test.turns[0].error


def test_script_mistakes_are_reported_with_their_place(tmp_path: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntests:\n  - id: t\n    turns:\n      - launch: true\n        expct: []\n"
    )
    with pytest.raises(ScriptError, match="expct"):
        load_path(bad)
    two = tmp_path / "two.yaml"
    two.write_text("name: x\ntests:\n  - id: t\n    turns:\n      - {launch: true, message: hi}\n")
    with pytest.raises(ScriptError, match="exactly one of"):
        load_path(two)
    regex = tmp_path / "regex.yaml"
    regex.write_text(
        "name: x\ntests:\n  - id: t\n    turns:\n      - {launch: true, expect: [{regex: '('}]}\n"
    )
    with pytest.raises(ScriptError, match="does not compile"):
        load_path(regex)


@pytest.mark.parametrize(
    ("expect", "says"),
    [
        ("[{never: true}]", "always, never and eventually wrap a turn check"),
        ("[{always: {judge: polite}}]", "take a deterministic check of one turn, not judge"),
        ("[{contains: hi}]", "contains reads one turn: put it under a turn's expect, or wrap"),
        ("[{tool: x, times: 1, never: true}]", "tool 'x': give `times` or `never`, not both"),
        ("[{in_order: [{tool: a, block: b}]}]", "an in_order step is one of {flow: X}"),
    ],
)
def test_the_new_checks_are_refused_in_one_line_where_they_do_not_belong(
    expect: str, says: str
) -> None:
    script = f"{{name: s, tests: [{{id: t, turns: [{{launch: true}}], expect: {expect}}}]}}"
    with pytest.raises(ScriptError) as raised:
        load_script(script)
    assert says in str(raised.value) and "\n" not in str(raised.value)
    assert str(raised.value).startswith("<inline>: tests.0")


def test_inline_scripts_and_files_under_the_tests_dir(tmp_path: Any) -> None:
    [suite] = load_script('{"id": "one", "turns": [{"launch": true}]}')
    assert suite.tests[0].id == "one" and suite.source == "<inline>"
    (tmp_path / "s.yaml").write_text("name: s\ntests: [{id: t, turns: [{launch: true}]}]\n")
    assert load_script("s.yaml", tests_dir=tmp_path)[0].name == "s"
    with pytest.raises(ScriptError, match="outside the tests directory"):
        load_script("../escape.yaml", tests_dir=tmp_path / "sub")


def test_example_suites_load() -> None:
    names = {s.name for s in load_path(EXAMPLES)}
    assert names == {
        "Order support (deterministic)",
        "Order support (failing on purpose)",
        "Order support (judged)",
        "Order support (simulated user)",
    }
