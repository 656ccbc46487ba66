"""One test of a suite, run once (one trial): its turns or its simulated user, then its checks.

The suite's run (`runner`) owns what tests share (the service factory, the judge, the turn cap,
progress); a `TestRun` drives one conversation and returns its `Transcript`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import JsonValue

from vf_mcp.conversation import ConversationService
from vf_mcp.domain.transcript import (
    CheckResult,
    JudgeUsage,
    JudgeVerdict,
    Transcript,
    TranscriptTurn,
    decide_outcome,
)
from vf_mcp.domain.turn import Choice
from vf_mcp.errors import UpstreamError, VfMcpError
from vf_mcp.evaluation import assertions, budgets, mocks, trajectory
from vf_mcp.evaluation import checks as checking
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.context import Scope, scope
from vf_mcp.evaluation.grounding import grounded
from vf_mcp.evaluation.judge import ChatModel, MeteredChat, grade_criterion, grade_similarity
from vf_mcp.evaluation.mocks import ActionResponder
from vf_mcp.evaluation.recording import STATE_ROLE
from vf_mcp.evaluation.script import (
    AlwaysCheck,
    Check,
    ConversationCheck,
    EventuallyCheck,
    GroundedCheck,
    JudgeCheck,
    LatencyCheck,
    NeverCheck,
    ScriptTest,
    Suite,
    VoiceflowCliCheck,
    describe_check,
)
from vf_mcp.evaluation.simulator import Simulator
from vf_mcp.evaluation.startstate import load_start_state
from vf_mcp.evaluation.trials import BudgetExhausted, TurnBudget
from vf_mcp.evaluation.turns import ConversationDriver
from vf_mcp.transcripts.render import describe_user, render_turns

# `config.excludeTypes: []`: every trace, so flows, blocks and the debug traces naming tools come.
EVERY_TRACE: list[str] = []


class SuiteHost(Protocol):
    """What a test needs from the run of its suite."""

    suite: Suite
    factory: ServiceFactory
    judge: ChatModel | None
    budget: TurnBudget
    trajectory: bool
    """The suite checks flows, blocks or tools (`Suite.needs_trajectory`, computed once)."""

    async def emit(self, kind: str, text: str, **fields: object) -> None: ...


class StateKeeper(Protocol):
    """Where the runtime state after each turn goes (`--record` keeps it for `from_state`)."""

    def keep_state(
        self, scope: Scope, user_id: str, state: dict[str, Any], choices: list[Choice]
    ) -> None: ...


def new_user_id(suite: Suite) -> str:
    # voiceflow-cli names its users test-<uuid4>; our own suites use a shorter random id.
    if suite.dialect == "voiceflow-cli":
        return f"test-{uuid.uuid4()}"
    return f"{suite.user_id_prefix}{secrets.token_hex(6)}"


class TestRun:
    __test__ = False  # not a pytest class, despite the name

    def __init__(
        self,
        host: SuiteHost,
        test: ScriptTest,
        user: str | None,
        *,
        trial: int | None = None,
        environment: str | None = None,
        state_keeper: StateKeeper | None = None,
    ) -> None:
        self.host = host
        self.state_keeper = state_keeper
        self.service: ConversationService | None = None
        self.unkept: list[str] = []
        self.suite = host.suite
        self.test = test
        self.trial = trial
        self.user_id = user or new_user_id(host.suite)
        self.environment = environment or test.environment or host.suite.environment
        self.turns: list[TranscriptTurn] = []
        self.responder = ActionResponder(test.on_action, host.suite.on_action)
        # This test's own meter on the shared judge: concurrent tests each count their own.
        self.judge = MeteredChat(host.judge) if host.judge is not None else None
        # Trials are recorded (and replayed) apart: their turns share numbers.
        self.key = test.id if trial is None else f"{test.id}#{trial}"

    def preset(self) -> dict[str, JsonValue]:
        return {**self.suite.variables, **self.test.variables}

    def driver(self, service: ConversationService) -> ConversationDriver:
        return ConversationDriver(
            service,
            self.user_id,
            suite=self.suite.name,
            test=self.key,
            environment=self.environment,
            exclude_types=EVERY_TRACE if self.host.trajectory else None,
            responder=self.responder,
            budget=self.host.budget,
            namespace=self.host.factory.namespace,
            clock=self.host.factory.clock,
        )

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
            trial=self.trial,
        )
        cut: str | None = None
        self.service = service
        try:
            await self._conversation(self.driver(service), transcript)
        except BudgetExhausted as exc:
            transcript.turns, cut = self.turns, str(exc)
        except UpstreamError as exc:  # the judge failed, or answered unusably
            transcript.turns = self.turns
            transcript.error = f"judge: {exc.message}"
        except Exception as exc:  # one broken test must not take the others down
            transcript.turns = self.turns
            transcript.error = f"{type(exc).__name__}: {exc}"
        transcript.warnings += self.responder.unused_own() if cut is None else [cut]
        transcript.warnings += self.unkept
        self.spent(transcript, self.judge.usage if self.judge is not None else None)
        transcript.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        transcript.outcome = decide_outcome(transcript)
        if cut is not None and transcript.outcome in ("passed", "to_grade"):
            transcript.outcome = "skipped"  # cut short by the cap: nothing is known of the rest
        return transcript

    def spent(self, transcript: Transcript, usage: JudgeUsage | None) -> None:
        """What the judge spent on the test, and its budget checked (`max_judge_tokens`)."""
        transcript.judge_usage = usage
        limit = self.test.max_judge_tokens or self.suite.max_judge_tokens
        if limit is not None:
            transcript.checks.append(budgets.judge_tokens(limit, usage))

    async def _conversation(self, driver: ConversationDriver, transcript: Transcript) -> None:
        if self.test.simulate is not None:
            await self.simulate(driver, transcript)
        else:
            await self.script(driver)
            transcript.turns = self.turns
        if not transcript.error and not any(t.error for t in transcript.turns):
            transcript.checks += await self.conversation_checks()

    async def script(self, driver: ConversationDriver) -> None:
        stop_at_failure = self.suite.on_failure == "stop"
        steps = self.test.turns
        if self.test.from_state is not None:
            await self.place_start_state(driver.service)
        for index, step in enumerate(steps, start=1):
            preset = self.preset() if index == 1 else None
            turn = await driver.send(index, step, variables=preset or None)
            self.turns.append(turn)
            stuck = None
            if turn.error is None:
                turn.checks = await self.turn_checks(step.expect, turn)
                # The next step answers the action itself only when it is a raw action.
                goes_on = index < len(steps) and steps[index].action is None
                stuck = mocks.unanswered(turn) if goes_on else None
                if stuck is not None:
                    turn.checks.append(stuck)
            await self.turn_done(turn)
            failed = any(c.outcome in ("failed", "error") for c in turn.checks)
            if turn.error is not None or stuck is not None or (stop_at_failure and failed):
                break

    async def simulate(self, driver: ConversationDriver, transcript: Transcript) -> None:
        sim = self.test.simulate
        assert sim is not None
        sim = sim.model_copy(update={"launch_variables": {**self.preset(), **sim.launch_variables}})

        async def on_turn(turn: TranscriptTurn) -> None:
            self.turns.append(turn)
            await self.turn_done(turn)

        if sim.tester is not None:
            async with self.host.factory.open(
                streaming=False, api_key=sim.tester.api_key
            ) as tester:
                tester_driver = ConversationDriver(
                    tester,
                    f"voiceflow-agent-tester-{self.user_id}",
                    suite=self.suite.name,
                    test=self.key,
                    environment=sim.tester.environment,
                    role="tester",
                    namespace=self.host.factory.namespace,
                    clock=self.host.factory.clock,
                )
                outcome = await Simulator(
                    sim, driver, chat=self.judge, tester=tester_driver, on_turn=on_turn
                ).run()
        else:
            outcome = await Simulator(sim, driver, chat=self.judge, on_turn=on_turn).run()
        transcript.turns = outcome.turns
        transcript.simulation = outcome.info
        transcript.checks.append(outcome.goal)
        if outcome.error and not any(t.error for t in outcome.turns):
            transcript.error = outcome.error

    async def place_start_state(self, service: ConversationService) -> None:
        """Put the saved state in place for this test's user, before its first turn (turn 0)."""
        assert self.test.from_state is not None
        saved = load_start_state(self.test.from_state)
        with scope(self.scope(0, "from-state")):
            await service.replace_state(
                self.user_id,
                saved.for_user(self.user_id),
                environment=self.environment,
                namespace=self.host.factory.namespace,
            )

    async def keep_state(self, turn: TranscriptTurn) -> None:
        """The state after `turn`, read once and handed to the keeper (a recording)."""
        if self.state_keeper is None or self.service is None or turn.error is not None:
            return
        where = self.scope(turn.index, STATE_ROLE)
        try:
            with scope(where):
                result = await self.service.get_state(
                    self.user_id,
                    environment=self.environment,
                    namespace=self.host.factory.namespace,
                )
        except VfMcpError as exc:  # the test itself is unharmed: only a fork from here is lost
            self.unkept.append(
                f"the state after turn {turn.index} was not recorded ({exc.message}): "
                "no test can start from that turn"
            )
            return
        if result.state is not None:
            wire = result.state.to_wire()
            self.state_keeper.keep_state(where, self.user_id, wire, turn.agent.choices)

    async def turn_done(self, turn: TranscriptTurn) -> None:
        await self.keep_state(turn)
        said = " ".join(turn.agent.text.split())[:120] or turn.error or "(no message)"
        marks = [c.outcome for c in turn.checks]
        tally = ", ".join(f"{marks.count(o)} {o}" for o in dict.fromkeys(marks))
        await self.host.emit(
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
            grader = self.similarity_grader(turn.index) if self.judge else None
            graded = await checking.evaluate_voiceflow_cli([c for _, c in cli], turn, grader)
            results.update({i: r for (i, _), r in zip(cli, graded, strict=True)})
        for i, check in enumerate(expect):
            if isinstance(check, JudgeCheck):
                conversation = render_turns([*self.turns[:-1], turn])
                results[i] = await self.judged(check, conversation, turn.index, f"judge-{i}")
            elif isinstance(check, GroundedCheck):
                conversation = render_turns([*self.turns[:-1], turn])
                with scope(self.scope(turn.index, f"grounded-{i}")):
                    results[i] = await grounded(check, turn, conversation, self.judge)
            elif not isinstance(check, VoiceflowCliCheck):
                results[i] = checking.evaluate(check, turn)
        return [results[i] for i in range(len(expect))]

    def similarity_grader(self, turn: int) -> checking.SimilarityGrader:
        judge = self.judge
        assert judge is not None
        calls = 0

        async def grade(message: str, values: list[str]) -> JudgeVerdict:
            nonlocal calls
            calls += 1
            with scope(self.scope(turn, f"similarity-{calls}")):
                return await grade_similarity(judge, message, values)

        return grade

    def scope(self, turn: int, role: str) -> Scope:
        return Scope(suite=self.suite.name, test=self.key, turn=turn, role=role)

    async def conversation_checks(self) -> list[CheckResult]:
        return [await self.conversation_check(i, c) for i, c in enumerate(self.test.expect)]

    async def conversation_check(self, index: int, check: ConversationCheck) -> CheckResult:
        if isinstance(check, JudgeCheck):
            conversation = render_turns(self.turns)
            return await self.judged(check, conversation, None, f"conversation-judge-{index}")
        if isinstance(check, AlwaysCheck | NeverCheck | EventuallyCheck):
            return assertions.evaluate(check, self.turns)
        if isinstance(check, LatencyCheck):
            return budgets.latency(check, budgets.timed(self.turns), "the conversation")
        return trajectory.evaluate(check, self.turns)

    async def judged(
        self, check: JudgeCheck, conversation: str, focus: int | None, role: str
    ) -> CheckResult:
        label = describe_check(check)
        judge = self.judge
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
        return judged_result(check, verdict)


def judged_result(check: JudgeCheck, verdict: JudgeVerdict) -> CheckResult:
    """A criterion's result from the judge's verdict (and the check's threshold on its score)."""
    passed = verdict.verdict == "pass"
    if passed and check.threshold is not None:
        passed = verdict.score is not None and verdict.score >= check.threshold
    return CheckResult(
        id=check.id,
        kind="judge",
        label=describe_check(check),
        expected=check.criterion,
        outcome="passed" if passed else "failed",
        evidence=verdict.reasoning,
        verdict=verdict,
    )
