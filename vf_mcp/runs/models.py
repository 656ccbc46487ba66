"""A run's handle and what `start_run` answers; its record is `vf_mcp.domain.run.RunRecord`."""

from __future__ import annotations

import secrets

from pydantic import BaseModel, Field

RUN_ID_PREFIX = "run-"


def new_run_id() -> str:
    return RUN_ID_PREFIX + secrets.token_hex(8)


def run_key(namespace: str | None, run_id: str) -> str:
    """Each caller (HTTP token, OAuth subject) has runs of its own, as it has conversations."""
    return f"{namespace or '-'}/{run_id}"


class RunStarted(BaseModel):
    """What `start_run` answers at once."""

    run_id: str = Field(description="The run's handle: pass it to get_run and cancel_run")
    agent: str
    tests_total: int = Field(ge=0, description="Tests the run holds, each trial counted")
    turns_planned: int = Field(ge=0, description="Turns its tests script, at most")
