"""Exports of transcripts for other evaluation tools: DeepEval, promptfoo, voiceflow-cli.

Shapes follow each tool's documented input format (DeepEval `ConversationalTestCase`, promptfoo
configs, voiceflow-cli tests), as the export tests check:
- DeepEval: a JSON array of `ConversationalTestCase`s (DeepEval 3.7 to 4.3 read it): a launch turn
  has no user text, so only its assistant turn is written; metadata goes in `additional_metadata`,
  the key every DeepEval version reads. Assistant turns carry `tools_called` (the tools the
  runtime named: DeepEval's `ToolCall` needs a name, so unnamed calls are listed as skipped) and
  `retrieval_context` (the knowledge-base chunks), as DeepEval's docs ask for on assistant turns.
- promptfoo: a config that grades recorded conversations with the `echo` provider: the rendered
  transcript is the prompt (so the output), `vars._conversation` holds `{input, output}` pairs,
  so that promptfoo passes or fails each test as vf-mcp did. Judged criteria and goals become
  `llm-rubric` assertions (promptfoo's grader judges them again); text checks (`contains`,
  `not_contains`, `equals`, `regex`) become promptfoo's own assertions on that turn's text
  (`vars.replies`, picked by a `transform`), checked again by promptfoo; the checks promptfoo
  cannot see the data for (buttons, variables, traces, trajectories, mocks, grounding) and a test
  that erred are carried as vf-mcp recorded them (`vars.vf_mcp_checks`, read by a `javascript`
  assertion). The tests check this with promptfoo itself (tests/test_promptfoo_export.py).
- voiceflow-cli: a `suite.yaml` plus one test file per scripted test, with an `equals` validation
  per agent message and a `traceType` one per other trace, as `voiceflow dialog --save-test` does
  (but for `block`, `flow` and `debug`, which a trajectory suite asked for and voiceflow-cli,
  running with the runtime's default filter, never sees).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from vf_mcp.domain.transcript import CheckResult, RunResult, Transcript, TranscriptTurn
from vf_mcp.evaluation.checkmodels import (
    ContainsCheck,
    EqualsCheck,
    NotContainsCheck,
    RegexCheck,
    describe_check,
)
from vf_mcp.transcripts.records import kept_traces
from vf_mcp.transcripts.render import agent_lines, describe_user, render_turns

# -- DeepEval -----------------------------------------------------------------------------------


class DeepEvalToolCall(BaseModel):
    name: str
    description: str | None = None


class DeepEvalTurn(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    tools_called: list[DeepEvalToolCall] | None = None
    retrieval_context: list[str] | None = None
    additional_metadata: dict[str, Any] | None = None


class DeepEvalTestCase(BaseModel):
    name: str
    scenario: str
    expected_outcome: str | None = None
    user_description: str | None = None
    chatbot_role: str | None = None
    context: list[str] | None = None
    tags: list[str] = Field(default_factory=list)
    additional_metadata: dict[str, Any] = Field(default_factory=dict)
    turns: list[DeepEvalTurn] = Field(min_length=1)


class Export(BaseModel):
    """Exported content, and the tests that could not be expressed in the target format."""

    skipped: list[str] = Field(default_factory=list)


class DeepEvalExport(Export):
    test_cases: list[DeepEvalTestCase] = Field(default_factory=list)

    def to_json(self) -> str:
        data = [c.model_dump(mode="json") for c in self.test_cases]
        import json

        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _criteria(test: Transcript) -> list[str]:
    return [
        str(c.expected) for c in test.all_checks() if c.kind in ("judge", "goal") and c.expected
    ]


def _agent_text(turn: TranscriptTurn) -> str:
    if turn.agent.text:
        return turn.agent.text
    return "\n".join(agent_lines(turn)) or "(no reply)"


def _tools_called(
    test: Transcript, turn: TranscriptTurn, skipped: list[str]
) -> list[DeepEvalToolCall] | None:
    steps = [s for s in turn.trajectory.steps if s.kind == "tool"] if turn.trajectory else []
    called = []
    for step in steps:
        if step.id is None:
            skipped.append(
                f"{test.suite} / {test.test_id} turn {turn.index}: tool call "
                f"{step.call_id or '?'} is not in tools_called: the runtime did not name it"
            )
            continue
        described = f"{step.ref_type} {step.id}" if step.ref_type else None
        called.append(DeepEvalToolCall(name=step.name or step.id, description=described))
    return called or None


def _deepeval_turns(test: Transcript, skipped: list[str]) -> list[DeepEvalTurn]:
    turns: list[DeepEvalTurn] = []
    for turn in test.turns:
        if turn.status is None:
            continue
        if turn.user.kind != "launch":
            content = turn.user.text if turn.user.kind == "message" else describe_user(turn.user)
            turns.append(DeepEvalTurn(role="user", content=content or ""))
        turns.append(
            DeepEvalTurn(
                role="assistant",
                content=_agent_text(turn),
                tools_called=_tools_called(test, turn, skipped),
                retrieval_context=[c.text for c in turn.retrieval] if turn.retrieval else None,
                additional_metadata={
                    "turn": turn.index,
                    "status": turn.status,
                    "choices": [c.label for c in turn.agent.choices],
                    "checks": [{"label": c.label, "outcome": c.outcome} for c in turn.checks],
                    "traces": [{"type": t.type} for t in kept_traces(turn) or []],
                },
            )
        )
    return turns


def to_deepeval(run: RunResult) -> DeepEvalExport:
    export = DeepEvalExport()
    for test in run.transcripts:
        turns = _deepeval_turns(test, export.skipped)
        if not turns:
            export.skipped.append(f"{test.suite} / {test.test_id}: no turn ran")
            continue
        criteria = _criteria(test)
        sim = test.simulation
        export.test_cases.append(
            DeepEvalTestCase(
                name=f"{test.suite}/{test.key}",
                scenario=": ".join(p for p in (test.name, test.description) if p),
                expected_outcome=(sim.goal if sim else "; ".join(criteria)) or None,
                user_description=(sim.persona or None) if sim else None,
                tags=["vf-mcp", test.outcome],
                additional_metadata={
                    "source": "vf-mcp",
                    "userID": test.user_id,
                    "environment": test.environment,
                    "outcome": test.outcome,
                },
                turns=turns,
            )
        )
    return export


# -- promptfoo ----------------------------------------------------------------------------------


class PromptfooCompletion(BaseModel):
    input: str
    output: str


class PromptfooReply(BaseModel):
    """The agent's text in one turn, as vf-mcp's text checks read it."""

    turn: int
    text: str


class PromptfooGrade(BaseModel):
    """A check as vf-mcp graded it, in promptfoo's `GradingResult` shape."""

    pass_: bool = Field(alias="pass")
    score: float
    reason: str


