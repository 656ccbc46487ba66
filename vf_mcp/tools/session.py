"""`emit_event`: a custom event sent to a live session of the agent."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from vf_mcp.app import App
from vf_mcp.conversation import USER_ID_MAX_LENGTH, USER_ID_PATTERN, SessionEventResult
from vf_mcp.tools.args import AgentName
from vf_mcp.tools.calls import call_of
from vf_mcp.tools.errors import result


async def emit_event(
    ctx: Context[App],
    session_id: Annotated[
        str,
        Field(
            description="The live session's id (voice calls: the session_id variable)",
            min_length=1,
            max_length=USER_ID_MAX_LENGTH,
            pattern=USER_ID_PATTERN,
        ),
    ],
    event: Annotated[
        str, Field(description="Name of a custom event the agent listens for", max_length=200)
    ],
    payload: Annotated[
        dict[str, Any] | None, Field(description="Extra fields sent in the event action's payload")
    ] = None,
    agent: AgentName = "",
) -> Annotated[CallToolResult, SessionEventResult]:
    """Send a custom event to a live session of the agent.

    The runtime applies it only to sessions with an open socket connection (web chat widget,
    voice calls); conversations driven with interact never see it: use
    interact(action={"type": "event", ...}) for those. Success does not prove the session
    exists.
    """
    call = call_of(ctx)
    sent = await call.service(agent).emit_event(
        session_id, event, payload, namespace=call.namespace
    )
    return result(
        f"Event {event!r} sent to session {session_id} (runtime answered {sent.status_code}).",
        sent,
    )
