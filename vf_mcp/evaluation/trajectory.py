"""What a turn ran (flows, blocks, tools), read from the runtime's traces, and the checks over it.

Where each step comes from:
- a **flow** is a `flow` trace (`{diagramID, name?}`: entering a flow, or returning to one); its
  name is the trace's `name`, or the `diagramName` of a node ref naming the same diagram. The
  runtime names flows by id (general-runtime sends no `name`), so a check by name needs one.
- a **block** is a `block` trace (`{blockID}`).
- a **tool** is a `tool-call` pair, `{state: "start", callID}` then `{state: "end", callID}`.
  `tool-call` carries no tool name; the runtime attaches a `ref` to other traces' payloads (text,
  choice, completion, debug: https://github.com/voiceflow/cli/blob/main/.speakeasy/out.openapi.yaml,
  `DebugTraceRef`). The tool of a call is named by the first tool ref (`api-tool`: `apiToolID` /
  `apiToolName`, `function`: `functionID` / `functionName`, `integration-tool`,
  `mcp-integration-tool`, or any other non-node ref with a `name`) on a trace that arrives while
  that call, and only that call, is open. A ref while no call or several calls are open names
  nothing. A call nothing names is kept unnamed, and a check it could decide says so.

`block`, `flow` and `debug` traces are dropped by the runtime's default filter, so suites with
trajectory checks ask for every trace (`config.excludeTypes: []`, on the plain interact
endpoint). A turn without them knows only its tools, and a flow or block check of it says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vf_mcp.domain.transcript import (
    CheckOutcome,
    CheckResult,
    Trajectory,
    TrajectoryStep,
    TranscriptTurn,
)
from vf_mcp.evaluation.checkmodels import (
    BlockCheck,
    FlowCheck,
    InOrderCheck,
    StepKind,
    StepRef,
    ToolCheck,
    describe_check,
)
from vf_mcp.voiceflow.traces import (
    BaseTrace,
    BlockTrace,
    FlowTrace,
    ToolCallPayload,
    ToolCallTrace,
)

# ref type -> (id field, name field)
TOOL_REFS: dict[str, tuple[str | None, str]] = {
    "api-tool": ("apiToolID", "apiToolName"),
    "function": ("functionID", "functionName"),
    "integration-tool": (None, "integrationToolName"),
    "mcp-integration-tool": (None, "mcpToolName"),
}
_NOT_TOOLS = frozenset({"node", "agent", "prompt"})
_EVIDENCE_STEPS = 12
StepCheck = FlowCheck | BlockCheck | ToolCheck
TrajectoryCheck = FlowCheck | BlockCheck | ToolCheck | InOrderCheck


# -- reading traces -----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def tool_ref(ref: Any) -> tuple[str | None, str | None, str] | None:
    """(id, name, ref type) when `ref` names a tool, else None."""
    if not isinstance(ref, dict) or not isinstance(ref.get("type"), str):
        return None
    kind = ref["type"]
    if kind in TOOL_REFS:
        id_field, name_field = TOOL_REFS[kind]
        tool_id = _text(ref.get(id_field)) if id_field else None
        name = _text(ref.get(name_field))
        return (tool_id or name, name, kind) if (tool_id or name) else None
    name = _text(ref.get("name"))
    if kind in _NOT_TOOLS or name is None:
        return None
    return name, name, kind


class _Reader:
    def __init__(self) -> None:
        self.steps: list[TrajectoryStep] = []
        self.open: dict[str | None, TrajectoryStep] = {}
        self.flow_names: dict[str, str] = {}

    def take(self, trace: BaseTrace) -> None:
        if isinstance(trace, FlowTrace) and trace.payload.diagram_id:
            flow = trace.payload
            self.steps.append(
                TrajectoryStep(kind="flow", id=flow.diagram_id, name=flow.name or None)
            )
        elif isinstance(trace, BlockTrace) and trace.payload.block_id:
            self.steps.append(TrajectoryStep(kind="block", id=trace.payload.block_id))
        elif isinstance(trace, ToolCallTrace):
            self._tool_call(trace.payload)
        if (ref := trace.ref) is not None:
            self._ref(ref)

    def _tool_call(self, payload: ToolCallPayload) -> None:
        call_id = payload.call_id or None
        if payload.state == "end":
            ended = self.open.pop(call_id, None)
            if ended is not None:
                ended.finished = True
            return
        step = TrajectoryStep(kind="tool", call_id=call_id, finished=False)
        self.steps.append(step)
        self.open[call_id] = step

    def _ref(self, ref: dict[str, Any]) -> None:
        diagram, diagram_name = _text(ref.get("diagramID")), _text(ref.get("diagramName"))
        if diagram and diagram_name:
            self.flow_names.setdefault(diagram, diagram_name)
        named = tool_ref(ref)
        if named is None or len(self.open) != 1:
            return  # a ref outside a call, or while several are open, names nothing
        [step] = self.open.values()
        if step.id is None:
            step.id, step.name, step.ref_type = named

    def trajectory(self, requested: bool) -> Trajectory | None:
        for step in self.steps:
            if step.kind == "flow" and step.name is None and step.id in self.flow_names:
                step.name = self.flow_names[step.id]
        if not self.steps and not requested:
            return None
        return Trajectory(requested=requested, steps=self.steps)


def trajectory_of(traces: Sequence[BaseTrace], *, requested: bool) -> Trajectory | None:
    """The turn's trajectory from its traces; None when there is none to tell."""
    reader = _Reader()
    for trace in traces:
        reader.take(trace)
    return reader.trajectory(requested)


