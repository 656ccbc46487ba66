"""Deterministic checks of one turn, and voiceflow-cli's validation rules.

Native checks read the turn as the transcript holds it (SSML-free text, buttons, status, raw
traces, the variables after the turn). Imported voiceflow-cli validations follow that tool's
own rules (`evaluate_voiceflow_cli`): each validation is tried against every trace of the turn
in order and passes on the first one that satisfies it, on the trace's raw `payload.message`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jsonpath_ng.ext.parser import parse as parse_jsonpath

from vf_mcp.domain.transcript import CheckResult, JudgeVerdict, TranscriptTurn
from vf_mcp.evaluation import budgets, trajectory
from vf_mcp.evaluation.checkmodels import (
    BlockCheck,
    ChoiceCheck,
    ContainsCheck,
    EqualsCheck,
    FlowCheck,
    InOrderCheck,
    LatencyCheck,
    NotContainsCheck,
    RegexCheck,
    StatusCheck,
    TextCheck,
    ToolCheck,
    TraceCheck,
    VariableCheck,
    VoiceflowCliCheck,
    describe_check,
)
from vf_mcp.transcripts.records import kept_traces
from vf_mcp.voiceflow.traces import BaseTrace

DeterministicCheck = TextCheck | FlowCheck | BlockCheck | ToolCheck | InOrderCheck
SimilarityGrader = Callable[[str, list[str]], Awaitable[JudgeVerdict]]

_EVIDENCE_LIMIT = 300


def _clip(text: str) -> str:
    return text if len(text) <= _EVIDENCE_LIMIT else text[: _EVIDENCE_LIMIT - 1] + "…"


def _quoted(text: str) -> str:
    # Not repr(): evidence is read by people, and repr writes the agent's line breaks as a
    # literal backslash-n that every report (HTML, JUnit, Markdown) would show as such.
    return f"'{_clip(text)}'"


def _said(turn: TranscriptTurn) -> str:
    text = turn.agent.text
    return f"the agent said {_quoted(text)}" if text else "the agent said nothing"


def _result(check: TextCheck, passed: bool, evidence: str, expected: Any = None) -> CheckResult:
    return CheckResult(
        id=check.id,
        kind=check.type,
        label=describe_check(check),
        expected=expected,
        outcome="passed" if passed else "failed",
        evidence=evidence,
    )


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def _label(text: str) -> str:
    return " ".join(text.split()).casefold()


def evaluate(check: DeterministicCheck, turn: TranscriptTurn) -> CheckResult:
    """Pass or fail one deterministic check against a turn that ran."""
    text = turn.agent.text
    match check:
        case ContainsCheck() | NotContainsCheck():
            present = _fold(check.value, check.ignore_case) in _fold(text, check.ignore_case)
            passed = present if isinstance(check, ContainsCheck) else not present
            return _result(check, passed, _said(turn), check.value)
        case EqualsCheck():
            passed = _fold(text.strip(), check.ignore_case) == _fold(
                check.value.strip(), check.ignore_case
            )
            return _result(check, passed, _said(turn), check.value)
        case RegexCheck():
            flags = re.IGNORECASE if check.ignore_case else 0
            found = re.search(check.pattern, text, flags)
            evidence = f"matched {_quoted(found.group(0))}" if found else _said(turn)
            return _result(check, found is not None, evidence, check.pattern)
        case TraceCheck():
            traces = kept_traces(turn)
            if traces is None:
                return _result(
                    check, False, "the turn's raw traces were not kept", check.trace_type
                )
            types = [t.type for t in traces]
            return _result(
                check,
                check.trace_type in types,
                f"trace types: {', '.join(types) or 'none'}",
                check.trace_type,
            )
        case ChoiceCheck():
            labels = [c.label for c in turn.agent.choices]
            passed = _label(check.label) in {_label(x) for x in labels}
            shown = ", ".join(repr(x) for x in labels) or "no buttons"
            return _result(check, passed, f"offered: {shown}", check.label)
        case StatusCheck():
            return _result(
                check, turn.status == check.status, f"status was {turn.status}", check.status
            )
        case VariableCheck():
            return _variable(check, turn)
        case LatencyCheck():
            return budgets.latency(check, [turn.latency_ms], f"turn {turn.index}")
        case FlowCheck() | BlockCheck() | ToolCheck() | InOrderCheck():
            return trajectory.evaluate(check, [turn])
    raise AssertionError(f"not a deterministic check: {check!r}")  # pragma: no cover


def _variable(check: VariableCheck, turn: TranscriptTurn) -> CheckResult:
    expected = check.equals if check.wants_value else {"exists": check.exists}
    if turn.variables is None:
        return _result(check, False, "the variables after the turn are unknown", expected)
    matches = [m.value for m in parse_jsonpath(check.path).find(turn.variables)]
    if check.exists is not None and not check.wants_value:
        passed = bool(matches) == check.exists
        shown = json.dumps(matches[0] if len(matches) == 1 else matches, default=str)
        evidence = f"{check.path} is {shown}" if matches else f"{check.path} matches nothing"
        return _result(check, passed, evidence, expected)
    if not matches:
        return _result(check, False, f"{check.path} matches nothing", expected)
    actual = matches[0] if len(matches) == 1 else matches
    evidence = f"{check.path} is {_clip(json.dumps(actual, default=str))}"
    return _result(check, actual == check.equals, evidence, expected)


# -- voiceflow-cli ------------------------------------------------------------------------------


def go_sprint(value: Any) -> str:
    """`fmt.Sprint` of a value decoded by Go's encoding/json (numbers are float64)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        if math.isinf(number):
            return "+Inf" if number > 0 else "-Inf"
        if number.is_integer() and abs(number) < 1e21:
            return str(int(number))
        text = repr(number)
        # Go writes exponents with at least two digits and an explicit sign, as Python does.
        return text
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _xvd_label(check: VoiceflowCliCheck) -> str:
    return describe_check(check)


