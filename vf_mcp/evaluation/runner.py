"""Running suites: tests in parallel (or in order on one shared user), checks, judge, progress.

`run_suite` returns one `Transcript` per test with every check's outcome and evidence. Criteria
that need a judge are graded when a judge (`ChatModel`) is given, otherwise they come back
"to_grade" with the transcript for a person or another model to grade.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

import anyio
from pydantic import BaseModel, JsonValue

from vf_mcp.conversation import ConversationService
from vf_mcp.errors import UpstreamError
from vf_mcp.evaluation import checks as checking
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.context import Scope, scope
from vf_mcp.evaluation.judge import ChatModel, grade_criterion, grade_similarity
from vf_mcp.evaluation.script import (
    Check,
    JudgeCheck,
    ScriptTest,
    Suite,
    VoiceflowCliCheck,
    describe_check,
)
from vf_mcp.evaluation.simulator import Simulator
from vf_mcp.evaluation.turns import ConversationDriver
from vf_mcp.transcripts.models import (
    CheckResult,
    JudgeVerdict,
    RunResult,
    SuiteResult,
    TestOutcome,
    Transcript,
    TranscriptTurn,
    decide_outcome,
)
from vf_mcp.transcripts.render import describe_user, render_turns

DEFAULT_CONCURRENCY = 4


class ProgressEvent(BaseModel):
    """One step of a run, with a line of text ready to print."""

    kind: Literal["suite_started", "test_started", "turn_finished", "test_finished", "suite_done"]
    suite: str
    test: str | None = None
    turn: int | None = None
    outcome: TestOutcome | None = None
    text: str
    tests_total: int
    tests_done: int


ProgressCallback = Callable[[ProgressEvent], Awaitable[None]]


def new_user_id(suite: Suite) -> str:
    # voiceflow-cli names its users test-<uuid4>; our own suites use a shorter random id.
    if suite.dialect == "voiceflow-cli":
        return f"test-{uuid.uuid4()}"
    return f"{suite.user_id_prefix}{secrets.token_hex(6)}"


async def run_suites(
    suites: Sequence[Suite],
    factory: ServiceFactory,
    *,
    judge: ChatModel | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Run suites one after another, sharing one concurrency limit for their tests."""
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    results = [
        await run_suite(s, factory, judge=judge, on_progress=on_progress, limiter=limiter)
        for s in suites
    ]
    return RunResult(suites=results)


async def run_suite(
    suite: Suite,
    factory: ServiceFactory,
    *,
    judge: ChatModel | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    limiter: anyio.CapacityLimiter | None = None,
) -> SuiteResult:
    """Run one suite's tests and return each as a transcript with its checks."""
    return await _SuiteRun(
        suite, factory, judge, limiter or anyio.CapacityLimiter(max(1, concurrency)), on_progress
    ).run()


