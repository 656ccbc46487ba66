"""Custom-action mocks and conversation assertions, against the emulator, the recorded pizza
checkout, and simulated users played by a loopback fake judge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.evaluation_fixtures import EXAMPLES, FakeJudge, judge_client, running_judge, verdict
from tests.test_evaluation_trajectory import replayed_test
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.loader import load_path
from vf_mcp.evaluation.runner import run_suite
from vf_mcp.evaluation.script import Suite
from vf_mcp.transcripts.render import render_transcript

pytestmark = pytest.mark.anyio

TO_CHECKOUT = [
    {"launch": True},
    {"choice": "Track an order"},
    {"message": "1001"},
]
CHECKOUT = {"name": "checkout", "reply": {"type": "done"}, "variables": {"payment_id": "pay_9"}}


def suite(*tests: dict[str, Any], **extra: Any) -> Suite:
    return Suite.model_validate({"name": "mocks", "tests": list(tests), **extra})


def interacts(emulator: Emulator) -> list[Any]:
    return [r.json for r in emulator.requests if r.path.endswith("/interact")]


async def test_a_mock_answers_the_custom_action_within_the_same_turn(
    settings: Settings, emulator: Emulator
) -> None:
    test = {
        "id": "paid",
        "on_action": CHECKOUT,
        "turns": [
            *TO_CHECKOUT,
            {
                "message": "order it again",
                "expect": [
                    {"contains": "Payment received"},
                    {"trace": "checkout"},
                    {"variable": "payment_id", "equals": "pay_9"},
                    {"status": "awaiting_user"},
                    {"choice": "That's all"},
                ],
            },
            {"choice": "That's all", "expect": [{"status": "ended"}]},
        ],
    }
    [result] = (await run_suite(suite(test), ServiceFactory(settings))).tests
    assert result.outcome == "passed", render_transcript(result)
    turn = result.turns[3]
    [reply] = turn.host_replies
    assert (reply.action, reply.reply, reply.variables) == (
        "checkout",
        {"type": "done"},
        {"payment_id": "pay_9"},
    )
    assert turn.agent.text == (
        "Ordering 1001 again comes to 42.50 dollars. Taking you to checkout.\n"
        "Payment received. Order 1001 is on its way again."
    )
    # Five turns, six requests: the reply went out at once, its variables in the same request.
    sent = interacts(emulator)
    assert len(sent) == 6 and len(result.turns) == 5
    assert sent[4] == {"action": {"type": "done"}, "state": {"variables": {"payment_id": "pay_9"}}}
    assert "Custom action: checkout" in render_transcript(result)
    assert "Host [mock]: answers checkout with" in render_transcript(result)
    assert not result.warnings


async def test_an_unanswered_action_fails_the_turn_and_stops_the_test(
    settings: Settings, emulator: Emulator
) -> None:
    stuck = {
        "id": "stuck",
        "on_action": {"name": "chekout", "reply": {"type": "done"}},  # misspelt
        "turns": [*TO_CHECKOUT, {"message": "order it again"}, {"message": "thanks"}],
    }
    # A raw action as the next step is the script answering the action itself.
    answered = {
        "id": "answered",
        "turns": [
            *TO_CHECKOUT,
            {"message": "order it again"},
            {"action": {"type": "cancel"}, "expect": [{"contains": "cancelled"}]},
        ],
    }
    unused = {"name": "refund", "reply": {"type": "done"}}
    result = await run_suite(
        suite(stuck, answered, on_action=[unused]), ServiceFactory(settings), concurrency=1
    )
    failed, passed = result.tests
    assert (failed.outcome, passed.outcome) == ("failed", "passed")
    assert len(failed.turns) == 4  # "thanks" was never sent to the waiting action
    [check] = failed.turns[3].checks
    assert check.kind == "custom_action" and check.label == "custom action 'checkout' is answered"
    assert "add on_action: {name: checkout, reply: {type: done}}" in check.evidence
    assert failed.warnings == [
        "on_action mock 'chekout' was never asked for in this test: check the custom action's "
        "name (the trace type the agent sends)"
    ]
    assert [w.split(":")[0] for w in result.warnings] == [
        "on_action mock 'refund' was never asked for in any test of the suite"
    ]
    assert len(interacts(emulator)) == 4 + 5


async def test_the_recorded_pizza_checkout_answered_by_a_mock() -> None:
    lemonade = {"type": "path-lp-lemonade", "payload": {"label": "Add a lemonade", "actions": []}}
    test = {
        "id": "checkout",
        "on_action": {"name": "checkout", "reply": {"type": "done"}},
        "turns": [
            {
                "action": lemonade,
                "expect": [{"trace": "checkout"}, {"status": "ended"}, {"trace": "end"}],
            },
        ],
    }
    # Exchange 7 stops on `checkout`; the mock's {type: done} must be exchange 9's request.
    transcript, runtime = await replayed_test([7, 9], test, "pz-a1")
    assert not runtime.mismatches, runtime.mismatches
    assert transcript.outcome == "passed", render_transcript(transcript)
    [turn] = transcript.turns
    assert [a.name for a in turn.agent.custom_actions] == ["checkout"]
    assert [r.reply for r in turn.host_replies] == [{"type": "done"}]

    # Without the mock the recorded action waits, and the test says which action, and stops.
    test = {"id": "stuck", "turns": [{"action": lemonade}, {"message": "hello?"}]}
    transcript, runtime = await replayed_test([7], test, "pz-a1")
    assert not runtime.mismatches and len(runtime.seen) == 1
    assert transcript.outcome == "failed"
    assert transcript.turns[0].checks[0].label == "custom action 'checkout' is answered"
    assert "(result types: done, cancel)" in transcript.turns[0].checks[0].evidence


def user_plays(*messages: str) -> Any:
    """A simulated user that sends `messages` in turn, then says it is done."""
    said = list(messages)

    def reply(_: str) -> str:
        if not said:
            return json.dumps({"message": "", "done": True})
        return json.dumps({"message": said.pop(0), "done": False})

    return reply


async def test_assertions_over_a_simulated_conversation_with_a_mocked_checkout(
    settings: Settings,
) -> None:
    passing = {
        "id": "reorders",
        "on_action": CHECKOUT,
        "simulate": {"persona": "A returning customer", "goal": "Order 1001 again", "max_turns": 4},
        "expect": [
            {"never": {"status": "error"}},
            {"always": {"not_contains": "Sorry, I didn't get that"}},
            {"eventually": {"tool": "price_order"}},
            {"eventually": {"variable": "payment_id", "equals": "pay_9"}},
            {"tool": "price_order", "times": 1},
        ],
    }
    failing = {
        "id": "lost",
        "simulate": {"goal": "Order 1001 again", "max_turns": 3},
        "expect": [
            {"always": {"status": "awaiting_user"}},
            {"eventually": {"contains": "Payment received"}},
            {"never": {"block": "reorder_quote"}},
        ],
    }

    def judge_rules() -> list[tuple[str, Any]]:
        return [
            ("Your goal:", user_plays("Track an order", "1001", "order it again")),
            ("The user's goal:", verdict(True, reasoning="reordered")),
        ]

    with running_judge(FakeJudge(judge_rules())) as url:
        async with judge_client(url) as judge:
            reorders = await run_suite(suite(passing), ServiceFactory(settings), judge=judge)
    with running_judge(FakeJudge(judge_rules())) as url:
        async with judge_client(url) as judge:
            lost = await run_suite(suite(failing), ServiceFactory(settings), judge=judge)
    [ok], [bad] = reorders.tests, lost.tests
    assert ok.outcome == "passed", render_transcript(ok)
    assert [c.outcome for c in ok.checks] == ["passed"] * 6  # the goal, then the five
    assert ok.checks[3].evidence.startswith("turn 4: tool 'price_order' ran 1 time")
    # No mock: the simulated user cannot answer checkout, so the conversation stops there.
    assert bad.simulation is not None and bad.simulation.stop_reason == "unanswered_action"
    assert bad.turns[-1].checks[0].label == "custom action 'checkout' is answered"
    assert [c.outcome for c in bad.checks[1:]] == ["failed", "failed", "failed"]
    assert bad.checks[1].evidence.startswith("turn 4 does not: status was awaiting_action")
    assert bad.checks[2].evidence.startswith("held in no turn over 4 turns")
    assert bad.checks[3].evidence.startswith("turn 4 does: block 'reorder_quote' ran 1 time")


async def test_the_simulated_example_suite_passes_with_a_judge_playing_the_users(
    settings: Settings,
) -> None:
    # Each user's next message depends on how far its conversation got.
    def next_message(text: str) -> str:
        sent = text.count("\nUser: ") - 1  # the launch turn is the first
        wanted = ["Track an order", "1001"]
        if "order 1001 again" in text:
            wanted.append("order it again")
        if sent >= len(wanted):
            return json.dumps({"message": "", "done": True})
        return json.dumps({"message": wanted[sent], "done": False})

    judge = FakeJudge([
        ("Your persona:", next_message),
        ("The user's goal:", verdict(True, reasoning="met")),
        ("Criterion:", verdict(True, reasoning="polite")),
    ])  # fmt: skip
    [example] = load_path(EXAMPLES / "order_support.simulated.yaml")
    with running_judge(judge) as url:
        async with judge_client(url) as client:
            result = await run_suite(example, ServiceFactory(settings), judge=client)
    assert [t.outcome for t in result.tests] == ["passed", "passed"], [
        render_transcript(t) for t in result.tests
    ]
    status, reorder = result.tests
    assert [c.kind for c in status.checks] == ["goal", "judge", "never", "eventually", "always"]
    assert [r.action for t in reorder.turns for r in t.host_replies] == ["checkout"]
    assert not result.warnings and not reorder.warnings
