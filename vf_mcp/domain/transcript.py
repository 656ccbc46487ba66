"""The canonical transcript: one record per test; every report, export and prompt is made from it.

Versioned on its own (`SCHEMA_VERSION`, shipped as `vf_mcp/transcripts/schemas/transcript-v2.json`):
a transcript written today must validate against that schema tomorrow. The agent's side of a turn
is the turn model itself (`vf_mcp.domain.turn`: messages, choices, custom actions, variable
changes), so a field added to a message reaches transcripts with no converter to keep in step.

Read old, write new: a v1 transcript (schema `vf-mcp/transcript/v1`, whose messages kept only a
`url` where v2 keeps the whole `media`) is upgraded as it is read (`upgrade_v1_reply`), wherever
it is read from: a `--compare` baseline, a stored run, a transcript kept in Redis.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from vf_mcp.domain.turn import AgentMessage, Choice, CustomAction, TurnStatus, VariableChange

SCHEMA_VERSION: Final = "vf-mcp/transcript/v2"
SCHEMA_VERSION_V1: Final = "vf-mcp/transcript/v1"
READABLE_SCHEMA_VERSIONS: Final = (SCHEMA_VERSION_V1, SCHEMA_VERSION)
"""The versions a run report may name to be read: v1 is upgraded as it is read."""

CheckOutcome = Literal["passed", "failed", "to_grade", "error", "not_run"]
TestOutcome = Literal["passed", "failed", "error", "to_grade", "skipped"]
StopReason = Literal[
    "goal_met", "agent_ended", "turn_limit", "tester_silent", "error", "unanswered_action"
]
UserActionKind = Literal["launch", "message", "choice", "button", "event", "intent", "action"]


class _Record(BaseModel):
    # Transcripts are data written by us and read back by other tools: unknown keys are an error.
    # Built on first use: a stdio start imports these with the stores, and its first tools/list
    # needs none of them (a third of the start's own import time when built at import).
    model_config = ConfigDict(extra="forbid", defer_build=True)


class UserAction(_Record):
    """What the user side sent in one turn."""

    kind: UserActionKind
    text: str | None = Field(
        default=None,
        description="The message typed, the label of the button pressed, or the event name",
    )
    choice: str | int | None = Field(
        default=None, description="The choice as the script gave it (label or 1-based number)"
    )
    action: dict[str, JsonValue] | None = Field(
        default=None, description="The raw Voiceflow action, for button, intent and action turns"
    )
    variables: dict[str, JsonValue] | None = Field(
        default=None, description="Variables merged into the state in the same request"
    )


class AgentReply(_Record):
    """The agent's side of a turn: the turn's own messages, choices and custom actions."""

    messages: list[AgentMessage] = Field(default_factory=list)
    choices: list[Choice] = Field(default_factory=list)
    custom_actions: list[CustomAction] = Field(default_factory=list)
    traces: list[dict[str, JsonValue]] | None = Field(
        default=None, description="The raw runtime traces of the turn"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_v1(cls, data: Any) -> Any:
        return upgrade_v1_reply(data)

    @property
    def text(self) -> str:
        """The agent's words in this turn, one message per line."""
        return "\n".join(m.text for m in self.messages if m.text)


class JudgeVerdict(_Record):
    """A judge model's grade of one criterion."""

    verdict: Literal["pass", "fail"]
    score: float | None = Field(default=None, ge=0, le=1)
    reasoning: str = ""
    model: str = ""