class _SuiteRun:
    def __init__(
        self,
        suite: Suite,
        factory: ServiceFactory,
        judge: ChatModel | None,
        limiter: anyio.CapacityLimiter,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.suite = suite
        self.factory = factory
        self.judge = judge
        self.limiter = limiter
        self.on_progress = on_progress
        self.results: list[Transcript | None] = [None] * len(suite.tests)
        self.stopped = False
        self.done = 0

    async def emit(self, kind: str, text: str, **fields: object) -> None:
        if self.on_progress is not None:
            event = ProgressEvent.model_validate(
                {
                    "kind": kind,
                    "suite": self.suite.name,
                    "text": text,
                    "tests_total": len(self.suite.tests),
                    "tests_done": self.done,
                    **fields,
                }
            )
            await self.on_progress(event)

    async def run(self) -> SuiteResult:
        started_at, started = datetime.now(UTC), time.perf_counter()
        await self.emit("suite_started", f"Suite {self.suite.name}: {len(self.suite.tests)} tests")
        async with self.factory.open(streaming=self.suite.streaming) as service:
            if self.suite.new_user_per_test:
                async with anyio.create_task_group() as group:
                    for i, test in enumerate(self.suite.tests):
                        group.start_soon(self.run_one, service, i, test, None)
            else:
                # One user for the whole suite: the tests continue one conversation, in order.
                shared = new_user_id(self.suite)
                for i, test in enumerate(self.suite.tests):
                    await self.run_one(service, i, test, shared)
        tests = [t for t in self.results if t is not None]
        result = SuiteResult(
            name=self.suite.name,
            source=self.suite.source,
            dialect=self.suite.dialect,
            started_at=started_at,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            tests=tests,
            warnings=list(self.suite.warnings),
        )
        outcomes: tuple[TestOutcome, ...] = ("passed", "failed", "error", "to_grade", "skipped")
        counts = ", ".join(f"{n} {o}" for o in outcomes if (n := result.count(o)))
        await self.emit("suite_done", f"Suite {self.suite.name}: {counts}")
        return result

    async def run_one(
        self, service: ConversationService, index: int, test: ScriptTest, user: str | None
    ) -> None:
        if self.stopped:
            await self.skip(index, test)
            return
        async with self.limiter:
            if self.stopped:
                await self.skip(index, test)
                return
            await self.emit("test_started", f"▶ {self.suite.name} / {test.title}", test=test.id)
            transcript = await _TestRun(self, test, user).run(service)
        self.results[index] = transcript
        self.done += 1
        if self.suite.on_failure == "stop" and transcript.outcome in ("failed", "error"):
            self.stopped = True
        await self.emit(
            "test_finished",
            f"{transcript.outcome.upper()} {self.suite.name} / {test.title} "
            f"({len(transcript.turns)} turns, {transcript.duration_ms / 1000:.1f} s)",
            test=test.id,
            outcome=transcript.outcome,
        )

    async def skip(self, index: int, test: ScriptTest) -> None:
        self.done += 1
        self.results[index] = Transcript(
            suite=self.suite.name,
            test_id=test.id,
            name=test.title,
            description=test.description,
            kind="simulated" if test.simulate else "script",
            environment=test.environment or self.suite.environment,
            started_at=datetime.now(UTC),
            outcome="skipped",
            warnings=["not run: an earlier test failed and on_failure is stop"],
        )
        await self.emit(
            "test_finished",
            f"SKIPPED {self.suite.name} / {test.title}",
            test=test.id,
            outcome="skipped",
        )


class _TestRun:
    def __init__(self, run: _SuiteRun, test: ScriptTest, user: str | None) -> None:
        self.run_ = run
        self.suite = run.suite
        self.test = test
        self.user_id = user or new_user_id(run.suite)
        self.environment = test.environment or run.suite.environment
        self.turns: list[TranscriptTurn] = []

    def preset(self) -> dict[str, JsonValue]:
        return {**self.suite.variables, **self.test.variables}

    async def run(self, service: ConversationService) -> Transcript:
        started_at, started = datetime.now(UTC), time.perf_counter()
        transcript = Transcript(
            suite=self.suite.name,
            test_id=self.test.id,
            name=self.test.title,
            description=self.test.description,
            kind="simulated" if self.test.simulate else "script",
            user_id=self.user_id,
            environment=self.environment,
            started_at=started_at,
            outcome="passed",
        )
        driver = ConversationDriver(
            service,
            self.user_id,
            suite=self.suite.name,
            test=self.test.id,
            environment=self.environment,
        )
        try:
            if self.test.simulate is not None:
                await self.simulate(driver, transcript)
            else:
                await self.script(driver)
                transcript.turns = self.turns
            if not transcript.error and not any(t.error for t in transcript.turns):
                transcript.checks += await self.conversation_checks()
        except UpstreamError as exc:  # the judge failed, or answered unusably
            transcript.turns = self.turns
            transcript.error = f"judge: {exc.message}"
        except Exception as exc:  # one broken test must not take the others down
            transcript.turns = self.turns
            transcript.error = f"{type(exc).__name__}: {exc}"
        transcript.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        transcript.outcome = decide_outcome(transcript)
        return transcript

    async def script(self, driver: ConversationDriver) -> None:
        stop_at_failure = self.suite.on_failure == "stop"
        for index, step in enumerate(self.test.turns, start=1):
            preset = self.preset() if index == 1 else None
            turn = await driver.send(index, step, variables=preset or None)
            self.turns.append(turn)
            if turn.error is None:
                turn.checks = await self.turn_checks(step.expect, turn)
            await self.turn_done(turn)
            failed = any(c.outcome in ("failed", "error") for c in turn.checks)
            if turn.error is not None or (stop_at_failure and failed):
                break

    async def simulate(self, driver: ConversationDriver, transcript: Transcript) -> None:
        sim = self.test.simulate
        assert sim is not None
        sim = sim.model_copy(update={"launch_variables": {**self.preset(), **sim.launch_variables}})

        async def on_turn(turn: TranscriptTurn) -> None:
            self.turns.append(turn)
            await self.turn_done(turn)

        if sim.tester is not None:
            async with self.run_.factory.open(
                streaming=False, api_key=sim.tester.api_key
            ) as tester:
                tester_driver = ConversationDriver(
                    tester,
                    f"voiceflow-agent-tester-{self.user_id}",
                    suite=self.suite.name,
                    test=self.test.id,
                    environment=sim.tester.environment,
                    role="tester",
                )
                outcome = await Simulator(
                    sim, driver, chat=self.run_.judge, tester=tester_driver, on_turn=on_turn
                ).run()
        else:
            outcome = await Simulator(sim, driver, chat=self.run_.judge, on_turn=on_turn).run()
        transcript.turns = outcome.turns
        transcript.simulation = outcome.info
        transcript.checks.append(outcome.goal)
        if outcome.error and not any(t.error for t in outcome.turns):
            transcript.error = outcome.error

    async def turn_done(self, turn: TranscriptTurn) -> None:
        said = " ".join(turn.agent.text.split())[:120] or turn.error or "(no message)"
        marks = [c.outcome for c in turn.checks]
        tally = ", ".join(f"{marks.count(o)} {o}" for o in dict.fromkeys(marks))
        await self.run_.emit(
            "turn_finished",
            f"  {self.test.title} · turn {turn.index}: {describe_user(turn.user)} → {said}"
            + (f" [{tally}]" if tally else ""),
            test=self.test.id,
            turn=turn.index,
        )

    async def turn_checks(self, expect: list[Check], turn: TranscriptTurn) -> list[CheckResult]:
        results: dict[int, CheckResult] = {}
        cli = [(i, c) for i, c in enumerate(expect) if isinstance(c, VoiceflowCliCheck)]
        if cli:
            grader = self.similarity_grader(turn.index) if self.run_.judge else None
            graded = await checking.evaluate_voiceflow_cli([c for _, c in cli], turn, grader)
            results.update({i: r for (i, _), r in zip(cli, graded, strict=True)})
        for i, check in enumerate(expect):
            if isinstance(check, JudgeCheck):
                conversation = render_turns([*self.turns[:-1], turn])
                results[i] = await self.judged(check, conversation, turn.index, f"judge-{i}")
            elif not isinstance(check, VoiceflowCliCheck):
                results[i] = checking.evaluate(check, turn)
        return [results[i] for i in range(len(expect))]

    def similarity_grader(self, turn: int) -> checking.SimilarityGrader:
        judge = self.run_.judge
        assert judge is not None
        calls = 0

        async def grade(message: str, values: list[str]) -> JudgeVerdict:
            nonlocal calls
            calls += 1
            with scope(self.scope(turn, f"similarity-{calls}")):
                return await grade_similarity(judge, message, values)

        return grade

    def scope(self, turn: int, role: str) -> Scope:
        return Scope(suite=self.suite.name, test=self.test.id, turn=turn, role=role)

    async def conversation_checks(self) -> list[CheckResult]:
        conversation = render_turns(self.turns)
        return [
            await self.judged(check, conversation, None, f"conversation-judge-{i}")
            for i, check in enumerate(self.test.expect)
        ]

    async def judged(
        self, check: JudgeCheck, conversation: str, focus: int | None, role: str
    ) -> CheckResult:
        label = describe_check(check)
        judge = self.run_.judge
        if judge is None:
            return CheckResult(
                id=check.id,
                kind="judge",
                label=label,
                expected=check.criterion,
                outcome="to_grade",
                evidence="no judge configured (set VF_MCP_JUDGE_URL and VF_MCP_JUDGE_MODEL)",
            )
        with scope(self.scope(focus or len(self.turns), role)):
            verdict = await grade_criterion(judge, conversation, check.criterion, focus_turn=focus)
        passed = verdict.verdict == "pass"
        if passed and check.threshold is not None:
            passed = verdict.score is not None and verdict.score >= check.threshold
        return CheckResult(
            id=check.id,
            kind="judge",
            label=label,
            expected=check.criterion,
            outcome="passed" if passed else "failed",
            evidence=verdict.reasoning,
            verdict=verdict,
        )
