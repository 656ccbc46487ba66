"""The state tools: read, replace, reset the conversation, and merge variables into it."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from vf_mcp.app import App
from vf_mcp.conversation import DeleteResult, StateResult
from vf_mcp.tools.args import AgentName, Environment, UserId
from vf_mcp.tools.calls import call_of
from vf_mcp.tools.errors import result
from vf_mcp.voiceflow.variables import is_runtime_variable


async def get_state(
    ctx: Context[App], user_id: UserId, environment: Environment = None, agent: AgentName = ""
) -> Annotated[CallToolResult, StateResult]:
    """Read a conversation's state: its flow stack, runtime storage and variables."""
    call = call_of(ctx)
    found = await call.service(agent).get_state(
        user_id, environment=environment, namespace=call.namespace
    )
    return result(describe_state("State of", found), found)


async def replace_state(
    ctx: Context[App],
    user_id: UserId,
    state: Annotated[
        dict[str, Any],
        Field(description="The complete state object: stack, storage and variables"),
    ],
    environment: Environment = None,
    agent: AgentName = "",
) -> Annotated[CallToolResult, StateResult]:
    """Replace a conversation's WHOLE state (stack, storage, variables).

    `state` must hold both `stack` and `storage` (the runtime refuses a partial state, and
    so does this tool, before sending anything); anything left out is wiped. To change
    variables only, use update_variables. Start from get_state's result and change what you
    need.
    """
    call = call_of(ctx)
    replaced = await call.service(agent).replace_state(
        user_id, state, environment=environment, namespace=call.namespace
    )
    return result(describe_state("Replaced the state of", replaced), replaced)


async def delete_state(
    ctx: Context[App], user_id: UserId, environment: Environment = None, agent: AgentName = ""
) -> Annotated[CallToolResult, DeleteResult]:
    """Delete a conversation's state so the next turn starts over.

    On Voiceflow's open-source runtime this removes the whole record, variables included;
    Voiceflow's hosted docs say the user's variables are kept. Either way the server
    forgets the buttons and transcript it kept for this user.
    """
    call = call_of(ctx)
    deleted = await call.service(agent).delete_state(
        user_id, environment=environment, namespace=call.namespace
    )
    await call.app.transcripts.forget(user_id, agent=call.agent(agent), namespace=call.namespace)
    return result(f"Deleted the conversation state of {user_id}.", deleted)


async def update_variables(
    ctx: Context[App],
    user_id: UserId,
    variables: Annotated[
        dict[str, Any], Field(description="Variables to set, by name; others are left as they are")
    ],
    environment: Environment = None,
    agent: AgentName = "",
) -> Annotated[CallToolResult, StateResult]:
    """Merge variables into a conversation's state, e.g. the user's name before launching."""
    call = call_of(ctx)
    merged = await call.service(agent).update_variables(
        user_id, variables, environment=environment, namespace=call.namespace
    )
    return result(f"Set {', '.join(sorted(variables))} for {user_id}.", merged)


def describe_state(prefix: str, found: StateResult) -> str:
    """One line: where the conversation is and the agent's variables (the runtime's counted)."""
    if found.state is None:
        return f"{prefix} {found.user_id}: no state (the conversation has not started)."
    state = found.state
    top = state.stack[-1] if state.stack else None
    where = f"at node {top.node_id}" if top and top.node_id else "with no active flow"
    head = f"{prefix} {found.user_id}: {len(state.stack)} stack frame(s), {where}"
    own = sorted(name for name in state.variables if not is_runtime_variable(name))
    runtime = len(state.variables) - len(own)
    kept = f" (and {runtime} the runtime keeps)" if runtime else ""
    if not own:
        return f"{head}; no variables{kept}."
    names = ", ".join(own[:20]) + ("" if len(own) <= 20 else f" and {len(own) - 20} more")
    return f"{head}; variables: {names}{kept}."
