"""One turn's transcript record, made from everything the turn produced.

The agent's side is the turn's own models (`vf_mcp.domain.turn`), taken as they are: nothing is
converted, so nothing can drift. Only what came from the runtime as raw JSON (its traces, its
variables) goes through a JSON round trip.
"""

from __future__ import annotations

import json
from typing import Any

from vf_mcp.conversation import TurnOutcome
from vf_mcp.domain.transcript import AgentReply, TranscriptTurn, UserAction
from vf_mcp.voiceflow.traces import BaseTrace, parse_traces
from vf_mcp.voiceflow.variables import without_bookkeeping


def transcript_turn(
    outcome: TurnOutcome,
    user: UserAction,
    *,
    index: int = 1,
    step_id: str | None = None,
    keep_traces: bool = False,
) -> TranscriptTurn:
    """One turn's record, from everything the turn produced: no second look at any store.

    `keep_traces` keeps the runtime's traces as received; the variables never carry the
    runtime's per-turn bookkeeping (its memory of the conversation).
    """
    result = outcome.result
    after = outcome.variables_after
    traces = [_json(t.raw) for t in outcome.traces] if keep_traces else None
    return TranscriptTurn(
        index=index,
        step_id=step_id,
        user=user,
        agent=AgentReply(
            messages=result.messages,
            choices=result.choices,
            custom_actions=result.custom_actions,
            traces=traces,
        ),
        status=result.status,
        variables_changed=result.variables_changed,
        variables=_json(without_bookkeeping(after)) if after is not None else None,
        latency_ms=result.latency_ms,
        rate_limit_retries=outcome.retries,
    )


def kept_traces(turn: TranscriptTurn) -> list[BaseTrace] | None:
    """The runtime's traces the record kept, typed again by the client's parser; None when they
    were not kept. They parsed once already, when the turn ran, so they parse again."""
    return parse_traces(turn.agent.traces) if turn.agent.traces is not None else None


def _json(value: Any) -> Any:
    # Runtime payloads are JSON already; a round trip turns anything exotic into plain JSON.
    return json.loads(json.dumps(value, default=str))