class JudgeUsage(_Record):
    """Tokens the judge model spent, as its endpoint's `usage` reported them: the fact a cost is
    worked out from (vf-mcp knows no prices)."""

    calls: int = Field(default=0, ge=0, description="Judge requests answered")
    input_tokens: int = Field(
        default=0, ge=0, description="The endpoint's `usage.prompt_tokens`, summed"
    )
    output_tokens: int = Field(
        default=0, ge=0, description="The endpoint's `usage.completion_tokens`, summed"
    )
    unreported: int = Field(
        default=0,
        ge=0,
        description="Answers that carried no `usage`: their tokens are in neither sum",
    )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def tokens(self) -> str:
        """The total as a report shows it: "unknown" when no answer reported `usage`, "at least
        N" when some did not (a 0 there would read as a judge that cost nothing)."""
        if self.unreported and self.unreported >= self.calls:
            return "unknown"
        if self.unreported:
            return f"at least {self.total_tokens}"
        return str(self.total_tokens)

    def describe(self) -> str:
        """ "1234 tokens (1000 in, 234 out, 5 calls)", as every report says it after "judge"."""
        calls = f"{self.calls} call{'s' if self.calls != 1 else ''}"
        if self.unreported and self.unreported >= self.calls:
            return f"unknown tokens ({calls}, none with usage)"
        missing = f", {self.unreported} without usage" if self.unreported else ""
        return (
            f"{self.tokens()} tokens ({self.input_tokens} in, {self.output_tokens} out, "
            f"{calls}{missing})"
        )

    @classmethod
    def total(cls, usages: Iterable[JudgeUsage | None]) -> JudgeUsage | None:
        """The sum, or None when none of them called the judge."""
        present = [u for u in usages if u is not None]
        if not present:
            return None
        return cls(
            calls=sum(u.calls for u in present),
            input_tokens=sum(u.input_tokens for u in present),
            output_tokens=sum(u.output_tokens for u in present),
            unreported=sum(u.unreported for u in present),
        )


class CheckResult(_Record):
    """One expectation and what became of it."""

    id: str | None = None
    kind: str = Field(
        description="contains, not_contains, equals, regex, trace, choice, status, variable, "
        "judge, goal, or voiceflow-cli:<validation type> for imported validations"
    )
    label: str = Field(description="The expectation in words")
    expected: JsonValue = None
    outcome: CheckOutcome
    evidence: str = Field(default="", description="What was observed, or why it was not graded")
    verdict: JudgeVerdict | None = None


class TrajectoryStep(_Record):
    """One thing the agent ran in a turn: a flow it entered or returned to, a block, a tool."""

    kind: Literal["flow", "block", "tool"]
    id: str | None = Field(
        default=None,
        description="The flow's diagramID, the blockID, or the tool's id (apiToolID, functionID) "
        "from the ref the runtime attached; None for a tool the runtime did not name",
    )
    name: str | None = Field(
        default=None, description="The flow's or the tool's name, when the runtime gave one"
    )
    call_id: str | None = Field(default=None, description="A tool call's callID")
    ref_type: str | None = Field(
        default=None, description="The kind of ref that named the tool (api-tool, function...)"
    )
    finished: bool | None = Field(
        default=None, description="A tool call's `end` came back in the same turn"
    )


class Trajectory(_Record):
    """The flows, blocks and tools of a turn, in the order the runtime reported them."""

    requested: bool = Field(
        default=False,
        description="flow, block and debug traces were asked for (config.excludeTypes); "
        "without them only tools are known",
    )
    steps: list[TrajectoryStep] = Field(default_factory=list)


class RetrievedChunk(_Record):
    """A knowledge-base chunk the runtime retrieved for the turn (a `knowledgeBase` trace)."""

    text: str
    score: float | None = None
    document_id: str | None = None
    source: str | None = Field(default=None, description="The document's name, when given")


class HostReply(_Record):
    """A custom action answered by the suite's `on_action` mock, within the same turn."""

    action: str = Field(description="The custom action's name")
    reply: dict[str, JsonValue] = Field(description="The result action sent back")
    variables: dict[str, JsonValue] | None = None
    after_message: int = Field(
        default=0, ge=0, description="How many of the turn's agent messages came before it"
    )


class LostInFlight(_Record):
    """A turn whose answer never reached the server: its call was cut off with the worker running
    it (or cancelled). Found and recorded by the next call on the conversation."""

    sent_at: datetime
    worker: str = Field(description="The worker that sent it (host:pid)")
    ran: bool | None = Field(
        description="Whether the runtime's variables moved since it was sent (then it ran); "
        "false: they show no change, so it may not have run; null: not known (its call was "
        "cancelled)"
    )
    changes: str = Field(default="", description="The variables it changed, as summaries say")


