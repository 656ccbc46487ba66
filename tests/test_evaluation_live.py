"""Transcripts of conversations driven turn by turn (for the transcript tool and resource)."""

from __future__ import annotations

import pytest

from vf_mcp.config import Settings
from vf_mcp.conversation import ConversationService
from vf_mcp.evaluation.prompts import evaluate_agent_prompt
from vf_mcp.store import InMemoryStore
from vf_mcp.transcripts.book import TranscriptBook, user_action
from vf_mcp.transcripts.render import render_transcript
from vf_mcp.voiceflow import VoiceflowClient

pytestmark = pytest.mark.anyio


async def test_live_turns_build_a_transcript(settings: Settings) -> None:
    book = TranscriptBook(max_conversations=2)
    async with VoiceflowClient(settings) as client:
        service = ConversationService(client, InMemoryStore(), settings)
        calls = [
            {"launch": True},
            {"choice": 1},
            {"message": "1001"},
            {"action": {"type": "event", "payload": {"event": {"name": "order_shipped"}}}},
        ]
        user_id = None
        for call in calls:
            turn = await service.interact(user_id=user_id, **call)  # type: ignore[arg-type]
            user_id = turn.user_id
            memory = await service.store.load(user_id)
            book.record_turn(turn, user_action(**call), variables_after=memory and memory.variables)
    assert user_id is not None
    transcript = book.get(user_id)
    assert transcript is not None and len(transcript.turns) == 4
    assert [t.user.kind for t in transcript.turns] == ["launch", "choice", "message", "event"]
    assert transcript.turns[1].user.text == "Track an order"
    assert transcript.turns[3].user.text == "order_shipped"
    assert transcript.turns[2].variables is not None
    assert transcript.turns[2].variables["order_status"] == "shipped"
    text = render_transcript(transcript)
    assert "User: [presses the button Track an order]" in text
    assert "Agent: Good news: your order has shipped!" in text
    book.forget(user_id)
    assert book.get(user_id) is None


def test_evaluate_agent_prompt_names_the_goal_the_turns_and_the_resource() -> None:
    text = evaluate_agent_prompt(
        "Track order 1001", persona="An impatient customer", criteria=["Says when it arrives"],
        max_turns=6,
    )  # fmt: skip
    assert "Goal to test: Track order 1001" in text
    assert "with this persona: An impatient customer" in text
    assert "at most 6 turns" in text and "   - Says when it arrives" in text
    assert "voiceflow://transcripts/<user_id>" in text
