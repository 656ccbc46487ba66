"""The MCP tools, at a glance: each a module-level function of a screenful, dispatching to the
conversation service (`conversation`, `state`, `session`, `handoff`), to evaluation and
transcripts (`evaluation`) or to background test runs (`runs`). `TOOLS` is the registry every
tool is chosen from before registration.
"""

from __future__ import annotations

from vf_mcp.config import Settings
from vf_mcp.tools.args import reads, writes
from vf_mcp.tools.conversation import interact
from vf_mcp.tools.evaluation import run_conversation, transcript
from vf_mcp.tools.handoff import handoff
from vf_mcp.tools.imports import import_transcripts
from vf_mcp.tools.registry import ToolSpec, build_tools, choose
from vf_mcp.tools.runs import cancel_run, get_run, start_run
from vf_mcp.tools.session import emit_event
from vf_mcp.tools.state import delete_state, get_state, replace_state, update_variables
from vf_mcp.tools.view import VIEW_READ, VIEW_REPLY, bind_view, view_conversation, view_reply
from vf_mcp.view import VIEW_URI

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("interact", interact, writes("Talk to the Voiceflow agent"), view=VIEW_URI),
    ToolSpec("get_state", get_state, reads("Read the conversation state")),
    ToolSpec(
        "replace_state",
        replace_state,
        writes("Replace the whole conversation state", destructive=True, idempotent=True),
    ),
    ToolSpec(
        "delete_state",
        delete_state,
        writes("Reset the conversation", destructive=True, idempotent=True),
    ),
    ToolSpec(
        "update_variables",
        update_variables,
        writes("Merge variables into the conversation", idempotent=True),
    ),
    ToolSpec("emit_event", emit_event, writes("Emit a session event")),
    ToolSpec(
        "handoff",
        handoff,
        writes("Hand the conversation to another agent"),
        needs_agents=True,
        view=VIEW_URI,
    ),
    ToolSpec(
        "run_conversation",
        run_conversation,
        writes("Run a scripted conversation test"),
        large=True,
    ),
    # Run handles: start_run drives the agent as run_conversation does; get_run only reads the
    # store; cancel_run changes only the run (no turn is sent), so it is not open-world.
    ToolSpec("start_run", start_run, writes("Start a scripted test run in the background")),
    ToolSpec(
        "get_run",
        get_run,
        reads("Read a test run's progress or results", open_world=False),
        large=True,
    ),
    ToolSpec(
        "cancel_run",
        cancel_run,
        writes("Cancel a test run", idempotent=True, open_world=False),
    ),
    ToolSpec(
        "transcript",
        transcript,
        reads("Read a conversation's transcript", open_world=False),
        view=VIEW_URI,
        large=True,
    ),
    ToolSpec(
        "import_transcripts",
        import_transcripts,
        reads("Import real conversations as test suites"),
        large=True,
    ),
    # The conversation view's own tools (MCP Apps, visibility `app`): vf_mcp.tools.view.
    ToolSpec(
        VIEW_READ,
        view_conversation,
        reads("Show the conversation in its view", open_world=False),
        view=VIEW_URI,
        app_only=True,
    ),
    ToolSpec(
        VIEW_REPLY,
        view_reply,
        writes("Answer the agent from the conversation view"),
        view=VIEW_URI,
        app_only=True,
    ),
)


def offered_tools(settings: Settings, *, several_agents: bool) -> frozenset[str]:
    """The names of the tools this deployment offers (`choose`): whoever composes the front ends
    lets the A2A agent converse exactly when `interact` is one."""
    return frozenset(spec.name for spec in choose(TOOLS, settings, several_agents=several_agents))


__all__ = ["TOOLS", "ToolSpec", "bind_view", "build_tools", "choose", "offered_tools"]
