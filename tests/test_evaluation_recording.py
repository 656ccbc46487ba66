"""Record against the emulator and the judge, then replay with neither: the same verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.canary import CANARY_SECRET
from tests.evaluation_fixtures import (
    JUDGE_KEY,
    FakeJudge,
    closed_port_settings,
    judge_client,
    running_judge,
    verdict,
)
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import SuiteResult
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.recording import Recorder, Replayer
from vf_mcp.evaluation.runner import run_suite
from vf_mcp.evaluation.script import Suite

pytestmark = pytest.mark.anyio

SUITE = {
    "name": "Recorded suite",
    "tests": [
        {
            "id": "scripted",
            "turns": [
                {"launch": True, "expect": [{"choice": "Track an order"}]},
                {"choice": "Track an order"},
                {
                    "message": "1001",
                    "expect": [
                        {"variable": "order_status", "equals": "shipped"},
                        {"judge": "The agent says when the order arrives"},
                    ],
                },
            ],
        },
        {
            "id": "simulated",
            "simulate": {
                "persona": "A customer",
                "goal": "Learn the returns policy",
                "max_turns": 3,
            },
        },
        {"id": "failing", "turns": [{"launch": True, "expect": [{"contains": "Goodbye"}]}]},
    ],
}


def shopper(text: str) -> str:
    conversation = text.split("Conversation so far:")[-1]
    if "30 days" in conversation:
        return '{"message": "", "done": true}'
    if "What would you like to know?" in conversation:
        return '{"message": "How do I return an item?"}'
    return '{"message": "Ask a question"}'


def verdicts(result: SuiteResult) -> list[Any]:
    return [
        (
            t.test_id,
            t.outcome,
            [(c.label, c.outcome, c.verdict) for c in t.all_checks()],
            [
                (turn.user.kind, turn.agent.text, turn.status, turn.rate_limit_retries)
                for turn in t.turns
            ],
        )
        for t in result.tests
    ]


async def test_replay_with_no_runtime_and_no_judge_gives_the_same_verdicts(
    stream_settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    suite = Suite.model_validate(SUITE)
    # The client waits a 429 out (Retry-After 0) and sends the turn again: retries are on here.
    stream_settings = stream_settings.model_copy(update={"max_retries": 3})
    judge = FakeJudge(
        [
            ("You play the USER", shopper),
            ("The user's goal:", lambda t: verdict("30 days" in t, 0.9, "policy given")),
            ("Criterion:", verdict(True, 0.8, "Friday")),
        ]
    )
    # A 429 during recording is recorded too, and waited out again on replay.
    emulator.faults.add(
        FaultPlan.model_validate(
            {"match": {"path_contains": "/interact"}, "status": 429, "retry_after": 0}
        )
    )
    recorder = Recorder(tmp_path / "rec")
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            recorded = await run_suite(
                suite,
                ServiceFactory(stream_settings, transport=recorder.transport()),
                judge=recorder.chat(chat),
                concurrency=3,
            )
    files = recorder.save()
    assert [t.outcome for t in recorded.tests] == ["passed", "passed", "failed"]
    assert sum(t.rate_limit_retries for t in recorded.tests[0].turns + recorded.tests[1].turns
               + recorded.tests[2].turns) == 1  # fmt: skip
    stored = "".join(f.read_text() for f in files)
    assert CANARY_SECRET not in stored and JUDGE_KEY not in stored
    assert "{user_id}" in stored and recorded.tests[0].user_id not in stored
    requests_seen = len(emulator.requests)

    replayer = Replayer(tmp_path / "rec")
    replayed = await run_suite(
        suite,
        ServiceFactory(closed_port_settings(stream_settings), transport=replayer.transport()),
        judge=replayer.chat(),
        concurrency=3,
    )
    assert verdicts(replayed) == verdicts(recorded)
    assert replayed.tests[0].user_id != recorded.tests[0].user_id  # fresh ids, normalised away
    assert len(emulator.requests) == requests_seen


async def test_a_changed_suite_does_not_replay_stale_answers(
    settings: Settings, tmp_path: Path
) -> None:
    suite = Suite.model_validate(
        {"name": "s", "tests": [{"id": "t", "turns": [{"launch": True}, {"message": "hi"}]}]}
    )
    recorder = Recorder(tmp_path)
    await run_suite(suite, ServiceFactory(settings, transport=recorder.transport()))
    recorder.save()
    changed = Suite.model_validate(
        {"name": "s", "tests": [{"id": "t", "turns": [{"launch": True}, {"message": "bye"}]}]}
    )
    replayer = Replayer(tmp_path)
    [test] = (
        await run_suite(
            changed, ServiceFactory(closed_port_settings(), transport=replayer.transport())
        )
    ).tests
    assert test.outcome == "error"
    assert "differs from the recording" in (test.turns[1].error or "")
    cassette = json.loads((tmp_path / "s" / "t.json").read_text())
    assert [e["scope"] for e in cassette["runtime"]] == ["turn-001/target", "turn-002/target"]
