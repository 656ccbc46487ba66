"""`summarize_turn`: a turn's traces, one handler each, reduced to a `TurnResult`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vf_mcp.domain.turn import TurnResult, TurnStatus, Verbosity
from vf_mcp.summary.handlers import TurnDraft, handle
from vf_mcp.summary.variables import diff_variables
from vf_mcp.voiceflow.traces import BaseTrace

NO_TRACES = (
    "The runtime answered this turn with no traces at all, which it does when the "
    "conversation's state points at a flow or block that does not exist (a hand-edited state, "
    "or one from an older version of the agent); check get_state, or start over with launch=true"
)


def summarize_turn(
    user_id: str,
    traces: Sequence[BaseTrace],
    *,
    variables_before: Mapping[str, Any] | None,
    variables_after: Mapping[str, Any] | None,
    latency_ms: float,
    handoff_actions: Iterable[str],
    verbosity: Verbosity = "standard",
) -> TurnResult:
    """Reduce one turn's traces to a `TurnResult`. Deterministic: same input, same output."""
    draft = TurnDraft(handoff_actions=frozenset(handoff_actions))
    for trace in traces:
        handle(draft, trace)
    draft.finish()
    debug = verbosity == "debug"
    diff = diff_variables(variables_before, variables_after, runtime=debug)
    return TurnResult(
        user_id=user_id,
        status=_status(draft),
        messages=draft.messages,
        choices=draft.choices,
        custom_actions=draft.custom_actions,
        variables_changed=diff.agent if diff is not None else None,
        runtime_variables_changed=diff.runtime if diff is not None and debug else None,
        no_reply_timeout=draft.no_reply,
        error=draft.error,
        handoff=draft.handoff,
        trace_count=len(traces),
        unknown_traces=dict(sorted(draft.unknown.items())),
        latency_ms=round(latency_ms, 1),
        warnings=[] if traces else [NO_TRACES],
        traces=[t.raw for t in traces] if debug else None,
    )


def _status(draft: TurnDraft) -> TurnStatus:
    if draft.error is not None:
        return "error"
    if draft.handoff is not None:
        return "handoff"
    if draft.ended:
        return "ended"
    if draft.waiting_action:
        return "awaiting_action"
    return "awaiting_user"
