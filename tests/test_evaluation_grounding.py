"""Grounding: the knowledge-base chunks a turn retrieved, kept per turn and graded by the judge."""

from __future__ import annotations

import pytest

from tests.evaluation_fixtures import FakeJudge, judge_client, running_judge, verdict
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.runner import run_suite
from vf_mcp.evaluation.script import Suite

pytestmark = pytest.mark.anyio

QUESTION = [
    {"launch": True, "expect": [{"grounded": True}]},  # a greeting retrieved nothing
    {"choice": "Ask a question"},
    {
        "message": "How do I return an item?",
        "expect": [{"grounded": True}, {"grounded": True, "threshold": 0.95}],
    },
]
SUITE = Suite.model_validate({"name": "grounding", "tests": [{"id": "returns", "turns": QUESTION}]})


async def test_grounded_answers_are_graded_on_the_chunks_they_retrieved(
    stream_settings: Settings, emulator: Emulator
) -> None:
    judge = FakeJudge([("Knowledge the agent retrieved", verdict(True, 0.9, "all supported"))])
    with running_judge(judge) as url:
        async with judge_client(url) as client:
            [result] = (await run_suite(SUITE, ServiceFactory(stream_settings), judge=client)).tests
    greeting, _, answer = result.turns
    assert greeting.retrieval is None
    assert greeting.checks[0].outcome == "failed"
    assert greeting.checks[0].evidence.startswith("no knowledge-base chunks came back")
    # Streamed (completion events): the chunk still came before the answer, and is kept.
    [chunk] = answer.retrieval or []
    assert (chunk.source, chunk.score) == ("Returns policy", 1.0)
    assert chunk.text.startswith("You can return most items within 30 days of delivery")
    assert chunk.document_id is not None and len(chunk.document_id) == 24
    grounded, strict = answer.checks
    assert (grounded.outcome, grounded.evidence) == ("passed", "all supported")
    assert grounded.verdict is not None and grounded.verdict.score == 0.9
    assert strict.outcome == "failed"  # 0.9 is under the threshold
    assert grounded.expected == [chunk.text]
    # The judge read the retrieved chunk and the answer of that turn, once per check.
    [prompt, _] = [t for t in judge.texts() if "Knowledge the agent retrieved" in t]
    assert "Knowledge the agent retrieved for turn 3:\n<<<\n[1] You can return most items" in prompt
    assert "The agent's answer in turn 3:\n<<<\nYou can return most items" in prompt


async def test_without_a_judge_grounding_is_left_to_grade(settings: Settings) -> None:
    [result] = (await run_suite(SUITE, ServiceFactory(settings))).tests
    outcomes = [c.outcome for t in result.turns for c in t.checks]
    assert outcomes == ["failed", "to_grade", "to_grade"]  # no chunks fails without a judge too
    assert result.turns[2].retrieval is not None
