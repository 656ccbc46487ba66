"""Conversation scripts: suites of multi-turn tests, as written in YAML or JSON.

A suite file (the native "vf-mcp" dialect) looks like::

    name: Order support
    on_failure: continue            # or stop: stop at the first failure
    variables: {customer: Alex}      # merged into each test's first turn
    tests:
      - id: track_1001
        turns:
          - launch: true
            expect:
              - contains: order assistant
              - choice: Track an order
          - choice: Track an order
          - message: "1001"
            expect:
              - regex: 'shipped|on its way'
              - variable: $.order_status
                equals: shipped
              - judge: The agent says when the order arrives
      - id: wants_refund
        simulate: {persona: A hurried customer, goal: Learn the returns policy, max_turns: 4}

Checks are written `{<type>: <value>, ...options}` (shorthand) or `{type: <type>, ...}`. Unknown
keys are errors in this dialect, so a typo never silently disables a check; imported
voiceflow-cli files are tolerant instead (see `voiceflow_cli`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)

from vf_mcp.errors import ScriptError
from vf_mcp.transcripts.models import TurnStatus, UserAction, UserActionKind

OnFailure = Literal["stop", "continue"]
Dialect = Literal["vf-mcp", "voiceflow-cli"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Check(_Model):
    id: str | None = None


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


Check = Annotated[
    ContainsCheck
    | NotContainsCheck
    | EqualsCheck
    | RegexCheck
    | TraceCheck
    | ChoiceCheck
    | StatusCheck
    | VariableCheck
    | JudgeCheck
    | VoiceflowCliCheck,
    Field(discriminator="type"),
]

# Shorthand key -> (check type, field the value goes to).
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
}


def expand_check(item: Any) -> Any:
    """Turn `{contains: "x"}` into `{type: contains, value: "x"}`; refuse an unknown check."""
    if not isinstance(item, dict) or "type" in item:
        return item
    # `variable` first: `{variable: $.x, equals: 1}` is a variable check, not a text check.
    for key, (kind, field) in _SHORTHAND.items():
        if key in item:
            rest = {k: v for k, v in item.items() if k != key}
            value = item[key]
            if kind == "variable" and isinstance(value, dict):
                return {"type": kind, **value, **rest}
            return {"type": kind, field: value, **rest}
    # Without this, pydantic's answer is "Unable to extract tag using discriminator 'type'".
    raise ValueError(
        f"unknown check {sorted(item)!r}: use one of {', '.join(_SHORTHAND)} "
        "(see examples/evals/README.md)"
    )


def describe_check(check: Check) -> str:
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
    raise AssertionError(f"unknown check {check!r}")  # pragma: no cover


class TurnStep(_Model):
    """One user turn: exactly one input, optional variables, and what to expect."""

    id: str | None = None
    launch: bool = False
    message: str | None = None
    choice: str | int | None = Field(
        default=None, description="A button of the previous turn: label (any case) or number"
    )
    button: str | None = Field(
        default=None,
        description="voiceflow-cli semantics: the exact `request.payload.label` of a button in "
        "the most recent choice trace of this test",
    )
    event: str | None = None
    action: dict[str, JsonValue] | None = Field(
        default=None, description="A raw Voiceflow action sent verbatim"
    )
    variables: dict[str, JsonValue] = Field(default_factory=dict)
    expect: list[Check] = Field(default_factory=list)

    @field_validator("expect", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return [expand_check(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _one_input(self) -> TurnStep:
        given = [
            name
            for name in ("message", "choice", "button", "event", "action")
            if getattr(self, name) is not None
        ] + (["launch"] if self.launch else [])
        if len(given) != 1:
            which = " and ".join(given) or "none"
            raise ValueError(
                "a turn needs exactly one of launch, message, choice, button, event, action "
                f"(got {which})"
            )
        if self.action is not None and not isinstance(self.action.get("type"), str):
            raise ValueError("`action` needs a string `type`, e.g. {type: done}")
        return self

    def user_action(self, variables: dict[str, JsonValue] | None) -> UserAction:
        """How this turn reads in a transcript (the button's request is filled in by the runner)."""
        vars_ = variables or None
        if self.launch:
            return UserAction(kind="launch", variables=vars_)
        if self.message is not None:
            return UserAction(kind="message", text=self.message, variables=vars_)
        if self.choice is not None:
            return UserAction(kind="choice", choice=self.choice, variables=vars_)
        if self.button is not None:
            return UserAction(kind="button", text=self.button, variables=vars_)
        if self.event is not None:
            return UserAction(kind="event", text=self.event, variables=vars_)
        assert self.action is not None
        kind: UserActionKind = "intent" if self.action.get("type") == "intent" else "action"
        return UserAction(kind=kind, action=dict(self.action), variables=vars_)


class VoiceflowTester(_Model):
    """Another Voiceflow agent plays the user (voiceflow-cli's `voiceflowAgentTesterConfig`)."""

    environment: str | None = None
    api_key: SecretStr | None = Field(default=None, description="The tester agent's VF.DM. key")
    variables: dict[str, JsonValue] = Field(default_factory=dict)


class Simulation(_Model):
    """A user played by a model (or another agent) instead of fixed turns."""

    persona: str = ""
    goal: str = Field(min_length=1)
    max_turns: int = Field(default=10, ge=0, le=100)
    user_information: dict[str, str] = Field(
        default_factory=dict, description="Facts the simulated user may give when asked"
    )
    launch: bool = Field(default=True, description="Start with a launch turn")
    launch_variables: dict[str, JsonValue] = Field(default_factory=dict)
    goal_check: Literal["at_end", "every_turn"] = Field(
        default="at_end",
        description="every_turn asks the judge after each agent answer and stops when met "
        "(voiceflow-cli's loop); at_end lets the simulated user say when it is done",
    )
    tester: VoiceflowTester | None = None


class ScriptTest(_Model):
    id: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    environment: str | None = None
    variables: dict[str, JsonValue] = Field(
        default_factory=dict, description="Merged into the first turn's request"
    )
    turns: list[TurnStep] = Field(default_factory=list)
    simulate: Simulation | None = None
    expect: list[JudgeCheck] = Field(
        default_factory=list, description="Criteria judged over the whole conversation"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data and isinstance(data.get("name"), str):
            data = {**data, "id": _slug(data["name"])}
        if isinstance(data, dict) and isinstance(data.get("expect"), list):
            data = {**data, "expect": [expand_check(v) for v in data["expect"]]}
        return data

    @model_validator(mode="after")
    def _turns_or_simulation(self) -> ScriptTest:
        if bool(self.turns) == (self.simulate is not None):
            raise ValueError(f"test {self.id!r} needs either `turns` or `simulate` (not both)")
        return self

    @property
    def title(self) -> str:
        return self.name or self.id


class Suite(_Model):
    version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str | None = None
    environment: str | None = Field(
        default=None, description="Agent environment for every request (default: the server's)"
    )
    variables: dict[str, JsonValue] = Field(
        default_factory=dict, description="Set before each test, with its first turn"
    )
    new_user_per_test: bool = Field(
        default=True, description="Each test gets a fresh user id; false shares one, in order"
    )
    on_failure: OnFailure = Field(
        default="continue", description="stop: nothing runs after the first failure"
    )
    tests: list[ScriptTest] = Field(min_length=1)
    # Set by the loaders rather than by hand.
    dialect: Dialect = "vf-mcp"
    streaming: bool | None = Field(
        default=None, description="None: as configured; False forces the plain interact endpoint"
    )
    user_id_prefix: str = "vf-eval-"
    source: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for test in self.tests:
            if test.id in seen:
                raise ValueError(f"two tests have the id {test.id!r}")
            seen.add(test.id)
        return self


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_") or "test"


def resolve_under(root: Path, name: str) -> Path:
    """`name` inside `root`, refusing anything that leaves it (.., absolute paths, symlinks out)."""
    base = root.resolve()
    candidate = (base / name).resolve()
    if candidate != base and base not in candidate.parents:
        raise ScriptError(f"{name!r} is outside the tests directory")
    return candidate
