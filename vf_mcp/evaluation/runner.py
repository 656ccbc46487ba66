"""Running suites: tests in parallel (or in order on one shared user), trials, the turn cap.

`run_suite` returns one `Transcript` per test (per trial, for a repeated test) with every check's
outcome and evidence. Criteria that need a judge are graded when a judge (`ChatModel`) is given,
otherwise they come back "to_grade" with the transcript for a person or another model to grade.
One test's conversation is a `testrun.TestRun`. A run is one trace (`tracing`); a suite's
`latency_ms` is checked over all its turns, and judge tokens are summed per suite and run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import anyio
from pydantic import BaseModel

from vf_mcp.conversation import ConversationService
from vf_mcp.domain.transcript import JudgeUsage, RunResult, SuiteResult, TestOutcome, Transcript
from vf_mcp.evaluation import budgets, tracing
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.judge import ChatModel
from vf_mcp.evaluation.mocks import unused_warnings
from vf_mcp.evaluation.plan import rounds_of, trials_of
from vf_mcp.evaluation.script import ScriptTest, Suite
from vf_mcp.evaluation.testrun import StateKeeper, TestRun, new_user_id
from vf_mcp.evaluation.trials import DEFAULT_MAX_TURNS, TurnBudget, summarize, tests_and_trials

DEFAULT_CONCURRENCY = 4

__all__ = [
    "DEFAULT_CONCURRENCY",
    "FinishedSoFar",
    "ProgressCallback",
    "ProgressEvent",
    "RunOptions",
    "new_user_id",
    "run_suite",
    "run_suites",
]


class ProgressEvent(BaseModel):
    """One step of a run, with a line of text ready to print."""

    kind: Literal["suite_started", "test_started", "turn_finished", "test_finished", "suite_done"]
    suite: str
    test: str | None = None
    turn: int | None = None
    trial: int | None = None
    outcome: TestOutcome | None = None
    text: str
    tests_total: int
    tests_done: int


ProgressCallback = Callable[[ProgressEvent], Awaitable[None]]


@dataclass(frozen=True)
class RunOptions:
    """How a run goes beyond each suite's own settings."""

    repeat: int | None = None
    """Trials of every test that sets no `repeat` of its own (of the whole sequence, for a suite
    whose tests share one user)."""
    max_turns: int | None = DEFAULT_MAX_TURNS
    """The run's cap on requests to the agent; None for no cap."""
    environment: str | None = None
    """Every test runs on this environment, whatever the suites say (comparing environments)."""
    state_keeper: StateKeeper | None = None
    """Given the runtime state after every turn (`--record` keeps it, for `from_state`)."""


class FinishedSoFar:
    """The tests a run has finished, kept as they finish: what a run cancelled midway (Ctrl-C,
    `cancel_run`, its worker stopping) still reports instead of nothing."""

    def __init__(self) -> None:
        self.suites: list[_SuiteRun] = []
        self.budget: TurnBudget | None = None

    def partial(self, stopped: str) -> RunResult:
        """The finished tests of every suite begun, with `stopped` saying why the rest is not."""
        suites = [s.result_so_far(complete=s.all_done) for s in self.suites]
        used = self.budget.used if self.budget is not None else 0
        usage = JudgeUsage.total(s.judge_usage for s in suites)
        return RunResult(suites=suites, turns_sent=used, stopped=stopped, judge_usage=usage)


async def run_suites(
    suites: Sequence[Suite],
    factory: ServiceFactory,
    *,
    judge: ChatModel | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    options: RunOptions | None = None,
    finished: FinishedSoFar | None = None,
) -> RunResult:
    """Run suites one after another, sharing one concurrency limit and one turn cap; each test
    is kept in `finished` as it ends, for a caller that may cancel the run."""
    options = options or RunOptions()
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    budget = TurnBudget(options.max_turns)
    finished = finished or FinishedSoFar()
    finished.budget = budget
    results = []
    with tracing.run_span(len(suites)) as span:
        for suite in suites:
            run = _SuiteRun(suite, factory, judge, limiter, on_progress, budget, options)
            finished.suites.append(run)
            results.append(await run.run())
        stopped = budget.reason if budget.exhausted else None
        result = RunResult(
            suites=results,
            turns_sent=budget.used,
            stopped=stopped,
            judge_usage=JudgeUsage.total(s.judge_usage for s in results),
        )
        tracing.finish_run(span, result)
    return result


