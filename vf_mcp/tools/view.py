"""The app-only tools behind the conversation view (`vf_mcp.view`).

The view reads the conversation with `view_conversation` (from the transcript book, so any worker
answers) and acts in it with `view_reply`, one turn per button press or typed reply. Hosts give
tools of visibility `app` to the view only, never to the model; the model hears of each turn
through the context the view sends (`ViewState.context`). Both obey the allow-list and read-only
mode like every tool: without `view_reply` the view shows the conversation with no controls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from vf_mcp.app import App
from vf_mcp.conversation import TurnOutcome, TurnRequest
from vf_mcp.domain.transcript import Transcript
from vf_mcp.domain.turn import TurnStatus
from vf_mcp.errors import InvalidInputError
from vf_mcp.summary import render_turn
from vf_mcp.tools.args import AgentName, UserId
from vf_mcp.tools.calls import Call, call_of
from vf_mcp.tools.conversation import Message, record_turn
from vf_mcp.tools.errors import result
from vf_mcp.tools.registry import ToolSpec
from vf_mcp.view.gate import apps_support

VIEW_READ = "view_conversation"
VIEW_REPLY = "view_reply"


class ViewState(BaseModel):
    """What the view shows of a conversation, and what it tells the model after acting in it."""

    user_id: str
    agent: str = Field(description="The agent the conversation is with")
    title: str = Field(description="The view's heading")
    status: TurnStatus | None = Field(description="The last turn's status; None before any")
    status_label: str = Field(description="The status in words, for the view's status line")
    turns: int = Field(ge=0)
    interactive: bool = Field(
        description="The person can answer in the view: the agent waits for the user and "
        "view_reply is offered"
    )
    summary: str = Field(default="", description="view_reply: the turn as interact's text")
    context: str = Field(
        default="",
        description="view_reply: what the view sends the model (ui/update-model-context)",
    )
    html: str = Field(description="The conversation as the chat component's escaped markup")


async def view_conversation(
    ctx: Context[App], user_id: UserId, agent: AgentName = ""
) -> Annotated[CallToolResult, ViewState]:
    """For the conversation view (MCP Apps) only: the conversation so far, as chat markup."""
    call = _view_call(ctx, VIEW_READ)
    state = await view_state(call, user_id, agent)
    return result(state.status_label, state)


async def view_reply(
    ctx: Context[App],
    user_id: UserId,
    message: Message = None,
    choice: Annotated[
        int | None, Field(description="The 1-based number of a button of the last turn", ge=1)
    ] = None,
    agent: AgentName = "",
) -> Annotated[CallToolResult, ViewState]:
    """For the conversation view (MCP Apps) only: send the person's reply, a typed message or a
    pressed button, as one turn, and return the conversation with it."""
    call = _view_call(ctx, VIEW_REPLY)
    if (message is None) == (choice is None):
        raise InvalidInputError(
            f"{VIEW_REPLY} takes exactly one of message or choice; send the typed text as "
            "message or the button's number as choice"
        )
    request = TurnRequest(user_id=user_id, message=message, choice=choice)
    outcome = await call.service(agent).interact(request, namespace=call.namespace)
    outcome = await record_turn(call, agent, outcome)
    summary = render_turn(outcome.result, max_chars=call.app.settings.summary_max_chars)
    state = await view_state(call, user_id, agent)
    context = f"{_what_the_user_did(outcome)} (user_id {user_id}). The agent answered:\n{summary}"
    return result(summary, state.model_copy(update={"summary": summary, "context": context}))


async def view_state(call: Call, user_id: str, agent: str) -> ViewState:
    """The conversation of `user_id` as the view shows it, read from the transcript book."""
    name = call.agent(agent)
    found = await call.app.transcripts.get(user_id, agent=name, namespace=call.namespace)
    if found is None:
        raise InvalidInputError(
            f"No conversation {user_id!r} to show: this server holds no transcript for it (or it "
            "expired); start one with interact"
        )
    from vf_mcp.chat import ChatOptions, render_chat  # the view's first read loads the renderer

    status = found.turns[-1].status if found.turns else None
    interactive = status == "awaiting_user" and VIEW_REPLY in call.app.offered_tools
    options = ChatOptions(
        image_origins=call.app.settings.view_image_origins, interactive=interactive
    )
    several = len(call.app.services) > 1
    return ViewState(
        user_id=user_id,
        agent=name,
        title=f"Voiceflow agent: {name}" if several else "Voiceflow agent",
        status=status,
        status_label=_status_label(found, status),
        turns=len(found.turns),
        interactive=interactive,
        html=render_chat(found.turns, options),
    )


def bind_view(chosen: Sequence[ToolSpec]) -> list[ToolSpec]:
    """`chosen`, with the view declared only where the view can read its conversation: without
    view_conversation (left out of the allow-list) no tool names the view, and the app-only
    tools go too (an allow-list naming view_reply alone would else offer it to the model as an
    ordinary tool, ungated and without the view it serves)."""
    if any(spec.name == VIEW_READ for spec in chosen):
        return list(chosen)
    return [dataclasses.replace(spec, view=None) for spec in chosen if not spec.app_only]


def _view_call(ctx: Context[App], tool: str) -> Call:
    # Refused only to a client known to lack Apps (vf_mcp.view.gate says when it cannot tell).
    if apps_support(ctx) is False:
        raise InvalidInputError(
            f"{tool} serves the MCP App conversation view, and this client did not negotiate "
            "MCP Apps (io.modelcontextprotocol/ui); use interact or transcript instead"
        )
    return call_of(ctx)


def _status_label(transcript: Transcript, status: TurnStatus | None) -> str:
    if status is None:
        return "The conversation has not started yet"
    from vf_mcp.chat.markup import STATUS_LABELS

    label = STATUS_LABELS.get(status, status)
    count = len(transcript.turns)
    return f"{label} · {count} turn{'' if count == 1 else 's'}"


def _what_the_user_did(outcome: TurnOutcome) -> str:
    if outcome.pressed is not None:
        return f'In the conversation view the user pressed "{outcome.pressed.label}"'
    return f'In the conversation view the user typed "{outcome.request.message or ""}"'
