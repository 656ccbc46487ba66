"""Move a conversation from one agent to another, with the context the next agent needs.

The chosen variables and a compact transcript (one variable, at most 8 KB, the latest turns kept)
are merged into the target agent's state, the target is launched, and its first turn is returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from vf_mcp.conversation import ConversationService, TurnOutcome, TurnRequest, check_user_id
from vf_mcp.domain.transcript import Transcript
from vf_mcp.domain.turn import TurnResult
from vf_mcp.errors import InvalidInputError

TRANSCRIPT_VARIABLE = "vf_handoff_transcript"
SOURCE_VARIABLE = "vf_handoff_from"
MAX_TRANSCRIPT_BYTES = 8 * 1024


class HandoffResult(BaseModel):
    """What a handoff carried, and the target agent's first turn."""

    model_config = ConfigDict(defer_build=True)  # built by the first handoff, not at start

    from_agent: str
    to_agent: str
    user_id: str = Field(description="The conversation's user_id on the target agent")
    variables: list[str] = Field(description="Variables carried over")
    transcript_bytes: int = Field(description=f"Size of {TRANSCRIPT_VARIABLE} (capped at 8 KB)")
    turn: TurnResult


def compact_transcript(transcript: Transcript | None, limit: int = MAX_TRANSCRIPT_BYTES) -> str:
    """The conversation as plain lines, cut from the front so the latest turns survive."""
    if transcript is None or not transcript.turns:
        return ""
    from vf_mcp.transcripts.render import render_conversation

    text = render_conversation(transcript)
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    marker = "[earlier turns omitted]\n"
    tail = encoded[-(limit - len(marker.encode())) :].decode(errors="ignore")
    return marker + tail[tail.find("\n") + 1 :]


async def hand_off(
    *,
    source: ConversationService,
    target: ConversationService,
    from_agent: str,
    to_agent: str,
    user_id: str,
    transcript: Transcript | None,
    variables: Sequence[str] = (),
    target_user_id: str | None = None,
    namespace: str | None = None,
) -> tuple[HandoffResult, TurnOutcome]:
    """Carry the conversation over; the result, and the target's first turn for its transcript."""
    if from_agent == to_agent:
        raise InvalidInputError(
            f"The conversation is already with {to_agent!r}; pick another agent"
        )
    check_user_id(user_id)
    carried: dict[str, object] = {}
    if variables:
        state = await source.get_state(user_id, namespace=namespace)
        known = state.state.variables if state.state else {}
        missing = [name for name in variables if name not in known]
        if missing:
            raise InvalidInputError(
                f"{from_agent} has no variable {', '.join(missing)} for {user_id}; it has: "
                f"{', '.join(sorted(known)) or 'none'}"
            )
        carried = {name: known[name] for name in variables}
    context = compact_transcript(transcript)
    destination = target_user_id or user_id
    await target.update_variables(
        destination,
        {**carried, TRANSCRIPT_VARIABLE: context, SOURCE_VARIABLE: from_agent},
        namespace=namespace,
    )
    outcome = await target.interact(
        TurnRequest(user_id=destination, launch=True), namespace=namespace
    )
    handed = HandoffResult(
        from_agent=from_agent,
        to_agent=to_agent,
        user_id=destination,
        variables=sorted(carried),
        transcript_bytes=len(context.encode()),
        turn=outcome.result,
    )
    return handed, outcome