class TranscriptTurn(_Record):
    index: int = Field(ge=1)
    step_id: str | None = None
    user: UserAction
    agent: AgentReply = Field(default_factory=AgentReply)
    status: TurnStatus | None = Field(default=None, description="None when the turn did not run")
    variables_changed: list[VariableChange] | None = None
    variables: dict[str, JsonValue] | None = Field(
        default=None, description="All the agent's variables after the turn"
    )
    latency_ms: float = 0.0
    rate_limit_retries: int = Field(
        default=0,
        description="Times the turn was sent again first: the runtime refused it with a 429, "
        "or no connection could be opened",
    )
    error: str | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    trajectory: Trajectory | None = Field(
        default=None, description="Flows, blocks and tools the turn ran, when any were reported"
    )
    retrieval: list[RetrievedChunk] | None = Field(
        default=None, description="Knowledge-base chunks retrieved in the turn"
    )
    host_replies: list[HostReply] = Field(
        default_factory=list, description="Custom actions answered by mocks within the turn"
    )
    lost_in_flight: LostInFlight | None = Field(
        default=None,
        description="Set when the turn's answer never came back (its worker stopped mid-turn); "
        "`error` says so in words",
    )


class SimulationInfo(_Record):
    """How a simulated or agent-played user was set up, and why it stopped."""

    tester: Literal["judge_model", "voiceflow_agent"] = "judge_model"
    persona: str = ""
    goal: str
    max_turns: int
    stop_reason: StopReason | None = None


