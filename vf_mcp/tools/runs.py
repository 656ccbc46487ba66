"""Run handles: `start_run`, `get_run`, `cancel_run`. Thin dispatch to `vf_mcp.runs`.

A suite too long for one tool call (clients give up on a call after a minute or so) runs in the
worker's background; the caller polls it by id, from any worker sharing the store.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from vf_mcp.app import App
from vf_mcp.domain.run import RunRecord
from vf_mcp.runs.models import RunStarted
from vf_mcp.tools.args import SuiteScript, TestedAgent
from vf_mcp.tools.calls import call_of
from vf_mcp.tools.errors import result

RunId = Annotated[
    str,
    Field(description="The run's handle, as start_run returned it", min_length=1, max_length=64),
]


async def start_run(
    ctx: Context[App],
    script: SuiteScript,
    agent: TestedAgent = "",
) -> Annotated[CallToolResult, RunStarted]:
    """Start a scripted conversation test suite in the background; answers at once with a run_id.

    For suites of any size (run_conversation refuses long ones, which clients would cut off).
    Poll get_run(run_id) for progress (tests done, failing so far) and, once it finished, the
    same results run_conversation gives; cancel_run(run_id) stops it. Any worker of the server
    answers for the run. A caller has a few runs going at once at most (VF_MCP_MAX_RUNS).
    """
    from vf_mcp.evaluation.api import SuiteJob, check_for_server, read_for_server
    from vf_mcp.runs.render import render_started

    call = call_of(ctx)
    suites = await read_for_server(script, tests_dir=call.app.settings.tests_dir, allow_keys=False)
    await check_for_server(suites, service=call.service(agent), namespace=call.namespace)
    job = SuiteJob(suites, service=call.service(agent), judge=call.app.judge)
    started = await call.app.runs.start(job, agent=call.agent(agent), namespace=call.namespace)
    return result(render_started(started), started)


TestOffset = Annotated[
    int, Field(description="Finished runs: the first test to show (0 = the first)", ge=0)
]
TestLimit = Annotated[
    int | None, Field(description="Finished runs: the most tests to show at once", ge=1, le=100)
]


async def get_run(
    ctx: Context[App], run_id: RunId, offset: TestOffset = 0, limit: TestLimit = None
) -> Annotated[CallToolResult, RunRecord]:
    """A run's state: running (tests done of the total, failing so far), finished (the verdict
    and every test that did not pass, then the tests' transcripts and checks, as run_conversation
    answers), cancelled or stopped with its worker (with the tests it finished), lost with its
    worker (it was killed: start the run again), or error (what broke it). A long run's text
    shows a page of its tests and says how to read the next (`offset`); the structured content
    holds them all."""
    from vf_mcp.runs.render import render_record  # text renderers load with their first run

    call = call_of(ctx)
    record = await call.app.runs.get(run_id, call.namespace)
    return result(render_record(record, offset=offset, limit=limit), record)


async def cancel_run(ctx: Context[App], run_id: RunId) -> Annotated[CallToolResult, RunRecord]:
    """Stop a run; it stops at its next turn or test (within a second or so), and get_run then
    reads it as cancelled, with the results of the tests it finished. A run already over is left
    as it is."""
    from vf_mcp.runs.render import render_record

    call = call_of(ctx)
    record = await call.app.runs.cancel(run_id, call.namespace)
    return result(render_record(record), record)