async def run_suite(
    suite: Suite,
    factory: ServiceFactory,
    *,
    judge: ChatModel | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressCallback | None = None,
    limiter: anyio.CapacityLimiter | None = None,
    options: RunOptions | None = None,
) -> SuiteResult:
    """Run one suite's tests and return each as a transcript with its checks."""
    options = options or RunOptions()
    return await _SuiteRun(
        suite,
        factory,
        judge,
        limiter or anyio.CapacityLimiter(max(1, concurrency)),
        on_progress,
        TurnBudget(options.max_turns),
        options,
    ).run()


@dataclass(frozen=True)
class _Job:
    index: int
    test: ScriptTest
    trial: int | None


class _SuiteRun:
    def __init__(
        self,
        suite: Suite,
        factory: ServiceFactory,
        judge: ChatModel | None,
        limiter: anyio.CapacityLimiter,
        on_progress: ProgressCallback | None,
        budget: TurnBudget,
        options: RunOptions,
    ) -> None:
        self.suite = suite
        self.factory = factory
        self.judge = judge
        self.limiter = limiter
        self.on_progress = on_progress
        self.budget = budget
        self.options = options
        self.trajectory = suite.needs_trajectory
        self.jobs = self._jobs()
        self.results: dict[tuple[int, int | None], Transcript] = {}
        self.mocks_used: set[str] = set()
        self.stopped = False
        self.done = 0
        trials = {i: sum(1 for j in self.jobs if j.index == i) * self._rounds()
                  for i in range(len(suite.tests))}  # fmt: skip
        self.trace = tracing.SuiteTrace(suite.name, trials)
        self.started_at, self.started = datetime.now(UTC), time.perf_counter()

    def _jobs(self) -> list[_Job]:
        jobs = []
        for index, test in enumerate(self.suite.tests):
            count = trials_of(self.suite, test, self.options.repeat)
            for trial in range(1, count + 1):
                jobs.append(_Job(index, test, trial if count > 1 else None))
        return jobs

    async def emit(self, kind: str, text: str, **fields: object) -> None:
        if self.on_progress is not None:
            event = ProgressEvent.model_validate(
                {
                    "kind": kind,
                    "suite": self.suite.name,
                    "text": text,
                    "tests_total": len(self.jobs) * self._rounds(),
                    "tests_done": self.done,
                    **fields,
                }
            )
            await self.on_progress(event)

    @property
    def all_done(self) -> bool:
        return self.done == len(self.jobs) * self._rounds()

    def _rounds(self) -> int:
        return rounds_of(self.suite, self.options.repeat)

    async def run(self) -> SuiteResult:
        self.started_at, self.started = datetime.now(UTC), time.perf_counter()
        size = tests_and_trials(len(self.suite.tests), len(self.jobs) * self._rounds())
        await self.emit("suite_started", f"Suite {self.suite.name}: {size}")
        with self.trace.suite():
            async with self.factory.open(streaming=self.suite.streaming) as service:
                if self.suite.new_user_per_test:
                    async with anyio.create_task_group() as group:
                        for job in self.jobs:
                            group.start_soon(self.run_one, service, job, None)
                else:
                    await self._in_sequence(service)
            result = self.result_so_far()
            self.trace.finish_suite(result)
        outcomes: tuple[TestOutcome, ...] = ("passed", "failed", "error", "to_grade", "skipped")
        counts = ", ".join(f"{n} {o}" for o in outcomes if (n := result.count(o)))
        await self.emit("suite_done", f"Suite {self.suite.name}: {counts}")
        return result

    async def _in_sequence(self, service: ConversationService) -> None:
        # One user for the whole suite: the tests continue one conversation, in order; a
        # repeated suite runs that sequence again with a fresh user each time.
        rounds = self._rounds()
        for number in range(1, rounds + 1):
            shared = new_user_id(self.suite)
            for job in self.jobs:
                trial = number if rounds > 1 else None
                await self.run_one(service, _Job(job.index, job.test, trial), shared)

    def result_so_far(self, *, complete: bool = True) -> SuiteResult:
        """The suite's tests that finished (all of them, once `run` returned), in file order;
        an incomplete suite cannot tell a mock never needed from one not needed yet."""
        order = sorted(self.results, key=lambda key: (key[0], key[1] or 0))
        tests = [self.results[key] for key in order]
        repeated = {key[0] for key in order if key[1] is not None}
        trials = [
            summarize(self.suite.tests[i].id, [t for k, t in self.results.items() if k[0] == i])
            for i in sorted(repeated)
        ]
        unused = sorted({m.name for m in self.suite.on_action} - self.mocks_used)
        if not complete:
            unused = []
        return SuiteResult(
            name=self.suite.name,
            source=self.suite.source,
            dialect=self.suite.dialect,
            started_at=self.started_at,
            duration_ms=round((time.perf_counter() - self.started) * 1000, 1),
            tests=tests,
            trials=trials,
            warnings=[*self.suite.warnings, *unused_warnings(unused, "any test of the suite")],
            checks=budgets.suite_checks(self.suite, tests),
            judge_usage=JudgeUsage.total(t.judge_usage for t in tests),
        )

    def _title(self, job: _Job) -> str:
        trial = f" (trial {job.trial})" if job.trial is not None else ""
        return f"{self.suite.name} / {job.test.title}{trial}"

    async def run_one(self, service: ConversationService, job: _Job, user: str | None) -> None:
        if self.stopped or self.budget.exhausted:
            await self.skip(job)
            return
        async with self.limiter:
            if self.stopped or self.budget.exhausted:
                await self.skip(job)
                return
            await self.emit("test_started", f"▶ {self._title(job)}", test=job.test.id)
            run = TestRun(
                self,
                job.test,
                user,
                trial=job.trial,
                environment=self.options.environment,
                state_keeper=self.options.state_keeper,
            )
            with self.trace.trial(job.index, job.test.id, job.trial) as span:
                transcript = await run.run(service)
                self.trace.finish_trial(span, job.index, transcript)
        self.mocks_used |= run.responder.used
        self.results[(job.index, job.trial)] = transcript
        self.done += 1
        if self.suite.on_failure == "stop" and transcript.outcome in ("failed", "error"):
            self.stopped = True
        await self.emit(
            "test_finished",
            f"{transcript.outcome.upper()} {self._title(job)} "
            f"({len(transcript.turns)} turns, {transcript.duration_ms / 1000:.1f} s)",
            test=job.test.id,
            trial=job.trial,
            outcome=transcript.outcome,
        )

    async def skip(self, job: _Job) -> None:
        self.done += 1
        why = (
            self.budget.reason
            if self.budget.exhausted
            else "not run: an earlier test failed and on_failure is stop"
        )
        test = job.test
        transcript = self.results[(job.index, job.trial)] = Transcript(
            suite=self.suite.name,
            test_id=test.id,
            name=test.title,
            description=test.description,
            kind="simulated" if test.simulate else "script",
            environment=self.options.environment or test.environment or self.suite.environment,
            started_at=datetime.now(UTC),
            outcome="skipped",
            trial=job.trial,
            warnings=[why],
        )
        with self.trace.trial(job.index, test.id, job.trial) as span:
            self.trace.finish_trial(span, job.index, transcript)
        await self.emit(
            "test_finished",
            f"SKIPPED {self._title(job)}",
            test=test.id,
            trial=job.trial,
            outcome="skipped",
        )
