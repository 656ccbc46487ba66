"""A run of suites as it is kept: one record, rewritten by the worker running it as it goes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vf_mcp.domain.transcript import RunResult

RunState = Literal["running", "finished", "cancelled", "stopped", "lost", "error"]
"""running: a worker runs it now; finished: every test ran (`result` holds them); cancelled: by
`cancel_run`; stopped: its worker shut down in order; lost: its worker died (no heartbeat);
error: the run itself failed (not a test: those fail inside `result`)."""


def now() -> datetime:
    return datetime.now(UTC)


class RunRecord(BaseModel):
    """A run as `get_run` reads it: its progress, then its results."""

    # Built on first use, not at start: a stdio start imports it with the stores, and the first
    # tools/list needs none of it (nor of the transcript models it holds).
    model_config = ConfigDict(defer_build=True)

    run_id: str
    agent: str
    state: RunState
    worker: str = Field(description="The worker running it (host:pid)")
    started_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)
    tests_total: int = Field(default=0, ge=0)
    tests_done: int = Field(default=0, ge=0, description="Tests finished (or skipped) so far")
    turns_sent: int = Field(default=0, ge=0, description="Turns answered by the agent so far")
    failing: list[str] = Field(
        default_factory=list, description="Tests that failed or erred so far (suite / test)"
    )
    cancel_requested: bool = False
    detail: str | None = Field(
        default=None,
        description=(
            "Why a run that did not finish ended, one line: set for cancelled (cancel_run), "
            "stopped (its worker shut down), lost (its worker died) and error (what broke the "
            "run, and what next); unset while running and once finished"
        ),
    )
    result: RunResult | None = Field(
        default=None,
        description="Every test's transcript and checks, once the run finished; for a run "
        "cancelled or stopped, those of the tests it finished (`stopped` says why)",
    )
