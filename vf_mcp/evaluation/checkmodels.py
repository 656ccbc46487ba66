"""The checks a suite can expect, as written in YAML or JSON (the models; `checks`,
`trajectory`, `assertions` and `grounding` evaluate them).

Checks are written `{<type>: <value>, ...options}` (shorthand) or `{type: <type>, ...}`:
- per turn: text (`contains`, `not_contains`, `equals`, `regex`), `trace`, `choice`, `status`,
  `variable`, `latency_ms`, `judge`, the trajectory (`flow`, `block`, `tool`, `in_order`) and
  `grounded`;
- over the whole conversation (a test's `expect`): `judge`, `latency_ms`, the trajectory checks,
  and the deterministic assertions `always`, `never` and `eventually` around a per-turn check.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from vf_mcp.domain.turn import TurnStatus


class SuiteModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Check(SuiteModel):
    id: str | None = None
    proposed: bool = Field(
        default=False,
        description="Proposed by a tool (`vf-mcp eval import`), not yet reviewed by a person; "
        "it is checked like any other",
    )


class ContainsCheck(_Check):
    """The agent's text in the turn contains `value`."""

    type: Literal["contains"] = "contains"
    value: str
    ignore_case: bool = False


class NotContainsCheck(_Check):
    type: Literal["not_contains"] = "not_contains"
    value: str
    ignore_case: bool = False


class EqualsCheck(_Check):
    """The agent's whole text in the turn (messages joined by newlines) equals `value`."""

    type: Literal["equals"] = "equals"
    value: str
    ignore_case: bool = False


class RegexCheck(_Check):
    """Python `re.search` over the agent's text in the turn."""

    type: Literal["regex"] = "regex"
    pattern: str
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
        return pattern


class TraceCheck(_Check):
    """A raw trace of this type is among the turn's traces (e.g. `choice`, `end`, `visual`)."""

    type: Literal["trace"] = "trace"
    trace_type: str


class ChoiceCheck(_Check):
    """A button with this label is offered (case and spacing ignored)."""

    type: Literal["choice"] = "choice"
    label: str


class StatusCheck(_Check):
    type: Literal["status"] = "status"
    status: TurnStatus


class VariableCheck(_Check):
    """A JSONPath into the agent's variables after the turn, e.g. `$.order.items[0].sku`."""

    type: Literal["variable"] = "variable"
    path: str
    equals: JsonValue = None
    exists: bool | None = None

    @field_validator("path")
    @classmethod
    def _parses(cls, path: str) -> str:
        path = path if path.startswith("$") else f"$.{path}"
        try:
            parse_jsonpath(path)
        except (JsonPathParserError, Exception) as exc:
            raise ValueError(f"JSONPath {path!r} does not parse: {exc}") from None
        return path

    @model_validator(mode="after")
    def _one_expectation(self) -> VariableCheck:
        if "equals" not in self.model_fields_set and self.exists is None:
            raise ValueError(f"variable check {self.path!r} needs `equals` or `exists`")
        return self

    @property
    def wants_value(self) -> bool:
        return "equals" in self.model_fields_set


class JudgeCheck(_Check):
    """A criterion in plain words, graded by the judge model over the conversation so far."""

    type: Literal["judge"] = "judge"
    criterion: str = Field(min_length=1)
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="Also require the judge's score to reach this"
    )
    reference: bool | None = Field(
        default=None,
        description="Another grader's verdict on this criterion (Voiceflow's evaluator, when "
        "imported): the run reports how often the judge agrees",
    )


class SimilarityConfig(BaseModel):
    """voiceflow-cli's `similarityConfig`, kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    provider: str = ""
    model: str = ""
    temperature: float | None = None
    similarity_threshold: float = Field(default=0.0, alias="similarityThreshold")
    top_k: int | None = None
    top_p: float | None = None


class VariableConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: str = ""
    json_path: str = Field(default="", alias="jsonPath")


class VoiceflowCliCheck(_Check):
    """An imported voiceflow-cli validation, evaluated with voiceflow-cli's own rules."""

    type: Literal["voiceflow-cli"] = "voiceflow-cli"
    validation: str = Field(description="contains, equals, exact_match, regexp, traceType, ...")
    value: str = ""
    values: list[str] = Field(default_factory=list)
    similarity: SimilarityConfig | None = None
    variable: VariableConfig | None = None


