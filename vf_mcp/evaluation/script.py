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

Checks are written `{<type>: <value>, ...options}` (shorthand) or `{type: <type>, ...}` (the
models are in `checkmodels`). Unknown keys are errors in this dialect, so a typo never silently
disables a check; imported voiceflow-cli files are tolerant instead (see `voiceflow_cli`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, JsonValue, SecretStr, field_validator, model_validator

from vf_mcp.domain.transcript import UserAction, UserActionKind
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.checkmodels import (
    AlwaysCheck,
    BlockCheck,
    Check,
    ChoiceCheck,
    ContainsCheck,
    ConversationCheck,
    EqualsCheck,
    EventuallyCheck,
    FlowCheck,
    GroundedCheck,
    InOrderCheck,
    JudgeCheck,
    LatencyCheck,
    NeverCheck,
    NotContainsCheck,
    RegexCheck,
    SimilarityConfig,
    StatusCheck,
    SuiteModel,
    ToolCheck,
    TraceCheck,
    VariableCheck,
    VariableConfig,
    VoiceflowCliCheck,
    describe_check,
    expand_check,
)

__all__ = [
    "AlwaysCheck",
    "BlockCheck",
    "Check",
    "ChoiceCheck",
    "ContainsCheck",
    "ConversationCheck",
    "EqualsCheck",
    "EventuallyCheck",
    "FlowCheck",
    "GroundedCheck",
    "ImportedFrom",
    "InOrderCheck",
    "JudgeCheck",
    "LatencyCheck",
    "NeverCheck",
    "NotContainsCheck",
    "RegexCheck",
    "ScriptTest",
    "SimilarityConfig",
    "Simulation",
    "StartState",
    "StatusCheck",
    "Suite",
    "ToolCheck",
    "TraceCheck",
    "TurnStep",
    "VariableCheck",
    "VariableConfig",
    "VoiceflowCliCheck",
    "VoiceflowTester",
    "describe_check",
    "expand_check",
    "resolve_under",
]

OnFailure = Literal["stop", "continue"]
Dialect = Literal["vf-mcp", "voiceflow-cli"]
MAX_REPEAT = 100
"""The most trials of one test a run will make (`repeat`, `--repeat`)."""


class TurnStep(SuiteModel):
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


class VoiceflowTester(SuiteModel):
    """Another Voiceflow agent plays the user (voiceflow-cli's `voiceflowAgentTesterConfig`)."""

    environment: str | None = None
    api_key: SecretStr | None = Field(default=None, description="The tester agent's VF.DM. key")
    variables: dict[str, JsonValue] = Field(default_factory=dict)


class Simulation(SuiteModel):
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


class ActionMock(SuiteModel):
    """How the host answers a custom action the agent waits on: `on_action`.

    `{name: checkout, reply: {type: done}, variables: {paid: true}}` sends `{type: done}` (with
    the variables merged in the same request) whenever the agent asks for `checkout`.
    """

    name: str = Field(min_length=1, description="The custom action's name (its trace type)")
    reply: dict[str, JsonValue] = Field(
        description="The result action sent back, e.g. {type: done}: one of the action's paths"
    )
    variables: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("reply")
    @classmethod
    def _typed(cls, reply: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if not isinstance(reply.get("type"), str) or not reply["type"]:
            raise ValueError("`reply` needs a string `type`, e.g. {type: done}")
        return reply


_TURN_ONLY = frozenset(
    {"contains", "not_contains", "equals", "regex", "trace", "choice", "status", "variable",
     "grounded", "voiceflow-cli"}
)  # fmt: skip


class StartState(SuiteModel):
    """Where a test starts when not at the beginning: a saved runtime state, put in place with
    `replace_state` for the test's user before its first turn (`from_state`).

    `from_state: saved.json` (a file) is short for `{file: saved.json}`; a recorded turn is
    `{recording: recordings/Suite/test.json, turn: 2}`. Paths are relative to the suite's file.
    """

    file: str | None = Field(
        default=None,
        description="A JSON file with a Voiceflow state ({stack, storage, variables}) or the "
        "get_state tool's result ({state: {...}})",
    )
    recording: str | None = Field(
        default=None, description="One test's file of a --record folder: DIR/<suite>/<test>.json"
    )
    turn: int | None = Field(
        default=None, ge=1, description="The recorded turn whose state the test starts from"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"file": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> StartState:
        if (self.file is None) == (self.recording is None):
            raise ValueError(
                "from_state needs either `file` or `recording` (with `turn`), e.g. "
                "{recording: recordings/Suite/test.json, turn: 2}"
            )
        if (self.recording is None) != (self.turn is None):
            raise ValueError("from_state takes `turn` with `recording`, and only with it")
        return self

    @property
    def path(self) -> str:
        return self.file or self.recording or ""

    def describe(self) -> str:
        if self.recording is not None:
            return f"turn {self.turn} of the recording {self.recording}"
        return f"the state file {self.file}"


def _conversation_check(item: Any) -> Any:
    """A check of a test's own `expect`, refusing one that reads a single turn."""
    expanded = expand_check(item)
    kind = expanded.get("type") if isinstance(expanded, dict) else None
    if kind in _TURN_ONLY:
        wrap = "" if kind in ("grounded", "voiceflow-cli") else (
            f", or wrap it, e.g. {{eventually: {{{kind}: ...}}}}"
        )  # fmt: skip
        raise ValueError(
            f"a test's own expect checks the whole conversation, and {kind} reads one turn: put "
            f"it under a turn's expect{wrap}"
        )
    return expanded


def _mock_list(value: Any) -> Any:
    # `on_action: {name: ...}` is one mock; a list holds several.
    return [value] if isinstance(value, dict) else value


class ImportedFrom(SuiteModel):
    """The Voiceflow transcript a test was imported from (`vf-mcp eval import`)."""

    transcript_id: str = Field(min_length=1)
    project_id: str = Field(min_length=1)


class ScriptTest(SuiteModel):
    id: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    environment: str | None = None
    variables: dict[str, JsonValue] = Field(
        default_factory=dict, description="Merged into the first turn's request"
    )
    turns: list[TurnStep] = Field(default_factory=list)
    simulate: Simulation | None = None
    expect: list[ConversationCheck] = Field(
        default_factory=list,
        description="Checks of the whole conversation: judged criteria, the trajectory, and "
        "always / never / eventually assertions",
    )
    on_action: list[ActionMock] = Field(
        default_factory=list, description="Mocks for this test, before the suite's"
    )
    repeat: int | None = Field(
        default=None, ge=1, le=MAX_REPEAT, description="Run the test this many times (trials)"
    )
    max_judge_tokens: int | None = Field(
        default=None,
        ge=1,
        description="The most tokens (input and output, as the judge reports them) each trial "
        "of the test may spend on the judge; the suite's applies when unset",
    )
    imported_from: ImportedFrom | None = Field(
        default=None, description="Where `--write-back` sets this test's verdicts"
    )
    from_state: StartState | None = Field(
        default=None,
        description="Start mid-conversation: the saved state put in place before the first turn",
    )

    @field_validator("on_action", mode="before")
    @classmethod
    def _mocks(cls, value: Any) -> Any:
        return _mock_list(value)

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data and isinstance(data.get("name"), str):
            data = {**data, "id": _slug(data["name"])}
        if isinstance(data, dict) and isinstance(data.get("expect"), list):
            data = {**data, "expect": [_conversation_check(v) for v in data["expect"]]}
        return data

    @model_validator(mode="after")
    def _turns_or_simulation(self) -> ScriptTest:
        if bool(self.turns) == (self.simulate is not None):
            raise ValueError(f"test {self.id!r} needs either `turns` or `simulate` (not both)")
        if self.from_state is not None and self.simulate is not None:
            raise ValueError(
                f"test {self.id!r}: from_state starts scripted turns; a simulated user starts "
                "from a launch, so give the test `turns` instead"
            )
        return self

    @property
    def title(self) -> str:
        return self.name or self.id

    def all_checks(self) -> list[Check | ConversationCheck]:
        """Every check the test states, its turns' and its own, assertions unwrapped."""
        found: list[Check | ConversationCheck] = [c for t in self.turns for c in t.expect]
        for check in self.expect:
            found.append(check)
            if isinstance(check, AlwaysCheck | NeverCheck | EventuallyCheck):
                found.append(check.check)
        return found


class Suite(SuiteModel):
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
    on_action: list[ActionMock] = Field(
        default_factory=list,
        description="How the host answers custom actions, by name, in every test",
    )
    latency_ms: LatencyCheck | None = Field(
        default=None,
        description="Limits (`max`, `p95`) over every turn of every test and trial of the suite",
    )
    max_judge_tokens: int | None = Field(
        default=None,
        ge=1,
        description="The most judge tokens each test (each trial) may spend, unless it sets one",
    )
    # Set by the loaders rather than by hand.
    dialect: Dialect = "vf-mcp"
    streaming: bool | None = Field(
        default=None, description="None: as configured; False forces the plain interact endpoint"
    )
    user_id_prefix: str = "vf-eval-"
    source: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @field_validator("on_action", mode="before")
    @classmethod
    def _mocks(cls, value: Any) -> Any:
        return _mock_list(value)

    @field_validator("latency_ms", mode="before")
    @classmethod
    def _latency(cls, value: Any) -> Any:
        return expand_check({"latency_ms": value}) if value is not None else value

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for test in self.tests:
            if test.id in seen:
                raise ValueError(f"two tests have the id {test.id!r}")
            seen.add(test.id)
            if test.repeat is not None and not self.new_user_per_test:
                raise ValueError(
                    f"test {test.id!r} has `repeat`, but the suite's tests share one user "
                    "(new_user_per_test: false): repeat the whole suite with --repeat instead"
                )
        return self

    @property
    def needs_trajectory(self) -> bool:
        """Whether a check reads flows, blocks or tools: then turns ask for every trace."""
        kinds = (FlowCheck, BlockCheck, ToolCheck, InOrderCheck)
        return any(isinstance(c, kinds) for t in self.tests for c in t.all_checks())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_") or "test"


def resolve_under(root: Path, name: str) -> Path:
    """`name` inside `root`, refusing anything that leaves it (.., absolute paths, symlinks out)."""
    base = root.resolve()
    candidate = (base / name).resolve()
    if candidate != base and base not in candidate.parents:
        raise ScriptError(f"{name!r} is outside the tests directory")
    return candidate
