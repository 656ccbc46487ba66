"""`interact`: one user turn, the tool a model uses most."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from vf_mcp.app import App
from vf_mcp.conversation import TurnOutcome, TurnRequest, new_user_id
from vf_mcp.domain.turn import TurnResult
from vf_mcp.errors import StoreError, VfMcpError
from vf_mcp.summary import render_turn
from vf_mcp.tools.args import AgentName, Environment, NewOrUserId, TurnVerbosity, Variables
from vf_mcp.tools.calls import Call, call_of
from vf_mcp.tools.errors import result

Message = Annotated[str | None, Field(description="What the user types or says", max_length=10_000)]
ChoiceArg = Annotated[
    str | int | None,
    Field(
        description="A button offered by the previous turn: its label (case-insensitive) or "
        "its 1-based number"
    ),
]
Launch = Annotated[
    bool, Field(description="Start (or restart) the conversation from the beginning")
]
RawAction = Annotated[
    dict[str, Any] | None,
    Field(
        description="A raw Voiceflow action sent verbatim, e.g. "
        '{"type": "event", "payload": {"event": {"name": "checkout"}}}, '
        '{"type": "done"} to resume a custom action, {"type": "no-reply"}, intents, '
        "path-* button requests"
    ),
]


async def interact(
    ctx: Context[App],
    user_id: NewOrUserId = "",
    message: Message = None,
    choice: ChoiceArg = None,
    launch: Launch = False,
    action: RawAction = None,
    variables: Variables = None,
    environment: Environment = None,
    agent: AgentName = "",
    verbosity: TurnVerbosity = "standard",
) -> Annotated[CallToolResult, TurnResult]:
    """Send one user turn to the Voiceflow agent and get its answer.

    Give exactly one of `message`, `choice`, `launch=true` or `action`. The result says what
    the agent said, which buttons it offers, what changed, and the status: awaiting_user,
    awaiting_action (send the custom action's result as `action`), ended, handoff or error.
    """
    call = call_of(ctx)
    service = call.service(agent)
    chosen = not user_id  # chosen here, so even a failed first turn names the id to check
    request = TurnRequest(
        user_id=user_id or new_user_id(),
        message=message,
        choice=choice,
        launch=launch,
        action=action,
        variables=variables,
        environment=environment,
        verbosity=verbosity,
    )
    steps = 0

    async def on_progress(text: str) -> None:
        nonlocal steps
        steps += 1
        await ctx.report_progress(steps, None, text)

    try:
        outcome = await service.interact(request, namespace=call.namespace, on_progress=on_progress)
    except VfMcpError as error:
        if chosen:
            error.add_detail(f"The new conversation's user_id is {request.user_id}")
        raise
    outcome = await record_turn(call, agent, outcome)
    text = render_turn(
        outcome.result,
        verbosity,
        show_user_id=chosen,
        max_chars=call.app.settings.summary_max_chars,
    )
    return result(text, outcome.result)


async def record_turn(call: Call, agent: str | None, outcome: TurnOutcome) -> TurnOutcome:
    """Add the turn to the caller's transcript; the outcome, with a warning when the store
    failed (the turn ran all the same)."""
    try:
        await call.app.transcripts.record(
            outcome,
            agent=call.agent(agent),
            namespace=call.namespace,
            keep_traces=outcome.request.verbosity == "debug",
        )
    except StoreError as error:
        warning = f"{error.message}; the transcript lacks this turn"
        return replace(outcome, result=outcome.result.with_warnings(warning))
    return outcome
