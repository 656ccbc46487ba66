"""The entry points the MCP server needs: read a script given inline or by file name, run it.

`load_for_server` reads and checks a script before anything runs (so a size limit or a key in the
script is refused at once); `run_loaded` runs what it read, in the call (`run_conversation`), and
`SuiteJob` hands it to a worker's background (run handles, `vf_mcp.runs`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from vf_mcp.conversation import ConversationService
from vf_mcp.domain.transcript import RunResult
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.judge import ChatModel
from vf_mcp.evaluation.loader import load_script
from vf_mcp.evaluation.plan import RunPlan, plan_of
from vf_mcp.evaluation.runner import (
    DEFAULT_CONCURRENCY,
    FinishedSoFar,
    ProgressCallback,
    run_suites,
)
from vf_mcp.evaluation.script import Suite
from vf_mcp.evaluation.startstate import check_start_states


def load_for_server(
    script: str, *, tests_dir: Path | None = None, allow_keys: bool = True
) -> list[Suite]:
    """The suites of a script given inline (YAML or JSON) or as a file name under `tests_dir`.

    Raises `ScriptError` for a script that cannot be read, or that holds a key when keys are not
    allowed (a tool call must never carry one).
    """
    suites = load_script(script, tests_dir=tests_dir)
    if not allow_keys:
        for suite in suites:
            if _holds_key(suite.model_dump()):
                raise ScriptError(
                    f"{suite.name}: the script holds an API key; keys are never accepted through "
                    "a tool call. Configure the tester agent on the server (VF_MCP_AGENTS_FILE) "
                    "and run the suite with `vf-mcp eval` instead"
                )
    return suites


READ_SECONDS = 10.0
"""How long reading a caller's script may take: far more than any suite needs (the reader bounds
size and expansion), so only a pathological one meets it."""


async def read_for_server(
    script: str, *, tests_dir: Path | None = None, allow_keys: bool = True
) -> list[Suite]:
    """`load_for_server` on a worker thread, within `READ_SECONDS`: parsing and validating a
    large suite must not stall every other call this worker serves."""
    read = functools.partial(load_for_server, script, tests_dir=tests_dir, allow_keys=allow_keys)
    with anyio.move_on_after(READ_SECONDS) as timer:
        return await anyio.to_thread.run_sync(read, abandon_on_cancel=True)
    assert timer.cancelled_caught
    raise ScriptError(
        f"The script took more than {READ_SECONDS:g} s to read and was refused; send a smaller "
        "suite, or split it"
    )


async def check_for_server(
    suites: Sequence[Suite], *, service: ConversationService, namespace: str | None = None
) -> None:
    """Refuse, before a run is accepted, a `from_state` that is not a whole state or that another
    agent saved (`check_start_states`: a throwaway user of `namespace` asks the agent for its
    version, only when a test starts from a state); `ScriptError` or `ConfigurationError`."""
    await check_start_states(suites, ServiceFactory.reusing(service, namespace))


async def run_loaded(
    suites: Sequence[Suite],
    *,
    service: ConversationService,
    judge: ChatModel | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    namespace: str | None = None,
    finished: FinishedSoFar | None = None,
) -> RunResult:
    """Run `suites` with `service` for the agent under test (a separate client only when a suite
    needs the plain endpoint or another agent's key), in the caller's `namespace`; each test
    lands in `finished` as it ends."""
    return await run_suites(
        suites,
        ServiceFactory.reusing(service, namespace),
        judge=judge,
        concurrency=concurrency,
        on_progress=on_progress,
        finished=finished,
    )


@dataclass(frozen=True)
class SuiteJob:
    """Suites to run in a worker's background (a `vf_mcp.runs.manager.Job`)."""

    suites: Sequence[Suite]
    service: ConversationService
    judge: ChatModel | None = None
    finished: FinishedSoFar = field(default_factory=FinishedSoFar)

    @functools.cached_property
    def plan(self) -> RunPlan:
        return plan_of(self.suites)

    @property
    def tests(self) -> int:
        return self.plan.tests

    @property
    def turns(self) -> int:
        return self.plan.turns

    async def run(self, on_progress: ProgressCallback, *, namespace: str | None) -> RunResult:
        return await run_loaded(
            self.suites,
            service=self.service,
            judge=self.judge,
            on_progress=on_progress,
            namespace=namespace,
            finished=self.finished,
        )

    def partial(self, stopped: str) -> RunResult:
        return self.finished.partial(stopped)


async def run_conversation(
    script: str,
    *,
    service: ConversationService,
    judge: ChatModel | None = None,
    tests_dir: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    allow_keys: bool = True,
) -> RunResult:
    """Read, check and run a script in one step (`load_for_server`, `check_for_server`, then
    `run_loaded`)."""
    suites = load_for_server(script, tests_dir=tests_dir, allow_keys=allow_keys)
    await check_for_server(suites, service=service)
    return await run_loaded(
        suites, service=service, judge=judge, concurrency=concurrency, on_progress=on_progress
    )


def _holds_key(value: object) -> bool:
    if isinstance(value, dict):
        return any((k in ("api_key", "apiKey") and v) or _holds_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_key(v) for v in value)
    return False