class PromptfooVars(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    transcript: str
    conversation: list[PromptfooCompletion] = Field(alias="_conversation")
    # Objects, not strings: promptfoo makes one test case per item of a list of strings.
    replies: list[PromptfooReply] = Field(default_factory=list)
    recorded: list[PromptfooGrade] = Field(default_factory=list, alias="vf_mcp_checks")


class PromptfooAssertion(BaseModel):
    type: str
    value: str | None = None
    threshold: float | None = None
    transform: str | None = None


class PromptfooTest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    description: str
    vars: PromptfooVars
    metadata: dict[str, str] = Field(default_factory=dict)
    assertions: list[PromptfooAssertion] = Field(default_factory=list, alias="assert")


class PromptfooConfig(BaseModel):
    description: str = "Voiceflow agent conversations recorded by vf-mcp"
    prompts: list[str] = Field(default_factory=lambda: ["{{transcript}}"])
    providers: list[str] = Field(default_factory=lambda: ["echo"])
    tests: list[PromptfooTest] = Field(default_factory=list)


class PromptfooExport(Export):
    config: PromptfooConfig = Field(default_factory=PromptfooConfig)

    def to_yaml(self) -> str:
        data = self.config.model_dump(mode="json", by_alias=True, exclude_none=True)
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))


# Python `re` syntax that JavaScript's RegExp reads otherwise or not at all: named groups
# `(?P<n>`, inline flags, comments, atomic groups, possessive quantifiers, `\A` and `\Z`.
_PYTHON_ONLY_REGEX = re.compile(r"\(\?[P#>aiLmsux-]|\\[AZ]|[*+?}]\+")


_BRACES_AS_TEMPLATES = str.maketrans({"{": '{{ "{" }}', "}": '{{ "}" }}'})


def _literal(text: str) -> str:
    """`text` as promptfoo reads it back: it renders string vars and assertion values as Nunjucks
    templates, so each brace is written as a template that prints it. Then no tag, expression or
    comment of the text's own can open (a `{% raw %}` block would end at the text's first
    `{% endraw %}`, and what follows would run in promptfoo), and a stray `#}` is no error.
    Nested values (`_conversation`, `replies`) are not rendered, so they are left as they are."""
    return text.translate(_BRACES_AS_TEMPLATES)


