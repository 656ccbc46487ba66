"""The evaluation side of the MCP server: run_conversation, transcript, the transcripts resource
and the evaluate_agent prompt. Thin dispatch to `vf_mcp.evaluation`; the server registers them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from vf_mcp.app_context import AppContext
from vf_mcp.conversation import (
    USER_ID_MAX_LENGTH,
    USER_ID_PATTERN,
    ConversationService,
    check_user_id,
)
from vf_mcp.errors import VfMcpError
from vf_mcp.transcripts.models import RunResult, Transcript

ToolRegistrar = Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]
TRANSCRIPTS_URI = "voiceflow://transcripts/{user_id}"


def service_for(context: AppContext, agent: str | None) -> ConversationService:
    try:
        return context.service_for(agent)
    except VfMcpError as exc:
        raise ToolError(exc.message) from None


def register_evaluation(
    mcp: MCPServer[AppContext],
    tool: ToolRegistrar,
    namespace_of: Callable[[Context[Any]], str | None],
    tests_dir: Path | None,
) -> None:
    def app(ctx: Context[Any]) -> AppContext:
        return ctx.request_context.lifespan_context

    @tool(
        ToolAnnotations(
            title="Run a scripted conversation test",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
        name="run_conversation",
    )
    async def run_conversation_tool(
        ctx: Context[AppContext],
        script: Annotated[
            str,
            Field(
                description="A test suite as YAML or JSON text (vf-mcp or voiceflow-cli format), "
                "or the name of a suite file in the server's tests directory (VF_MCP_TESTS_DIR)",
                max_length=200_000,
            ),
        ],
        agent: Annotated[
            str | None, Field(description="Which agent to test (default agent if left out)")
        ] = None,
    ) -> Annotated[CallToolResult, RunResult]:
        """Run a whole scripted conversation test against the agent in one call.

        Each test runs on a fresh user id; every turn's checks come back with pass/fail and
        evidence. Criteria that need a judge are graded when a judge is configured
        (VF_MCP_JUDGE_URL), otherwise they come back as "to_grade" with the transcript: grade
        them yourself (see the evaluate_agent prompt).
        """
        from vf_mcp.errors import ScriptError
        from vf_mcp.evaluation.api import run_conversation
        from vf_mcp.transcripts.render import render_transcript

        context = app(ctx)
        progress = 0

        async def on_progress(event: Any) -> None:
            nonlocal progress
            progress += 1
            await ctx.report_progress(progress, None, event.text)

        try:
            result = await run_conversation(
                script,
                service=service_for(context, agent),
                judge=context.judge,
                tests_dir=tests_dir,
                on_progress=on_progress,
                allow_keys=False,
            )
        except ScriptError as exc:
            raise ToolError(str(exc)) from None
        except VfMcpError as exc:
            raise ToolError(exc.message) from None
        text = "\n\n".join(render_transcript(t) for t in result.transcripts) or "No tests ran."
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=result.model_dump(mode="json"),
        )

    @tool(
        ToolAnnotations(
            title="Read a conversation's transcript",
            read_only_hint=True,
            open_world_hint=False,
        )
    )
    async def transcript(
        ctx: Context[AppContext],
        user_id: Annotated[
            str,
            Field(
                description="The conversation's user_id",
                min_length=1,
                max_length=USER_ID_MAX_LENGTH,
                pattern=USER_ID_PATTERN,
            ),
        ],
        agent: Annotated[
            str | None, Field(description="The agent the conversation is with (default agent)")
        ] = None,
    ) -> Annotated[CallToolResult, Transcript]:
        """The transcript of a conversation this server held: every turn, what the user sent,
        what the agent answered, status, variable changes and latency."""
        from vf_mcp.transcripts.render import render_transcript

        try:
            found = app(ctx).book(namespace_of(ctx), agent).get(user_id)
        except VfMcpError as exc:
            raise ToolError(exc.message) from None
        if found is None:
            raise ToolError(
                f"No transcript for {user_id!r}: this server has held no conversation with that "
                "user_id (or it expired); start one with interact"
            )
        return CallToolResult(
            content=[TextContent(type="text", text=render_transcript(found))],
            structured_content=found.model_dump(mode="json"),
        )

    @mcp.resource(TRANSCRIPTS_URI, mime_type="text/markdown")
    async def transcript_resource(user_id: str, ctx: Context) -> str:
        """A conversation's transcript, readable as a resource (scoped to the caller)."""
        from vf_mcp.transcripts.render import render_transcript

        try:
            check_user_id(user_id)
        except VfMcpError as exc:
            raise ResourceError(exc.message) from None
        found = app(ctx).book(namespace_of(ctx), None).get(user_id)
        if found is None:
            raise ResourceError(f"No transcript for {user_id!r}")
        return render_transcript(found)

    @mcp.prompt()
    def evaluate_agent(
        goal: str, persona: str = "", criteria: str = "", max_turns: int = 10
    ) -> str:
        """Act as an LLM judge: hold a conversation with the agent toward a goal, then grade it."""
        from vf_mcp.evaluation.prompts import evaluate_agent_prompt

        wanted = [c.strip() for c in criteria.split(";") if c.strip()] or None
        return evaluate_agent_prompt(goal, persona=persona, criteria=wanted, max_turns=max_turns)
