"""One trace per evaluation run: run > suite > test > trial > turn and judge call.

Spans come from the tracer of `vf_mcp.telemetry` (no-ops until a provider is installed). The
current span travels in context variables, which anyio copies into each task a task group starts,
so the tests a suite runs at once each hang under their own trial. A repeated test's trials are
separate jobs, run at once or one round after another, so its test span is opened by the first
trial that starts and ended by the last one that finishes (`SuiteTrace`).

Attributes hold names and ids the suite's author wrote, outcomes and counts: never what the user
or the agent said (see `vf_mcp.telemetry`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode

from vf_mcp import telemetry
from vf_mcp.domain.transcript import (
    CheckResult,
    JudgeUsage,
    RunResult,
    SuiteResult,
    TestOutcome,
    Transcript,
    TranscriptTurn,
)

PREFIX = "vf_mcp.eval"
# Worst first: a test's span takes the worst outcome of its trials.
_SEVERITY: tuple[TestOutcome, ...] = ("error", "failed", "to_grade", "skipped", "passed")


def _tracer() -> trace.Tracer:
    return telemetry.current().tracer


def _current(
    name: str, attributes: Mapping[str, str | int], parent: Span | None = None
) -> AbstractContextManager[Span]:
    """A span made current; `parent` when it is not the current one."""
    return _tracer().start_as_current_span(
        name,
        context=trace.set_span_in_context(parent) if parent is not None else None,
        attributes=attributes,
        # The SDK's own exception recording would store the message, which may quote the agent.
        record_exception=False,
        set_status_on_exception=False,
    )


def _checks(checks: Iterable[CheckResult]) -> dict[str, int]:
    counts = Counter(c.outcome for c in checks)
    return {f"{PREFIX}.checks.{outcome}": n for outcome, n in sorted(counts.items())}


def _usage(usage: JudgeUsage | None) -> dict[str, int]:
    if usage is None:
        return {}
    return {
        f"{PREFIX}.judge.calls": usage.calls,
        f"{PREFIX}.judge.input_tokens": usage.input_tokens,
        f"{PREFIX}.judge.output_tokens": usage.output_tokens,
    }


def _outcome(span: Span, outcome: TestOutcome) -> None:
    span.set_attribute(f"{PREFIX}.outcome", outcome)
    if outcome in ("failed", "error"):
        span.set_status(StatusCode.ERROR)


def _outcomes(span: Span, outcomes: Iterable[TestOutcome]) -> None:
    for outcome, n in sorted(Counter(outcomes).items()):
        span.set_attribute(f"{PREFIX}.tests.{outcome}", n)


@contextmanager
def run_span(suites: int) -> Iterator[Span]:
    """The root of a run's trace; `finish_run` sets what came of it."""
    with _current("eval run", {f"{PREFIX}.suites": suites}) as span:
        yield span


def finish_run(span: Span, run: RunResult) -> None:
    _outcomes(span, (t.outcome for t in run.transcripts))
    span.set_attribute(f"{PREFIX}.turns_sent", run.turns_sent)
    span.set_attributes(_usage(run.judge_usage))
    span.set_attribute(f"{PREFIX}.outcome", "passed" if run.succeeded() else "failed")
    if not run.succeeded():
        span.set_status(StatusCode.ERROR)


@dataclass
class _OpenTest:
    span: Span
    remaining: int
    outcomes: list[TestOutcome] = field(default_factory=list)


class SuiteTrace:
    """The spans of one suite's run: the suite, and each test with its trials beneath."""

    def __init__(self, name: str, trials_per_test: dict[int, int]) -> None:
        self.name = name
        self.trials_per_test = trials_per_test
        self.span: Span = trace.INVALID_SPAN
        self.tests: dict[int, _OpenTest] = {}

    @contextmanager
    def suite(self) -> Iterator[None]:
        """The suite's span, current while its tests run (and while their tasks are started)."""
        with _current("eval suite", {f"{PREFIX}.suite": self.name}) as span:
            self.span = span
            try:
                yield
            finally:
                for test in self.tests.values():  # cut short: cancelled, or an error
                    test.span.end()

    def finish_suite(self, result: SuiteResult) -> None:
        _outcomes(self.span, (t.outcome for t in result.tests))
        self.span.set_attributes(_checks(result.checks))
        self.span.set_attributes(_usage(result.judge_usage))
        failed = any(c.outcome in ("failed", "error") for c in result.checks)
        if failed or any(t.outcome in ("failed", "error") for t in result.tests):
            self.span.set_status(StatusCode.ERROR)

    def _test(self, index: int, test_id: str) -> _OpenTest:
        if index not in self.tests:
            span = _tracer().start_span(
                "eval test",
                context=trace.set_span_in_context(self.span),
                attributes={f"{PREFIX}.suite": self.name, f"{PREFIX}.test": test_id},
            )
            self.tests[index] = _OpenTest(span, self.trials_per_test.get(index, 1))
        return self.tests[index]

    @contextmanager
    def trial(self, index: int, test_id: str, trial: int | None) -> Iterator[Span]:
        """A trial's span, current while it runs; `finish_trial` records its outcome."""
        test = self._test(index, test_id)
        attributes: dict[str, str | int] = {
            f"{PREFIX}.test": test_id,
            f"{PREFIX}.trial": trial or 1,
        }
        with _current("eval trial", attributes, parent=test.span) as span:
            yield span

    def finish_trial(self, span: Span, index: int, transcript: Transcript) -> None:
        _outcome(span, transcript.outcome)
        span.set_attribute(f"{PREFIX}.turns", len(transcript.turns))
        span.set_attributes(_checks(transcript.all_checks()))
        span.set_attributes(_usage(transcript.judge_usage))
        test = self.tests[index]
        test.outcomes.append(transcript.outcome)
        test.remaining -= 1
        if test.remaining <= 0:
            worst = min(test.outcomes, key=_SEVERITY.index)
            _outcome(test.span, worst)
            test.span.set_attribute(f"{PREFIX}.trials", len(test.outcomes))
            test.span.set_attribute(f"{PREFIX}.trials.passed", test.outcomes.count("passed"))
            test.span.end()
            del self.tests[index]


@contextmanager
def turn_span(index: int, role: str) -> Iterator[Span]:
    """One request to the agent (with the mock replies sent in the same turn, each its own)."""
    attributes: dict[str, str | int] = {f"{PREFIX}.turn": index, f"{PREFIX}.role": role}
    with _current("eval turn", attributes) as span:
        yield span


def finish_turn(span: Span, turn: TranscriptTurn) -> None:
    span.set_attribute(f"{PREFIX}.latency_ms", turn.latency_ms)
    if turn.status is not None:
        span.set_attribute("vf_mcp.turn.status", turn.status)
    if turn.error is not None:
        # The class name only: the message may quote the runtime.
        span.set_attribute("error.type", turn.error.split(":", 1)[0])
        span.set_status(StatusCode.ERROR)
