"""The LLM judge over loopback HTTP (a scripted chat-completions server), and simulated users."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.evaluation_fixtures import JUDGE_KEY, FakeJudge, judge_client, running_judge, verdict
from vf_mcp.config import Settings
from vf_mcp.errors import ConfigurationError, JudgeError
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.judge import (
    ChatMessage,
    JudgeSettings,
    parse_user_reply,
    parse_verdict,
)
from vf_mcp.evaluation.runner import run_suite
from vf_mcp.evaluation.script import Suite

pytestmark = pytest.mark.anyio

JUDGED = {
    "name": "judged",
    "tests": [
        {
            "id": "t",
            "turns": [
                {"launch": True},
                {"choice": "Track an order"},
                {
                    "message": "1001",
                    "expect": [
                        {"contains": "shipped"},
                        {"judge": "The agent tells the user when the order will arrive"},
                        {"judge": "The agent apologises", "threshold": 0.5},
                    ],
                },
            ],
            "expect": [{"judge": "The agent never asks twice"}],
        }
    ],
}


def judged_rules() -> list[tuple[str, Any]]:
    return [
        ("Criterion: The agent tells", verdict(True, 0.9, "It says Friday.")),
        ("Criterion: The agent apologises", verdict(True, 0.2, "Barely.")),
        ("Criterion: The agent never asks twice", "```json\n" + verdict(False) + "\n```"),
    ]


async def test_criteria_are_graded_by_the_judge_over_http(settings: Settings) -> None:
    judge = FakeJudge(judged_rules())
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            [test] = (
                await run_suite(Suite.model_validate(JUDGED), ServiceFactory(settings), judge=chat)
            ).tests
    contains, arrives, apologises = test.turns[2].checks
    assert contains.outcome == "passed"
    assert arrives.outcome == "passed" and arrives.verdict is not None
    assert arrives.verdict.score == 0.9 and arrives.verdict.reasoning == "It says Friday."
    # "pass" with a score under the check's threshold is a failure.
    assert apologises.outcome == "failed" and apologises.verdict is not None
    assert [c.outcome for c in test.checks] == ["failed"]  # the fenced JSON was read
    assert test.outcome == "failed"

    first = judge.requests[0]
    assert first["model"] == "fake-judge" and first["temperature"] == 0
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    prompt = first["messages"][1]["content"]
    assert "Order 1001 has shipped" in prompt and "Judge the agent's answer in turn 3" in prompt
    assert "latency" not in prompt and (test.user_id or "x") not in prompt
    assert judge.authorizations == [f"Bearer {JUDGE_KEY}"] * 3


async def test_without_a_judge_criteria_come_back_to_grade_with_the_transcript(
    settings: Settings,
) -> None:
    [test] = (await run_suite(Suite.model_validate(JUDGED), ServiceFactory(settings))).tests
    assert test.outcome == "to_grade"
    ungraded = [c for c in test.all_checks() if c.outcome == "to_grade"]
    assert len(ungraded) == 3 and "VF_MCP_JUDGE_URL" in ungraded[0].evidence
    assert test.turns[2].agent.text.startswith("Order 1001 has shipped")


async def test_judge_rate_limits_are_waited_out_and_errors_name_no_key(settings: Settings) -> None:
    judge = FakeJudge([("ping", "pong")], rate_limit_first=2)
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            reply = await chat.complete([ChatMessage(role="user", content="ping")], purpose="test")
    assert reply.content == "pong" and len(judge.requests) == 3

    broken = FakeJudge([])  # every request fails with 500
    with running_judge(broken) as url:
        async with judge_client(url) as chat:
            [test] = (
                await run_suite(Suite.model_validate(JUDGED), ServiceFactory(settings), judge=chat)
            ).tests
    assert test.outcome == "error"
    assert test.error is not None and "judge" in test.error and "500" in test.error
    assert JUDGE_KEY not in test.model_dump_json()


def test_replies_are_parsed_leniently() -> None:
    assert parse_verdict('{"verdict": "PASS", "score": 0.7, "reasoning": "ok"}').verdict == "pass"
    fenced = parse_verdict('Sure!\n```json\n{"pass": false, "reason": "no date"}\n```')
    assert fenced.verdict == "fail" and fenced.reasoning == "no date"
    embedded = parse_verdict('My grade: {"result": "yes", "score": 8} as asked.')
    assert embedded.verdict == "pass" and embedded.score == 0.8
    by_score = parse_verdict('{"score": 0.3}', pass_score=0.5)
    assert by_score.verdict == "fail" and by_score.score == 0.3
    assert parse_verdict("FAIL: the agent never says when").reasoning == "the agent never says when"
    assert parse_verdict("yes.").verdict == "pass"
    with pytest.raises(JudgeError, match="no verdict"):
        parse_verdict("I would rather not say.")
    assert parse_user_reply('{"message": "1001", "done": false}').message == "1001"
    assert parse_user_reply("Track an order").message == "Track an order"
    assert parse_user_reply("###GOAL_MET###").done


def test_judge_settings_come_from_the_settings() -> None:
    assert JudgeSettings.from_settings(Settings.from_env({})) is None
    settings = JudgeSettings.from_settings(
        Settings.from_env(
            {
                "VF_MCP_JUDGE_URL": "http://127.0.0.1:9/v1/",
                "VF_MCP_JUDGE_MODEL": "m",
                "VF_MCP_JUDGE_API_KEY": JUDGE_KEY,
            }
        )
    )
    assert settings is not None
    assert settings.endpoint == "http://127.0.0.1:9/v1/chat/completions"
    assert JUDGE_KEY not in repr(settings) and JUDGE_KEY not in str(settings)
    with pytest.raises(ConfigurationError, match="VF_MCP_JUDGE_MODEL"):
        Settings.from_env({"VF_MCP_JUDGE_URL": "http://127.0.0.1:9/v1"})


def customer(text: str) -> str:
    """A simulated customer who tracks order 1001 and says so once it has shipped."""
    conversation = text.split("Conversation so far:")[-1]
    if "has shipped" in conversation:
        return json.dumps({"message": "", "done": True})
    if "What's your order number?" in conversation:
        return json.dumps({"message": "It's 1001", "done": False})
    return json.dumps({"message": "track an order", "done": False})


SIMULATED = {
    "name": "simulated",
    "tests": [
        {
            "id": "sim",
            "simulate": {
                "persona": "A busy customer",
                "goal": "Find out the status of order 1001",
                "max_turns": 5,
                "user_information": {"order number": "1001"},
            },
            "expect": [{"judge": "The agent stays polite"}],
        }
    ],
}


async def test_a_simulated_user_reaches_its_goal(settings: Settings) -> None:
    judge = FakeJudge(
        [
            ("You play the USER", customer),
            ("The user's goal:", lambda t: verdict("has shipped" in t, reasoning="status given")),
            ("Criterion: The agent stays polite", verdict(True)),
        ]
    )
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            [test] = (
                await run_suite(
                    Suite.model_validate(SIMULATED), ServiceFactory(settings), judge=chat
                )
            ).tests
    assert test.outcome == "passed", test.model_dump_json(indent=1)
    assert [(t.user.kind, t.user.text) for t in test.turns] == [
        ("launch", None),
        ("choice", "Track an order"),  # a reply equal to a button label presses it
        ("message", "It's 1001"),
    ]
    assert test.simulation is not None and test.simulation.stop_reason == "goal_met"
    assert [c.kind for c in test.checks] == ["goal", "judge"]
    assert test.checks[0].verdict is not None and test.checks[0].evidence == "status given"
    user_prompts = [t for t in judge.texts() if "You play the USER" in t]
    assert "A busy customer" in user_prompts[0] and "order number: 1001" in user_prompts[0]


async def test_a_simulated_user_stops_at_the_turn_limit_or_when_the_agent_ends(
    settings: Settings,
) -> None:
    stubborn = FakeJudge(
        [
            ("You play the USER", '{"message": "hello?"}'),
            ("The user's goal:", verdict(False, reasoning="never got there")),
            ("Criterion:", verdict(True)),
        ]
    )
    with running_judge(stubborn) as url:
        async with judge_client(url) as chat:
            data = json.loads(json.dumps(SIMULATED))
            data["tests"][0]["simulate"]["max_turns"] = 2
            [test] = (
                await run_suite(Suite.model_validate(data), ServiceFactory(settings), judge=chat)
            ).tests
    assert test.simulation is not None and test.simulation.stop_reason == "turn_limit"
    assert len(test.turns) == 3 and test.outcome == "failed"
    assert test.checks[0].outcome == "failed" and test.checks[0].evidence == "never got there"

    leaving = FakeJudge(
        [
            ("You play the USER", shopper_who_leaves),
            ("The user's goal:", verdict(True)),
            ("Criterion:", verdict(True)),
        ]
    )
    with running_judge(leaving) as url:
        async with judge_client(url) as chat:
            [test] = (
                await run_suite(
                    Suite.model_validate(SIMULATED), ServiceFactory(settings), judge=chat
                )
            ).tests
    assert test.simulation is not None and test.simulation.stop_reason == "agent_ended"
    assert test.turns[-1].user.text == "That's all" and test.turns[-1].status == "ended"
    assert len(test.turns) == 4 and test.outcome == "passed"


def shopper_who_leaves(text: str) -> str:
    conversation = text.split("Conversation so far:")[-1]
    if "has shipped" in conversation:
        return '{"message": "that\'s all"}'
    if "What's your order number?" in conversation:
        return '{"message": "1001"}'
    return '{"message": "Track an order"}'