class Transcript(_Record):
    """One test's conversation with its checks and verdicts."""

    schema_version: Literal["vf-mcp/transcript/v2"] = SCHEMA_VERSION

    suite: str
    test_id: str
    name: str
    description: str | None = None
    kind: Literal["script", "simulated"] = "script"
    user_id: str | None = None
    environment: str | None = None
    started_at: datetime
    duration_ms: float = 0.0
    outcome: TestOutcome
    error: str | None = None
    trial: int | None = Field(
        default=None, ge=1, description="Which run of a repeated test this is (`repeat`)"
    )
    simulation: SimulationInfo | None = None
    turns: list[TranscriptTurn] = Field(default_factory=list)
    checks: list[CheckResult] = Field(
        default_factory=list, description="Checks of the whole conversation (judged criteria)"
    )
    warnings: list[str] = Field(default_factory=list)
    judge_usage: JudgeUsage | None = Field(
        default=None, description="What the judge spent on this test; None: it was not called"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_v1(cls, data: Any) -> Any:
        return upgrade_v1_version(data)

    @property
    def key(self) -> str:
        """The test id, with the trial of a repeated test (`track_order#2`)."""
        return self.test_id if self.trial is None else f"{self.test_id}#{self.trial}"

    def all_checks(self) -> list[CheckResult]:
        return [c for t in self.turns for c in t.checks] + list(self.checks)

    def first_failure(self) -> CheckResult | None:
        return next((c for c in self.all_checks() if c.outcome in ("failed", "error")), None)


class TrialSummary(_Record):
    """How a repeated test fared over its trials."""

    test_id: str
    trials: int = Field(ge=0, description="Trials that ran (those the turn cap cut are left out)")
    passed: int = Field(ge=0)
    pass_rate: float = Field(ge=0, le=1)
    pass_hat_k: dict[int, float] = Field(
        description="pass^k for k = 1..trials: the chance that k trials drawn from these all "
        "pass, estimated without bias as C(passed, k) / C(trials, k)"
    )
    flaky: bool = Field(description="Some trials passed and some did not")


class SuiteResult(_Record):
    """One suite's tests, in file order, each as its transcript."""

    name: str
    source: str | None = None
    dialect: str = "vf-mcp"
    started_at: datetime
    duration_ms: float = 0.0
    tests: list[Transcript] = Field(default_factory=list)
    trials: list[TrialSummary] = Field(
        default_factory=list, description="One per repeated test (`repeat` above 1)"
    )
    warnings: list[str] = Field(default_factory=list)
    checks: list[CheckResult] = Field(
        default_factory=list,
        description="Checks of the whole suite, over every turn of every test and trial "
        "(the suite's `latency_ms`)",
    )
    judge_usage: JudgeUsage | None = Field(
        default=None, description="What the judge spent on the suite's tests, summed"
    )

    def count(self, outcome: TestOutcome) -> int:
        return sum(1 for t in self.tests if t.outcome == outcome)


class RunResult(_Record):
    """Everything one evaluation run produced: the JSON report is this, dumped."""

    schema_version: Literal["vf-mcp/transcript/v2"] = SCHEMA_VERSION

    suites: list[SuiteResult] = Field(default_factory=list)
    turns_sent: int = Field(default=0, ge=0, description="Requests sent to the agent, in all")
    stopped: str | None = Field(
        default=None, description="Why the run stopped before every test ran (its turn cap)"
    )
    judge_usage: JudgeUsage | None = Field(
        default=None, description="What the judge spent on the whole run, summed"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_v1(cls, data: Any) -> Any:
        return upgrade_v1_version(data)

    @property
    def transcripts(self) -> list[Transcript]:
        return [t for s in self.suites for t in s.tests]

    def succeeded(self, *, allow_ungraded: bool = False) -> bool:
        """No test failed, erred or was skipped and no suite check failed or erred; ungraded
        tests count only when allowed."""
        ok = {"passed", "to_grade"} if allow_ungraded else {"passed"}
        suite_checks = [c for s in self.suites for c in s.checks]
        return all(t.outcome in ok for t in self.transcripts) and not any(
            c.outcome in ("failed", "error") for c in suite_checks
        )


def decide_outcome(transcript: Transcript) -> TestOutcome:
    """A test errs when it could not run, fails on any failed check, waits for grading otherwise."""
    checks = transcript.all_checks()
    if transcript.error is not None or any(t.error for t in transcript.turns):
        return "error"
    if any(c.outcome == "error" for c in checks):
        return "error"
    if any(c.outcome == "failed" for c in checks):
        return "failed"
    if any(c.outcome == "to_grade" for c in checks):
        return "to_grade"
    return "passed"


def upgrade_v1_version(data: Any) -> Any:
    """A v1 transcript or run, read as v2: its agent replies upgrade themselves
    (`upgrade_v1_reply`); only the version it names changes here."""
    if isinstance(data, dict) and data.get("schema_version") == SCHEMA_VERSION_V1:
        return {**data, "schema_version": SCHEMA_VERSION}
    return data


def upgrade_v1_reply(data: Any) -> Any:
    """A v1 agent reply in v2 terms: a message's `url` becomes its `media` (an audio message's
    is audio, any other's an image, as v1 only kept the url of those two), and a choice stored
    without its `request` gets an empty one. v2 data passes unchanged."""
    if not isinstance(data, dict):
        return data
    upgraded = dict(data)
    if isinstance(data.get("messages"), list):
        upgraded["messages"] = [_v1_message(m) for m in data["messages"]]
    if isinstance(data.get("choices"), list):
        upgraded["choices"] = [upgrade_v1_choice(c) for c in data["choices"]]
    return upgraded


def _v1_message(message: Any) -> Any:
    if not isinstance(message, dict) or "url" not in message:
        return message
    upgraded = {k: v for k, v in message.items() if k != "url"}
    url = message["url"]
    if url is not None and upgraded.get("media") is None:
        kind = "audio" if message.get("kind") == "audio" else "image"
        upgraded["media"] = {"kind": kind, "url": url}
    return upgraded


def upgrade_v1_choice(choice: Any) -> Any:
    """A choice as v1 stored it, read as v2: a missing or null `request` is an empty one."""
    if isinstance(choice, dict) and choice.get("request") is None:
        return {**choice, "request": {}}
    return choice
