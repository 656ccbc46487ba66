"""What is kept about a run: one record, rewritten by the worker running it as it goes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from vf_mcp.transcripts.models import RunResult

RunState = Literal["running", "finished", "cancelled", "stopped", "lost", "error"]
"""running: a worker runs it now; finished: every test ran (`result` holds them); cancelled: by
`cancel_run`; stopped: its worker shut down in order; lost: its worker died (no heartbeat);
error: the run itself failed (not a test: those fail inside `result`)."""

RUN_ID_PREFIX = "run-"


def new_run_id() -> str:
    return RUN_ID_PREFIX + secrets.token_hex(8)


def run_key(namespace: str | None, run_id: str) -> str:
    """Each caller (HTTP token, OAuth subject) has runs of its own, as it has conversations."""
    return f"{namespace or '-'}/{run_id}"


def now() -> datetime:
    return datetime.now(UTC)


class RunStarted(BaseModel):
    """What `start_run` answers at once."""

    run_id: str = Field(description="The run's handle: pass it to get_run and cancel_run")
    agent: str
    tests_total: int = Field(ge=0, description="Tests the run holds, each trial counted")
    turns_planned: int = Field(ge=0, description="Turns its tests script, at most")


class RunRecord(BaseModel):
    """A run as `get_run` reads it: its progress, then its results."""

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