def _ignores_case(check: CheckResult, value: str) -> bool | None:
    """Whether a text check ignored case, read back from its label; None if it is not ours."""
    models = {"contains": ContainsCheck, "not_contains": NotContainsCheck, "equals": EqualsCheck}
    for ignore_case in (False, True):
        if check.kind == "regex":
            model: Any = RegexCheck(pattern=value, ignore_case=ignore_case)
        elif check.kind in models:
            model = models[check.kind](value=value, ignore_case=ignore_case)
        else:
            return None
        if describe_check(model) == check.label:
            return ignore_case
    return None


def _promptfoo_text_assertion(check: CheckResult, position: int) -> PromptfooAssertion | None:
    """A text check as promptfoo's own assertion on that turn's text, or None if it has none."""
    value = check.expected
    if not isinstance(value, str):
        return None
    ignore_case = _ignores_case(check, value)
    if ignore_case is None:
        return None
    text = f"context.vars.replies[{position}].text"
    match check.kind:
        case "contains":
            kind = "icontains" if ignore_case else "contains"
            return PromptfooAssertion(type=kind, value=_literal(value), transform=text)
        case "not_contains":
            kind = "not-icontains" if ignore_case else "not-contains"
            return PromptfooAssertion(type=kind, value=_literal(value), transform=text)
        case "equals":
            expected = value.strip().lower() if ignore_case else value.strip()
            folded = f"{text}.trim()" + (".toLowerCase()" if ignore_case else "")
            return PromptfooAssertion(type="equals", value=_literal(expected), transform=folded)
        case "regex" if not ignore_case and not _PYTHON_ONLY_REGEX.search(value):
            return PromptfooAssertion(type="regex", value=_literal(value), transform=text)
    return None


def _recorded(check: CheckResult) -> PromptfooGrade:
    passed = check.outcome == "passed"
    why = f": {check.evidence}" if check.evidence and not passed else ""
    reason = f"vf-mcp recorded {check.outcome}: {check.label}{why}"
    return PromptfooGrade.model_validate({"pass": passed, "score": float(passed), "reason": reason})


def _promptfoo_assertions(
    test: Transcript, ran: list[TranscriptTurn], skipped: list[str]
) -> tuple[list[PromptfooAssertion], list[PromptfooGrade]]:
    assertions: list[PromptfooAssertion] = []
    recorded: list[PromptfooGrade] = []

    def record(grade: PromptfooGrade) -> None:
        recorded.append(grade)
        value = f"context.vars.vf_mcp_checks[{len(recorded) - 1}]"
        assertions.append(PromptfooAssertion(type="javascript", value=value))

    error = test.error or next((t.error for t in test.turns if t.error), None)
    if error is not None:
        record(PromptfooGrade.model_validate(
            {"pass": False, "score": 0.0, "reason": f"vf-mcp recorded an error: {error}"}
        ))  # fmt: skip
    positions = {id(turn): n for n, turn in enumerate(ran)}
    located = [(c, positions.get(id(t))) for t in test.turns for c in t.checks]
    for check, position in [*located, *((c, None) for c in test.checks)]:
        if check.kind in ("judge", "goal") and check.expected and check.outcome != "not_run":
            rubric = _literal(str(check.expected))
            assertions.append(PromptfooAssertion(type="llm-rubric", value=rubric))
            continue
        native = _promptfoo_text_assertion(check, position) if position is not None else None
        if native is not None and check.outcome in ("passed", "failed"):
            assertions.append(native)
        elif check.outcome in ("passed", "failed", "error"):
            record(_recorded(check))
        elif check.outcome == "to_grade":
            skipped.append(
                f"{test.suite} / {test.key}: check {check.label!r} was left to grade, and "
                "promptfoo has nothing to grade it on"
            )
    return assertions, recorded


def to_promptfoo(run: RunResult) -> PromptfooExport:
    export = PromptfooExport()
    for test in run.transcripts:
        ran = [t for t in test.turns if t.status is not None]
        if not ran:
            export.skipped.append(f"{test.suite} / {test.test_id}: no turn ran")
            continue
        conversation = [
            PromptfooCompletion(input=describe_user(t.user), output=_agent_text(t)) for t in ran
        ]
        assertions, recorded = _promptfoo_assertions(test, ran, export.skipped)
        # By alias: promptfoo's keys (`_conversation`, `assert`) are not Python names.
        export.config.tests.append(
            PromptfooTest.model_validate(
                {
                    "description": f"{test.suite} / {test.name}",
                    "vars": {
                        "transcript": _literal(render_turns(ran)),
                        "_conversation": conversation,
                        "replies": [{"turn": t.index, "text": t.agent.text} for t in ran],
                        "vf_mcp_checks": recorded,
                    },
                    "metadata": {
                        "conversationId": f"{test.suite}/{test.key}",
                        "outcome": test.outcome,
                    },
                    "assert": assertions,
                }
            )
        )
    return export


