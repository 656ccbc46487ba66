"""Transcripts of conversations driven turn by turn (for the transcript tool and resource)."""

from __future__ import annotations

import pytest

from vf_mcp.config import Settings
from vf_mcp.conversation import ConversationService, TurnRequest
from vf_mcp.evaluation.prompts import evaluate_agent_prompt
from vf_mcp.store.memory import InMemoryTranscripts, in_memory_store
from vf_mcp.transcripts.book import TranscriptBook
from vf_mcp.transcripts.render import render_transcript
from vf_mcp.voiceflow import VoiceflowClient

pytestmark = pytest.mark.anyio


async def test_live_turns_build_a_transcript(settings: Settings) -> None:
    book = TranscriptBook(InMemoryTranscripts(max_conversations=2))
    async with VoiceflowClient(settings) as client:
        service = ConversationService(client, in_memory_store(), settings)
        calls = [
            TurnRequest(launch=True),
            TurnRequest(choice=1),
            TurnRequest(message="1001"),
            TurnRequest(action={"type": "event", "payload": {"event": {"name": "order_shipped"}}}),
        ]
        user_id = None
        for call in calls:
            outcome = await service.interact(call.model_copy(update={"user_id": user_id}))
            user_id = outcome.user_id
            await book.record(outcome, agent="default")
    assert user_id is not None
    transcript = await book.get(user_id, agent="default")
    assert transcript is not None and len(transcript.turns) == 4
    assert [t.user.kind for t in transcript.turns] == ["launch", "choice", "message", "event"]
    assert transcript.turns[1].user.text == "Track an order"
    assert transcript.turns[3].user.text == "order_shipped"
    assert transcript.turns[2].variables is not None
    assert transcript.turns[2].variables["order_status"] == "shipped"
    text = render_transcript(transcript)
    # Nothing was expected of a live conversation, so its header claims no verdict.
    assert text.startswith(
        f"live / conversation {user_id}: not checked (a live conversation: nothing was expected "
        "of it)\n"
    )
    assert "PASSED" not in text
    assert "User: [presses the button Track an order]" in text
    assert "Agent: Good news: your order has shipped!" in text
    assert transcript.turns[2].rate_limit_retries == 0
    assert "_memory_" not in transcript.turns[2].variables, "no runtime bookkeeping"
    await book.forget(user_id, agent="default")
    assert await book.get(user_id, agent="default") is None


async def test_a_launch_starts_a_new_transcript_and_callers_are_kept_apart(
    settings: Settings,
) -> None:
    book = TranscriptBook(InMemoryTranscripts())
    async with VoiceflowClient(settings) as client:
        service = ConversationService(client, in_memory_store(), settings)
        for call in (TurnRequest(launch=True), TurnRequest(choice=1), TurnRequest(launch=True)):
            outcome = await service.interact(call.model_copy(update={"user_id": "same"}))
            await book.record(outcome, agent="default", namespace="caller-a")
    transcript = await book.get("same", agent="default", namespace="caller-a")
    assert transcript is not None and [t.index for t in transcript.turns] == [1]
    assert await book.get("same", agent="default", namespace="caller-b") is None
    assert await book.get("same", agent="other", namespace="caller-a") is None


def test_evaluate_agent_prompt_names_the_goal_the_turns_and_the_resource() -> None:
    text = evaluate_agent_prompt(
        "Track order 1001", persona="An impatient customer", criteria=["Says when it arrives"],
        max_turns=6,
    )  # fmt: skip
    assert "Goal to test: Track order 1001" in text
    assert "with this persona: An impatient customer" in text
    assert "at most 6 turns" in text and "   - Says when it arrives" in text
    assert "voiceflow://transcripts/<user_id>" in text


def test_a_transcript_says_unset_for_the_runtimes_default_as_the_summary_does() -> None:
    from vf_mcp.domain.transcript import TranscriptTurn, UserAction
    from vf_mcp.domain.turn import VariableChange
    from vf_mcp.transcripts.render import render_turn_text

    turn = TranscriptTurn(
        index=1,
        user=UserAction(kind="launch"),
        status="awaiting_user",
        variables_changed=[
            VariableChange(name="order_number", before=0, after="1001"),
            VariableChange(name="count", before=2, after=0),
        ],
    )
    text = render_turn_text(turn)  # the transcript tool, the Markdown report, the judge
    assert 'Variables: order_number: unset -> "1001", count: 2 -> 0' in text