class LatencyCheck(_Check):
    """How long the agent took to answer, in milliseconds, as the turn's record says (under
    `--replay`, as recorded). On a turn: that turn; in a test's `expect`: every turn of the
    conversation; as a suite's `latency_ms`: every turn of every test and trial of the suite."""

    type: Literal["latency_ms"] = "latency_ms"
    max: float | None = Field(default=None, gt=0, description="No turn took longer")
    p95: float | None = Field(
        default=None,
        gt=0,
        description="95% of the turns took no longer (nearest rank: the ceil(0.95 n)-th fastest)",
    )

    @model_validator(mode="after")
    def _a_limit(self) -> LatencyCheck:
        if self.max is None and self.p95 is None:
            raise ValueError("latency_ms needs `max` or `p95` (milliseconds), e.g. {max: 500}")
        return self


# -- trajectory -----------------------------------------------------------------------------

StepKind = Literal["flow", "block", "tool"]


class _StepCheck(_Check):
    """A flow, block or tool the turn (or the conversation) ran, by id or name."""

    type: StepKind
    name: str = Field(min_length=1)
    times: int | None = Field(default=None, ge=0, description="Exactly this many times")
    never: bool = Field(default=False, description="It must not run at all")

    @model_validator(mode="after")
    def _one_count(self) -> _StepCheck:
        if self.never and self.times is not None:
            raise ValueError(f"{self.type} {self.name!r}: give `times` or `never`, not both")
        return self


class FlowCheck(_StepCheck):
    """A flow the turn entered or returned to: its diagramID, or its name when the runtime
    names it."""

    type: Literal["flow"] = "flow"


class BlockCheck(_StepCheck):
    """A block (node) the turn passed, by its blockID."""

    type: Literal["block"] = "block"


class ToolCheck(_StepCheck):
    """A tool call (`tool-call` start and end), by the id or name of the ref that names it."""

    type: Literal["tool"] = "tool"


class StepRef(SuiteModel):
    """One step of an `in_order` list: `{flow: X}`, `{block: X}` or `{tool: X}`."""

    kind: StepKind
    name: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict) and "kind" not in value:
            given = [k for k in ("flow", "block", "tool") if k in value]
            if len(given) != 1 or len(value) != 1:
                raise ValueError(
                    f"an in_order step is one of {{flow: X}}, {{block: X}}, {{tool: X}}; "
                    f"got {sorted(value)!r}"
                )
            return {"kind": given[0], "name": value[given[0]]}
        return value

    def describe(self) -> str:
        return f"{self.kind} {self.name!r}"


class InOrderCheck(_Check):
    """These flows, blocks and tools ran in this order (others may come in between)."""

    type: Literal["in_order"] = "in_order"
    steps: list[StepRef] = Field(min_length=1)


# -- grounding ------------------------------------------------------------------------------


class GroundedCheck(_Check):
    """The judge finds the turn's answer supported by the knowledge-base chunks it retrieved."""

    type: Literal["grounded"] = "grounded"
    grounded: Literal[True] = True
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="Also require the judge's score to reach this"
    )


TrajectoryCheck = FlowCheck | BlockCheck | ToolCheck | InOrderCheck

# Checks of the agent's reply in one turn, decided without a judge.
TextCheck = (
    ContainsCheck
    | NotContainsCheck
    | EqualsCheck
    | RegexCheck
    | TraceCheck
    | ChoiceCheck
    | StatusCheck
    | VariableCheck
    | LatencyCheck
)

Check = Annotated[
    TextCheck | JudgeCheck | VoiceflowCliCheck | TrajectoryCheck | GroundedCheck,
    Field(discriminator="type"),
]
"""A check of one turn."""

TurnPredicate = Annotated[
    TextCheck | FlowCheck | BlockCheck | ToolCheck,
    Field(discriminator="type"),
]
"""What an assertion holds each turn to: any deterministic check of one turn."""


