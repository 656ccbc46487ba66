"""Custom-action mocks: the suite answers the custom actions the agent waits on (`on_action`).

A Voiceflow agent that runs a custom action stops and waits for the host (the web page, the
phone system) to answer with one of the action's result types, e.g. `{type: done}`. A mock
plays that host, as Vapi and ElevenLabs tests mock tool replies: the driver sends the mock's
reply (and its variables, in the same request) at once, and the agent's answer to it belongs to
the same turn, so the step's checks read the conversation as a user would see it. The turn's
record lists each reply (`host_replies`).

An action no mock answers, in a conversation that goes on, would send the next user input to
the action instead (the runtime takes its default path): the turn fails and names the action.
A mock nobody asked for is a warning, since a typo in its name would leave it silently unused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vf_mcp.domain.transcript import AgentReply, CheckResult, HostReply, TranscriptTurn
from vf_mcp.domain.turn import CustomAction, VariableChange
from vf_mcp.evaluation.script import ActionMock
from vf_mcp.evaluation.trajectory import merge

MAX_HOST_REPLIES = 10
"""Mocked replies in one turn before the driver gives up: an agent asking again and again."""


def waiting_action(turn: TranscriptTurn) -> CustomAction | None:
    """The custom action the turn ends waiting on (the last one), if it does."""
    if turn.status not in ("awaiting_action", "handoff") or not turn.agent.custom_actions:
        return None
    return turn.agent.custom_actions[-1]


class ActionResponder:
    """The mocks of one test (its own first, then the suite's) and which were asked for."""

    def __init__(self, own: Sequence[ActionMock], suite: Sequence[ActionMock]) -> None:
        self.mocks = {m.name: m for m in suite} | {m.name: m for m in own}
        self.own = {m.name for m in own}
        self.used: set[str] = set()

    def mock_for(self, turn: TranscriptTurn) -> ActionMock | None:
        action = waiting_action(turn)
        mock = self.mocks.get(action.name) if action is not None else None
        if mock is not None:
            self.used.add(mock.name)
        return mock

    def unused_own(self) -> list[str]:
        return unused_warnings(sorted(self.own - self.used), "this test")


def unused_warnings(names: Iterable[str], where: str) -> list[str]:
    return [
        f"on_action mock {name!r} was never asked for in {where}: check the custom action's "
        "name (the trace type the agent sends)"
        for name in names
    ]


def unanswered(turn: TranscriptTurn) -> CheckResult | None:
    """A failed check when the turn waits on a custom action that nothing will answer."""
    action = waiting_action(turn)
    if action is None or turn.status != "awaiting_action":
        return None
    reply = action.result_types[0] if action.result_types else "done"
    types = ", ".join(action.result_types) or "none given"
    return CheckResult(
        kind="custom_action",
        label=f"custom action {action.name!r} is answered",
        expected=action.name,
        outcome="failed",
        evidence=f"the agent waits for the host to answer the custom action {action.name!r} "
        f"(result types: {types}) and no mock answers it; add on_action: {{name: "
        f"{action.name}, reply: {{type: {reply}}}}} to the test or the suite",
    )


def merge_turns(first: TranscriptTurn, second: TranscriptTurn, reply: HostReply) -> TranscriptTurn:
    """One turn of the agent's answer, the mock's reply, and the agent's answer to that."""
    reply = reply.model_copy(update={"after_message": len(first.agent.messages)})
    traces = None
    if first.agent.traces is not None or second.agent.traces is not None:
        traces = [*(first.agent.traces or []), *(second.agent.traces or [])]
    agent = AgentReply(
        messages=[*first.agent.messages, *second.agent.messages],
        choices=second.agent.choices,
        custom_actions=[*first.agent.custom_actions, *second.agent.custom_actions],
        traces=traces,
    )
    retrieval = [*(first.retrieval or []), *(second.retrieval or [])] or None
    return first.model_copy(
        update={
            "agent": agent,
            "status": second.status,
            "variables_changed": _deltas(first.variables_changed, second.variables_changed),
            "variables": second.variables if second.variables is not None else first.variables,
            "latency_ms": round(first.latency_ms + second.latency_ms, 1),
            "rate_limit_retries": first.rate_limit_retries + second.rate_limit_retries,
            "error": second.error,
            "trajectory": merge(first.trajectory, second.trajectory),
            "retrieval": retrieval,
            "host_replies": [*first.host_replies, reply, *second.host_replies],
        }
    )


def _deltas(
    first: list[VariableChange] | None, second: list[VariableChange] | None
) -> list[VariableChange] | None:
    if first is None or second is None:
        return first if second is None else second
    merged: dict[str, VariableChange] = {d.name: d for d in first}
    for delta in second:
        earlier = merged.get(delta.name)
        before = earlier.before if earlier is not None else delta.before
        merged[delta.name] = VariableChange(name=delta.name, before=before, after=delta.after)
    return [d for d in merged.values() if d.before != d.after]