def merge(first: Trajectory | None, second: Trajectory | None) -> Trajectory | None:
    """One trajectory of two answers in a row (a turn and a mocked action's reply)."""
    if first is None or second is None:
        return first or second
    return Trajectory(
        requested=first.requested and second.requested, steps=[*first.steps, *second.steps]
    )


# -- checking -----------------------------------------------------------------------------------


def _matches(kind: StepKind, name: str, step: TrajectoryStep) -> bool:
    if step.kind != kind:
        return False
    if step.id == name:
        return True
    return kind != "block" and step.name is not None and step.name.casefold() == name.casefold()


def _shown(step: TrajectoryStep) -> str:
    if step.kind == "tool":
        label = step.name or step.id or f"unnamed call {step.call_id or '?'}"
        return f"tool {label}"
    if step.kind == "flow" and step.name and step.name != step.id:
        return f"flow {step.name} ({step.id})"
    return f"{step.kind} {step.id}"


@dataclass
class _View:
    """The trajectory of the turns a check reads, and what cannot be known from it."""

    steps: list[TrajectoryStep]
    blind_turns: list[int]
    """Turns with no flow or block traces to read (not asked for, or not sent)."""

    def unnamed(self) -> list[TrajectoryStep]:
        return [s for s in self.steps if s.kind == "tool" and s.id is None]

    def ran(self, kind: StepKind | None = None) -> str:
        shown = [_shown(s) for s in self.steps if kind is None or s.kind == kind]
        if not shown:
            return f"no {kind or 'flow, block or tool'} ran"
        more = len(shown) - _EVIDENCE_STEPS
        return (
            "ran: " + ", ".join(shown[:_EVIDENCE_STEPS]) + (f" and {more} more" if more > 0 else "")
        )

    def unknown(self, kind: StepKind) -> float:
        """How many more matches there could be that the traces do not show."""
        if kind == "tool":
            return len(self.unnamed())
        return math.inf if self.blind_turns else 0

    def why_unknown(self, kind: StepKind) -> str:
        if kind == "tool":
            calls = ", ".join(s.call_id or "?" for s in self.unnamed())
            return (
                f"the runtime did not name {len(self.unnamed())} tool call(s) (callID {calls}): "
                "no trace with a tool ref came while the call was open"
            )
        turns = ", ".join(map(str, self.blind_turns))
        return (
            f"turn {turns} came back without flow or block traces (the runtime drops them "
            "unless config.excludeTypes asks for them), so which flows and blocks ran is unknown"
        )


def _view(turns: Sequence[TranscriptTurn]) -> _View:
    steps: list[TrajectoryStep] = []
    blind: list[int] = []
    for turn in turns:
        if turn.status is None:
            continue  # the turn did not run
        trajectory = turn.trajectory
        if trajectory is not None:
            steps.extend(trajectory.steps)
        seen = trajectory is not None and any(s.kind != "tool" for s in trajectory.steps)
        if not seen:
            blind.append(turn.index)
    return _View(steps, blind)


def _result(check: TrajectoryCheck, outcome: CheckOutcome, evidence: str) -> CheckResult:
    expected: Any = check.model_dump(mode="json", exclude={"id", "type"}, exclude_defaults=True)
    return CheckResult(
        id=check.id,
        kind=check.type,
        label=describe_check(check),
        expected=expected,
        outcome=outcome,
        evidence=evidence,
    )


def _step_outcome(check: StepCheck, found: int, unknown: float) -> CheckOutcome | None:
    """passed / failed, or None when the unknown steps could change the answer."""
    if check.never:
        return "failed" if found else (None if unknown else "passed")
    if check.times is None:
        return "passed" if found else (None if unknown else "failed")
    if found > check.times or found + unknown < check.times:
        return "failed"
    return "passed" if found == check.times and not unknown else None


def evaluate(check: TrajectoryCheck, turns: Sequence[TranscriptTurn]) -> CheckResult:
    """A trajectory check over these turns (one turn, or the whole conversation).

    When steps the traces do not show could change the answer (an unnamed tool call; a turn with
    no flow or block traces), the outcome is `error` with the reason: not a silent pass or fail.
    """
    view = _view(turns)
    if isinstance(check, InOrderCheck):
        return _in_order(check, view)
    found = sum(1 for s in view.steps if _matches(check.type, check.name, s))
    outcome = _step_outcome(check, found, view.unknown(check.type))
    counted = f"{check.type} {check.name!r} ran {found} time{'s' if found != 1 else ''}; "
    if outcome is None:
        return _result(check, "error", counted + view.why_unknown(check.type))
    return _result(check, outcome, counted + view.ran(check.type))


def _in_order(check: InOrderCheck, view: _View) -> CheckResult:
    at = 0
    for number, wanted in enumerate(check.steps):
        hit = next(
            (i for i in range(at, len(view.steps)) if _ref_matches(wanted, view.steps[i])), None
        )
        if hit is None:
            unknown = any(view.unknown(s.kind) for s in check.steps[number:])
            after = f" after {check.steps[number - 1].describe()}" if number else ""
            missing = f"no {wanted.describe()}{after}; "
            if unknown:
                kinds = dict.fromkeys(s.kind for s in check.steps[number:] if view.unknown(s.kind))
                why = "; ".join(view.why_unknown(k) for k in kinds)
                return _result(check, "error", missing + why)
            return _result(check, "failed", missing + view.ran())
        at = hit + 1
    return _result(check, "passed", view.ran())


def _ref_matches(wanted: StepRef, step: TrajectoryStep) -> bool:
    return _matches(wanted.kind, wanted.name, step)