class _Assertion(_Check):
    check: TurnPredicate

    @field_validator("check", mode="before")
    @classmethod
    def _inner(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(
                "always, never and eventually wrap a turn check, e.g. {never: {status: error}}; "
                "for a flow, block or tool that must not run write {tool: X, never: true}"
            )
        expanded = expand_check(value)
        if expanded.get("type") in ("judge", "grounded", "in_order", "voiceflow-cli"):
            raise ValueError(
                f"always, never and eventually take a deterministic check of one turn, not "
                f"{expanded['type']}"
            )
        return expanded


class AlwaysCheck(_Assertion):
    """Every turn that ran meets `check`."""

    type: Literal["always"] = "always"


class NeverCheck(_Assertion):
    """No turn meets `check`."""

    type: Literal["never"] = "never"


class EventuallyCheck(_Assertion):
    """Some turn meets `check`."""

    type: Literal["eventually"] = "eventually"


Assertion = AlwaysCheck | NeverCheck | EventuallyCheck

ConversationCheck = Annotated[
    JudgeCheck
    | LatencyCheck
    | FlowCheck
    | BlockCheck
    | ToolCheck
    | InOrderCheck
    | AlwaysCheck
    | NeverCheck
    | EventuallyCheck,
    Field(discriminator="type"),
]
"""A check of a whole conversation (a test's own `expect`)."""

# Shorthand key -> (check type, field the value goes to). Order matters: the first key found
# wins, so `variable` comes before `equals` ({variable: $.x, equals: 1} is a variable check) and
# the steps before `never` ({tool: x, never: true} is a tool check).
_SHORTHAND: dict[str, tuple[str, str]] = {
    "variable": ("variable", "path"),
    "contains": ("contains", "value"),
    "not_contains": ("not_contains", "value"),
    "equals": ("equals", "value"),
    "regex": ("regex", "pattern"),
    "trace": ("trace", "trace_type"),
    "choice": ("choice", "label"),
    "status": ("status", "status"),
    "judge": ("judge", "criterion"),
    "flow": ("flow", "name"),
    "block": ("block", "name"),
    "tool": ("tool", "name"),
    "in_order": ("in_order", "steps"),
    "grounded": ("grounded", "grounded"),
    "always": ("always", "check"),
    "never": ("never", "check"),
    "eventually": ("eventually", "check"),
    "latency_ms": ("latency_ms", "max"),
}


def expand_check(item: Any) -> Any:
    """Turn `{contains: "x"}` into `{type: contains, value: "x"}`; refuse an unknown check."""
    if not isinstance(item, dict) or "type" in item:
        return item
    for key, (kind, field) in _SHORTHAND.items():
        if key in item:
            rest = {k: v for k, v in item.items() if k != key}
            value = item[key]
            if kind in ("variable", "latency_ms") and isinstance(value, dict):
                return {"type": kind, **value, **rest}
            return {"type": kind, field: value, **rest}
    # Without this, pydantic's answer is "Unable to extract tag using discriminator 'type'".
    raise ValueError(
        f"unknown check {sorted(item)!r}: use one of {', '.join(_SHORTHAND)} "
        "(see examples/evals/README.md)"
    )


def _count(check: _StepCheck) -> str:
    if check.never:
        return " never runs"
    if check.times is not None:
        return f" runs exactly {check.times} time{'s' if check.times != 1 else ''}"
    return " runs"


def describe_check(check: Check | ConversationCheck) -> str:
    """The expectation in words, for reports and progress lines."""
    case = " (any case)" if getattr(check, "ignore_case", False) else ""
    match check:
        case ContainsCheck():
            return f"text contains {check.value!r}{case}"
        case NotContainsCheck():
            return f"text does not contain {check.value!r}{case}"
        case EqualsCheck():
            return f"text equals {check.value!r}{case}"
        case RegexCheck():
            return f"text matches /{check.pattern}/{case}"
        case TraceCheck():
            return f"a {check.trace_type!r} trace is present"
        case ChoiceCheck():
            return f"button {check.label!r} is offered"
        case StatusCheck():
            return f"status is {check.status}"
        case VariableCheck():
            if check.wants_value:
                return f"variable {check.path} equals {check.equals!r}"
            return f"variable {check.path} {'exists' if check.exists else 'is absent'}"
        case JudgeCheck():
            return f"judge: {check.criterion}"
        case VoiceflowCliCheck():
            shown = check.value or ", ".join(check.values)
            if check.variable is not None:
                where = check.variable.name + (check.variable.json_path or "")
                return f"voiceflow-cli variable {where} == {check.value!r}"
            return f"voiceflow-cli {check.validation} {shown!r}"
        case FlowCheck() | BlockCheck() | ToolCheck():
            return f"{check.type} {check.name!r}{_count(check)}"
        case InOrderCheck():
            return "in order: " + " → ".join(s.describe() for s in check.steps)
        case GroundedCheck():
            return "the answer is grounded in the retrieved knowledge"
        case LatencyCheck():
            limits = [f"max {check.max:g} ms" if check.max is not None else "",
                      f"p95 {check.p95:g} ms" if check.p95 is not None else ""]  # fmt: skip
            return "latency " + ", ".join(limit for limit in limits if limit)
        case AlwaysCheck():
            return f"always: {describe_check(check.check)}"
        case NeverCheck():
            return f"never: {describe_check(check.check)}"
        case EventuallyCheck():
            return f"eventually: {describe_check(check.check)}"
    raise AssertionError(f"unknown check {check!r}")  # pragma: no cover
