"""Evaluation and transcripts: `run_conversation`, `transcript`, its resource and the
`evaluate_agent` prompt. Thin dispatch to `vf_mcp.evaluation` and `vf_mcp.transcripts`; the
background form of `run_conversation` is in `runs`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from vf_mcp.app import App
from vf_mcp.config import ENV_RUN_CONVERSATION_MAX_TURNS
from vf_mcp.conversation import check_user_id
from vf_mcp.domain.transcript import RunResult, Transcript
from vf_mcp.errors import InvalidInputError, VfMcpError
from vf_mcp.tools.args import AgentName, SuiteScript, TestedAgent, UserId
from vf_mcp.tools.calls import call_of
from vf_mcp.tools.errors import resource_error, result

if TYPE_CHECKING:
    from vf_mcp.evaluation.script import Suite

TRANSCRIPTS_URI = "voiceflow://transcripts/{user_id}"


async def run_conversation(
    ctx: Context[App],
    script: SuiteScript,
    agent: TestedAgent = "",
) -> Annotated[CallToolResult, RunResult]:
    """Run a whole scripted conversation test against the agent in one call.

    Each test runs on a fresh user id; every turn's checks come back with pass/fail and
    evidence. Criteria that need a judge are graded when a judge is configured
    (VF_MCP_JUDGE_URL), otherwise they come back as "to_grade" with the transcript: grade
    them yourself (see the evaluate_agent prompt). A suite too long for one call is refused:
    run it with start_run instead.
    """
    from vf_mcp.evaluation.api import check_for_server, read_for_server, run_loaded
    from vf_mcp.transcripts.render import render_run

    call = call_of(ctx)
    suites = await read_for_server(script, tests_dir=call.app.settings.tests_dir, allow_keys=False)
    _refuse_long(suites, call.app.settings.run_conversation_max_turns)
    await check_for_server(suites, service=call.service(agent), namespace=call.namespace)
    steps = 0

    async def on_progress(event: Any) -> None:
        nonlocal steps
        steps += 1
        await ctx.report_progress(steps, None, event.text)

    ran = await run_loaded(
        suites,
        service=call.service(agent),
        judge=call.app.judge,
        on_progress=on_progress,
        namespace=call.namespace,
    )
    return result(render_run(ran, rest=_rest_of_a_run), ran)


def _rest_of_a_run(_: int) -> str:
    return "the structured content holds every test (start_run and get_run page through a run)"


def _refuse_long(suites: Sequence[Suite], limit: int) -> None:
    """A suite that would outlast the client's patience is refused before a turn is sent."""
    from vf_mcp.evaluation.plan import plan_of

    turns = plan_of(suites).turns
    if turns > limit:
        raise InvalidInputError(
            f"This suite scripts {turns} turns, more than run_conversation runs in one call "
            f"({ENV_RUN_CONVERSATION_MAX_TURNS}={limit}), which a client would cut off: run it "
            "with start_run, then poll get_run for its progress and results"
        )


TurnOffset = Annotated[int, Field(description="The first turn to show (0 = the first)", ge=0)]
TurnLimit = Annotated[int | None, Field(description="The most turns to show at once", ge=1, le=500)]


async def transcript(
    ctx: Context[App],
    user_id: UserId,
    agent: AgentName = "",
    offset: TurnOffset = 0,
    limit: TurnLimit = None,
) -> Annotated[CallToolResult, Transcript]:
    """The transcript of a conversation this server held: every turn, what the user sent,
    what the agent answered, status, variable changes and latency. A long one's text shows a
    page of turns and says how to read the next (`offset`); the structured content holds all."""
    from vf_mcp.transcripts.render import TEXT_BUDGET, render_transcript

    call = call_of(ctx)
    found = await call.app.transcripts.get(
        user_id, agent=call.agent(agent), namespace=call.namespace
    )
    if found is None:
        raise InvalidInputError(
            f"No transcript for {user_id!r}: this server has held no conversation with that "
            "user_id (or it expired); start one with interact"
        )

    def rest(next_offset: int) -> str:
        return f"transcript(user_id={user_id!r}, offset={next_offset}) shows the next ones"

    text = render_transcript(found, offset=offset, limit=limit, budget=TEXT_BUDGET, rest=rest)
    return result(text, found)


def register_resources_and_prompts(mcp: MCPServer[App]) -> None:
    @mcp.resource(TRANSCRIPTS_URI, mime_type="text/markdown")
    async def transcript_resource(user_id: str, ctx: Context) -> str:
        """A conversation's transcript, readable as a resource (scoped to the caller)."""
        from vf_mcp.transcripts.render import render_transcript

        try:
            check_user_id(user_id)
            call = call_of(ctx)
            found = await call.app.transcripts.get(
                user_id, agent=call.agent(None), namespace=call.namespace
            )
        except VfMcpError as error:
            raise resource_error(error) from None
        if found is None:
            raise resource_error(InvalidInputError(f"No transcript for {user_id!r}"))
        return render_transcript(found)

    @mcp.prompt()
    def evaluate_agent(
        goal: str, persona: str = "", criteria: str = "", max_turns: int = 10
    ) -> str:
        """Act as an LLM judge: hold a conversation with the agent toward a goal, then grade it."""
        from vf_mcp.evaluation.prompts import evaluate_agent_prompt

        wanted = [c.strip() for c in criteria.split(";") if c.strip()] or None
        return evaluate_agent_prompt(goal, persona=persona, criteria=wanted, max_turns=max_turns)