def _xvd_variable(check: VoiceflowCliCheck, turn: TranscriptTurn) -> tuple[bool, str]:
    config = check.variable
    if config is None:
        return False, "variableConfig is missing"
    if turn.variables is None:
        return False, "the variables after the turn are unknown"
    actual: Any = turn.variables.get(config.name)
    if config.json_path:
        expr = config.json_path if config.json_path.startswith("$") else "$" + config.json_path
        try:
            found = [m.value for m in parse_jsonpath(expr).find(actual)]
        except Exception as exc:
            return False, f"JSONPath {expr!r} failed: {exc}"
        if not found:
            return False, f"JSONPath {expr!r} matches nothing in {config.name}"
        actual = found[0] if len(found) == 1 else found
    shown = go_sprint(actual)
    return shown == check.value, f"{config.name}{config.json_path} is {shown!r}"


@dataclass
class _XvdRun:
    """One turn's voiceflow-cli validations, as they are tried against its traces in turn."""

    checks: list[VoiceflowCliCheck]
    turn: TranscriptTurn
    grade_similarity: SimilarityGrader | None
    outcome: dict[int, CheckResult] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    ungraded: set[int] = field(default_factory=set)
    verdicts: dict[int, JudgeVerdict] = field(default_factory=dict)

    async def attempt(self, i: int, trace: BaseTrace, message: str | None) -> bool:
        """Try validation `i` on one trace; True once it passed (or erred: it is settled)."""
        check = self.checks[i]
        kind = check.validation
        passed, evidence = False, ""
        if kind == "traceType":
            passed, evidence = trace.type == check.value, f"a {check.value} trace"
        elif kind == "variable":
            passed, evidence = _xvd_variable(check, self.turn)
        elif message is not None and kind in ("equals", "exact_match"):
            passed, evidence = message == check.value, f"message {_quoted(message)}"
        elif message is not None and kind == "contains":
            passed, evidence = check.value in message, f"message {_quoted(message)}"
        elif message is not None and kind == "regexp":
            try:
                passed = re.search(check.value, message) is not None
            except re.error as exc:
                self.outcome[i] = _xvd_result(check, "error", f"regexp does not compile: {exc}")
                return True
            evidence = f"message {_quoted(message)}"
        elif message is not None and kind == "similarity":
            passed, evidence = await self._similar(i, message)
        if passed:
            self.outcome[i] = _xvd_result(check, "passed", evidence, self.verdicts.get(i))
        return passed

    async def _similar(self, i: int, message: str) -> tuple[bool, str]:
        check = self.checks[i]
        provider = check.similarity.provider if check.similarity else ""
        if provider != "openai":
            # voiceflow-cli fails the validation: "Unsupported provider".
            return False, f"unsupported similarity provider {provider!r}"
        if self.grade_similarity is None:
            self.ungraded.add(i)
            return False, ""
        verdict = await self.grade_similarity(message, check.values)
        self.verdicts[i] = verdict
        threshold = check.similarity.similarity_threshold if check.similarity else 0
        score = verdict.score or 0.0
        return score >= threshold, f"similarity {score:.2f} (threshold {threshold:g})"

    def settle(self, i: int, traces: list[BaseTrace]) -> None:
        """Validation `i` never passed: say why."""
        check = self.checks[i]
        said = " | ".join(_clip(m) for m in self.messages) or "no message"
        if i in self.ungraded:
            evidence = f"no judge configured to grade similarity; messages: {said}"
            self.outcome[i] = _xvd_result(check, "to_grade", evidence)
            return
        if not traces:
            self.outcome[i] = _xvd_result(check, "failed", "the agent sent no traces")
            return
        why = "no trace satisfied it"
        if check.validation not in _XVD_TYPES:
            why = f"voiceflow-cli has no validation type {check.validation!r}"
        elif check.validation == "variable":
            why = _xvd_variable(check, self.turn)[1]
        self.outcome[i] = _xvd_result(
            check, "failed", f"{why}; messages: {said}", self.verdicts.get(i)
        )


async def evaluate_voiceflow_cli(
    checks: list[VoiceflowCliCheck],
    turn: TranscriptTurn,
    grade_similarity: SimilarityGrader | None,
) -> list[CheckResult]:
    """voiceflow-cli's rules: every pending validation against each trace in turn."""
    traces = kept_traces(turn) or []
    run = _XvdRun(checks, turn, grade_similarity)
    pending = list(range(len(checks)))
    for trace in traces:
        message = trace.relayed_message
        if message is not None:
            run.messages.append(message)
        pending = [i for i in pending if not await run.attempt(i, trace, message)]
    for i in pending:
        run.settle(i, traces)
    return [run.outcome[i] for i in range(len(checks))]


_XVD_TYPES = frozenset(
    {"contains", "equals", "exact_match", "regexp", "traceType", "similarity", "variable"}
)


def _xvd_result(
    check: VoiceflowCliCheck,
    outcome: Any,
    evidence: str,
    verdict: JudgeVerdict | None = None,
) -> CheckResult:
    expected: Any = check.values if check.validation == "similarity" else check.value
    return CheckResult(
        id=check.id,
        kind=f"voiceflow-cli:{check.validation}",
        label=_xvd_label(check),
        expected=expected,
        outcome=outcome,
        evidence=evidence,
        verdict=verdict,
    )