# -- voiceflow-cli ------------------------------------------------------------------------------


class VoiceflowCliExport(Export):
    files: dict[str, str] = Field(
        default_factory=dict, description="Relative path -> YAML text: suite.yaml and tests/*.yaml"
    )


def _dump(data: dict[str, Any]) -> str:
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))


def _xvd_user(turn: TranscriptTurn, previous: TranscriptTurn | None) -> dict[str, Any] | None:
    user = turn.user
    if user.kind == "launch":
        return {"type": "launch"}
    if user.kind == "message":
        return {"type": "text", "text": user.text or ""}
    if user.kind == "event":
        return {"type": "event", "event": user.text or ""}
    request: dict[str, Any] | None = user.action if user.kind in ("button", "intent") else None
    if user.kind == "choice" and previous is not None:
        request = next(
            (c.request for c in previous.agent.choices if c.label == user.text and c.request), None
        )
    if request is None:
        return None
    payload = request.get("payload")
    if user.kind in ("choice", "button") and isinstance(payload, dict) and payload.get("label"):
        return {"type": "button", "value": str(payload["label"])}
    if request.get("type") == "intent" and isinstance(payload, dict):
        intent: dict[str, Any] = {"name": str((payload.get("intent") or {}).get("name", ""))}
        if payload.get("entities"):
            intent["entities"] = [
                {"name": e.get("name"), "value": e.get("value")} for e in payload["entities"]
            ]
        return {"type": "intent", "intent": intent}
    if request.get("type") == "text" and isinstance(payload, str):
        return {"type": "text", "text": payload}
    return None


# What the runtime's default filter drops: voiceflow-cli, which sends no config, never sees them.
_UNSEEN_BY_XVD = frozenset({"block", "flow", "debug"})


def _xvd_validations(turn: TranscriptTurn) -> list[dict[str, str]]:
    validations: list[dict[str, str]] = []
    for trace in kept_traces(turn) or []:
        if trace.type in _UNSEEN_BY_XVD:
            continue
        if message := trace.relayed_message:
            validations.append({"type": "equals", "value": message})
        else:
            validations.append({"type": "traceType", "value": trace.type})
    return validations


def to_voiceflow_cli(run: RunResult, *, environment: str = "development") -> VoiceflowCliExport:
    export = VoiceflowCliExport()
    entries: list[dict[str, str]] = []
    users: list[str | None] = []
    for test in run.transcripts:
        key = f"{test.suite} / {test.key}"
        data: dict[str, Any] = {"name": test.name, "description": test.description or test.name}
        if test.simulation is not None:
            sim = test.simulation
            data["agent"] = {"goal": sim.goal, "maxSteps": sim.max_turns + 1}
            if sim.persona:
                data["agent"]["persona"] = sim.persona
        else:
            interactions: list[dict[str, Any]] = []
            previous: TranscriptTurn | None = None
            for turn in test.turns:
                if turn.status is None:
                    break
                user = _xvd_user(turn, previous)
                if user is None or turn.host_replies:
                    # A mock answered a custom action: voiceflow-cli has no mocks to do it.
                    why = (
                        "needs a mock to answer a custom action, which voiceflow-cli has not"
                        if user
                        else "has no voiceflow-cli input type"
                    )
                    export.skipped.append(
                        f"{key}: turn {turn.index} ({describe_user(turn.user)}) {why}"
                    )
                    interactions = []
                    break
                interaction: dict[str, Any] = {"id": f"{test.key}_{turn.index}", "user": user}
                interaction["agent"] = {"validate": _xvd_validations(turn)}
                if turn.user.variables:
                    interaction["variables"] = dict(turn.user.variables)
                interactions.append(interaction)
                previous = turn
            if not interactions:
                if not any(s.startswith(key) for s in export.skipped):
                    export.skipped.append(f"{key}: no turn ran")
                continue
            data["interactions"] = interactions
        name = f"tests/{_file_slug(test.suite)}_{_file_slug(test.key)}.yaml"
        export.files[name] = _dump(data)
        entries.append({"id": test.key, "file": f"./{name}"})
        users.append(test.user_id)
    shared = len(users) > 1 and len(set(users)) == 1
    suite = {
        "name": run.suites[0].name if len(run.suites) == 1 else "vf-mcp export",
        "description": "Exported from vf-mcp transcripts",
        "environmentName": next((t.environment for t in run.transcripts if t.environment), None)
        or environment,
        "newSessionPerTest": not shared,
        "tests": entries,
    }
    export.files["suite.yaml"] = _dump(suite)
    return export


def _file_slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "test"
