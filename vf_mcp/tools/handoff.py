"""`handoff`: move a conversation to another agent of this server, with its context."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from vf_mcp.app import App
from vf_mcp.conversation import USER_ID_MAX_LENGTH, USER_ID_PATTERN
from vf_mcp.handoff import HandoffResult, hand_off
from vf_mcp.summary import render_turn
from vf_mcp.tools.args import AgentName, UserId
from vf_mcp.tools.calls import call_of
from vf_mcp.tools.conversation import record_turn
from vf_mcp.tools.errors import result


async def handoff(
    ctx: Context[App],
    user_id: UserId,
    to_agent: Annotated[str, Field(description="The agent to take over", max_length=40)],
    from_agent: AgentName = "",
    variables: Annotated[
        list[str] | None,
        Field(description="Names of variables to carry over from the current agent"),
    ] = None,
    target_user_id: Annotated[
        str | None,
        Field(
            description="user_id on the target agent (default: the same user_id)",
            min_length=1,
            max_length=USER_ID_MAX_LENGTH,
            pattern=USER_ID_PATTERN,
        ),
    ] = None,
) -> Annotated[CallToolResult, HandoffResult]:
    """Move a conversation to another agent of this server.

    Carries the chosen variables and a compact transcript (the variable
    vf_handoff_transcript, at most 8 KB) into the target agent's state, launches it there,
    and returns its first turn. Continue with interact(agent=<to_agent>); take the
    conversation back when its status is ended or handoff.
    """
    call = call_of(ctx)
    source, target = call.agent(from_agent), call.agent(to_agent)
    handed, outcome = await hand_off(
        source=call.app.services[source],
        target=call.app.services[target],
        from_agent=source,
        to_agent=target,
        user_id=user_id,
        transcript=await call.app.transcripts.get(user_id, agent=source, namespace=call.namespace),
        variables=variables or (),
        target_user_id=target_user_id,
        namespace=call.namespace,
    )
    outcome = await record_turn(call, target, outcome)
    handed = handed.model_copy(update={"turn": outcome.result})
    carried = ", ".join(handed.variables) or "no variables"
    head = (
        f"Handed {user_id} from {source} to {target} as {handed.user_id} "
        f"({carried}; transcript {handed.transcript_bytes} bytes)."
    )
    turn = render_turn(handed.turn, max_chars=call.app.settings.summary_max_chars)
    return result(f"{head}\n{turn}", handed)
