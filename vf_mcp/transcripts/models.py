"""The canonical transcript: one record per test; every report, export and prompt is made from it.

The models here are versioned on their own (`SCHEMA_VERSION`) and deliberately do not reuse the MCP
tool models of `vf_mcp.summary`: the tool output may evolve with the server, while a v1 transcript
written today must still validate against `schemas/transcript-v1.json` tomorrow. Converters from
`TurnResult` live here so that mapping is written once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from vf_mcp.conversation import TurnOutcome
from vf_mcp.summary import TurnResult
from vf_mcp.voiceflow.variables import without_bookkeeping

SCHEMA_VERSION: Final = "vf-mcp/transcript/v1"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "transcript-v1.json"
SCHEMA_ID = (
    "https://github.com/vf-mcp/vf-mcp/blob/main/vf_mcp/transcripts/schemas/transcript-v1.json"
)

TurnStatus = Literal["awaiting_user", "awaiting_action", "ended", "handoff", "error"]
CheckOutcome = Literal["passed", "failed", "to_grade", "error", "not_run"]
TestOutcome = Literal["passed", "failed", "error", "to_grade", "skipped"]
StopReason = Literal[
    "goal_met", "agent_ended", "turn_limit", "tester_silent", "error", "unanswered_action"
]
UserActionKind = Literal["launch", "message", "choice", "button", "event", "intent", "action"]


class _Record(BaseModel):
    # Transcripts are data written by us and read back by other tools: unknown keys are an error.
    model_config = ConfigDict(extra="forbid")


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


class TranscriptCard(_Record):
    title: str = ""
    description: str = ""
    image_url: str | None = None
    buttons: list[str] = Field(default_factory=list)


class TranscriptMessage(_Record):
    """One thing the agent showed or said."""

    kind: str = Field(description="text, card, carousel, image, audio, handoff or notice")
    text: str = ""
    url: str | None = Field(default=None, description="Link of an image or audio message")
    cards: list[TranscriptCard] = Field(default_factory=list)


class TranscriptChoice(_Record):
    number: int
    label: str
    request: dict[str, JsonValue] | None = None


class TranscriptCustomAction(_Record):
    name: str
    payload: JsonValue = None
    result_types: list[str] = Field(default_factory=list)


class VariableDelta(_Record):
    name: str
    before: JsonValue = None
    after: JsonValue = None


class AgentReply(_Record):
    messages: list[TranscriptMessage] = Field(default_factory=list)
    choices: list[TranscriptChoice] = Field(default_factory=list)
    custom_actions: list[TranscriptCustomAction] = Field(default_factory=list)
    traces: list[dict[str, JsonValue]] | None = Field(
        default=None, description="The raw runtime traces of the turn"
    )

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

    def describe(self) -> str:
        """ "1234 judge tokens (1000 in, 234 out, 5 calls)", as every report says it."""
        calls = f"{self.calls} call{'s' if self.calls != 1 else ''}"
        missing = f", {self.unreported} without usage" if self.unreported else ""
        return (
            f"{self.total_tokens} judge tokens ({self.input_tokens} in, {self.output_tokens} out, "
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
    variables_changed: list[VariableDelta] | None = None
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

    schema_version: Literal["vf-mcp/transcript/v1"] = SCHEMA_VERSION
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

    schema_version: Literal["vf-mcp/transcript/v1"] = SCHEMA_VERSION
    suites: list[SuiteResult] = Field(default_factory=list)
    turns_sent: int = Field(default=0, ge=0, description="Requests sent to the agent, in all")
    stopped: str | None = Field(
        default=None, description="Why the run stopped before every test ran (its turn cap)"
    )
    judge_usage: JudgeUsage | None = Field(
        default=None, description="What the judge spent on the whole run, summed"
    )

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


def reply_from_turn(turn: TurnResult, traces: list[dict[str, Any]] | None = None) -> AgentReply:
    """The agent's side of a `TurnResult`, in transcript terms, with `traces` when kept."""
    messages = []
    for message in turn.messages:
        url = message.media.url if message.media is not None else None
        cards = [
            TranscriptCard(
                title=c.title, description=c.description, image_url=c.image_url, buttons=c.buttons
            )
            for c in message.cards
        ]
        messages.append(
            TranscriptMessage(kind=message.kind, text=message.text, url=url, cards=cards)
        )
    return AgentReply(
        messages=messages,
        choices=[
            TranscriptChoice(number=c.number, label=c.label, request=_json(c.request))
            for c in turn.choices
        ],
        custom_actions=[
            TranscriptCustomAction(
                name=a.name, payload=_json(a.payload), result_types=a.result_types
            )
            for a in turn.custom_actions
        ],
        traces=[_json(t) for t in traces] if traces is not None else None,
    )


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
    return TranscriptTurn(
        index=index,
        step_id=step_id,
        user=user,
        agent=reply_from_turn(result, [t.raw for t in outcome.traces] if keep_traces else None),
        status=result.status,
        variables_changed=deltas_from_turn(result),
        variables=_json(without_bookkeeping(after)) if after is not None else None,
        latency_ms=result.latency_ms,
        rate_limit_retries=outcome.retries,
    )


def deltas_from_turn(turn: TurnResult) -> list[VariableDelta] | None:
    if turn.variables_changed is None:
        return None
    return [
        VariableDelta(name=c.name, before=_json(c.before), after=_json(c.after))
        for c in turn.variables_changed
    ]


def _json(value: Any) -> Any:
    # Runtime payloads are JSON already; a round trip turns anything exotic into plain JSON.
    return json.loads(json.dumps(value, default=str))


def transcript_json_schema() -> dict[str, Any]:
    """The JSON Schema of a v1 transcript, as shipped in `schemas/transcript-v1.json`."""
    schema = Transcript.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def render_schema() -> str:
    return json.dumps(transcript_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema() -> Path:
    """Regenerate the shipped schema file after a deliberate change to the v1 models."""
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
    return SCHEMA_PATH
