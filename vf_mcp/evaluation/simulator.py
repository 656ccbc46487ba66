"""Simulated users: a model (or another Voiceflow agent) plays the user toward a goal.

Two loops:
- the judge model plays the user (`Simulation` without `tester`), until it says its goal is met,
  the agent ends, or the turn limit; with `goal_check: every_turn` the judge is asked after each
  answer whether the goal is met, as voiceflow-cli's agent tests do;
- another Voiceflow agent plays the user (`tester`), with the messages relayed both ways, as
  voiceflow-cli's `voiceflowAgentTesterConfig` tests do.
Either way the goal is finally graded by the judge, or left "to_grade" without one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from vf_mcp.domain.transcript import (
    CheckResult,
    JudgeVerdict,
    SimulationInfo,
    StopReason,
    TranscriptTurn,
)
from vf_mcp.errors import UpstreamError
from vf_mcp.evaluation import prompts
from vf_mcp.evaluation.context import Scope, scope
from vf_mcp.evaluation.judge import ChatMessage, ChatModel, grade_goal, parse_user_reply
from vf_mcp.evaluation.mocks import unanswered
from vf_mcp.evaluation.script import Simulation, TurnStep
from vf_mcp.evaluation.turns import ConversationDriver
from vf_mcp.transcripts.records import kept_traces
from vf_mcp.transcripts.render import render_turns as _conversation
from vf_mcp.voiceflow.traces import BaseTrace, EndTrace

TurnCallback = Callable[[TranscriptTurn], Awaitable[None]]


class SimulationOutcome(BaseModel):
    turns: list[TranscriptTurn] = Field(default_factory=list)
    info: SimulationInfo
    goal: CheckResult
    error: str | None = None


def xvd_message(traces: Sequence[BaseTrace] | None) -> str:
    """The text voiceflow-cli relays from a turn: every trace's message joined with spaces.

    Kept quirk for quirk (`ProcessResponses` + `ExtractMessage`): the space goes before every
    message but the first *trace*, so a turn that opens with a choice trace gets a leading space.
    """
    if not traces:
        return ""
    if len(traces) > 1:
        joined = ""
        for i, trace in enumerate(traces):
            if text := trace.relayed_message:
                joined += (" " if i > 0 else "") + text
        if joined:
            return joined
    return traces[0].relayed_message or ""


class Simulator:
    def __init__(
        self,
        sim: Simulation,
        target: ConversationDriver,
        *,
        chat: ChatModel | None,
        tester: ConversationDriver | None = None,
        on_turn: TurnCallback | None = None,
    ) -> None:
        self.sim = sim
        self.target = target
        self.chat = chat
        self.tester = tester
        self.on_turn = on_turn
        self.turns: list[TranscriptTurn] = []
        self.goal_verdict: JudgeVerdict | None = None

    async def run(self) -> SimulationOutcome:
        kind: Literal["judge_model", "voiceflow_agent"] = (
            "voiceflow_agent" if self.tester is not None else "judge_model"
        )
        info = SimulationInfo(
            tester=kind,
            persona=self.sim.persona if self.tester is None else "",
            goal=self.sim.goal,
            max_turns=self.sim.max_turns,
        )
        try:
            if self.tester is not None:
                reason = await self._relay(self.tester)
            elif self.chat is None:
                reason = None
            else:
                reason = await self._play(self.chat)
        except UpstreamError as exc:  # the judge failed, or answered unusably
            info.stop_reason = "error"
            return SimulationOutcome(
                turns=self.turns, info=info, goal=self._goal_result(None), error=exc.message
            )
        info.stop_reason = reason
        error = next((t.error for t in self.turns if t.error), None)
        if self.chat is None and self.tester is None:
            goal = self._to_grade("needs a judge model (VF_MCP_JUDGE_URL) to play the user")
            return SimulationOutcome(turns=self.turns, info=info, goal=goal)
        verdict = self.goal_verdict
        if verdict is None and self.chat is not None and error is None:
            try:
                verdict = await self._judge_goal(self.chat, final=True)
            except UpstreamError as exc:  # the judge failed, or answered unusably
                return SimulationOutcome(
                    turns=self.turns, info=info, goal=self._goal_result(None), error=exc.message
                )
        return SimulationOutcome(
            turns=self.turns, info=info, goal=self._goal_result(verdict), error=error
        )

    # -- the judge model plays the user ---------------------------------------------------------

    async def _play(self, chat: ChatModel) -> StopReason:
        every_turn = self.sim.goal_check == "every_turn"
        if self.sim.launch and (reason := await self._send(TurnStep(launch=True), launch=True)):
            return reason
        sent = 0
        while sent < self.sim.max_turns:
            last = self.turns[-1] if self.turns else None
            if last is not None and self._agent_stopped(last, every_turn):
                return "agent_ended"
            if every_turn and last is not None:
                verdict = await self._judge_goal(chat, final=False)
                if verdict.verdict == "pass":
                    self.goal_verdict = verdict
                    return "goal_met"
            reply = await self._next_user_message(chat, sent + 1)
            if reply is None:
                return "goal_met"
            sent += 1
            if reason := await self._send(self._step_for(reply, last)):
                return reason
        last = self.turns[-1] if self.turns else None
        if last is not None and self._agent_stopped(last, every_turn):
            return "agent_ended"
        return "turn_limit"

    def _agent_stopped(self, turn: TranscriptTurn, every_turn: bool) -> bool:
        if every_turn:  # voiceflow-cli stops on an `end` trace only
            return any(isinstance(t, EndTrace) for t in kept_traces(turn) or [])
        return turn.status in ("ended", "handoff", "error")

    async def _next_user_message(self, chat: ChatModel, number: int) -> str | None:
        system = prompts.simulated_user_system(
            self.sim.persona, self.sim.goal, self.sim.user_information
        )
        prompt = prompts.simulated_user_turn(_conversation(self.turns), number, self.sim.max_turns)
        with scope(self._scope("user-model")):
            answer = await chat.complete(
                [
                    ChatMessage(role="system", content=system),
                    ChatMessage(role="user", content=prompt),
                ],
                purpose="simulated user",
            )
        reply = parse_user_reply(answer.content)
        if self.sim.goal_check == "at_end" and (reply.done or not reply.message):
            return None
        return reply.message

    @staticmethod
    def _step_for(message: str, last: TranscriptTurn | None) -> TurnStep:
        # A reply that is exactly a button's label presses that button.
        if last is not None:
            wanted = " ".join(message.split()).casefold()
            for choice in last.agent.choices:
                if " ".join(choice.label.split()).casefold() == wanted:
                    return TurnStep(choice=choice.label)
        return TurnStep(message=message)

    # -- another Voiceflow agent plays the user -------------------------------------------------

    async def _relay(self, tester: ConversationDriver) -> StopReason:
        launch_turn: TranscriptTurn | None = None
        if self.sim.launch:
            if reason := await self._send(TurnStep(launch=True), launch=True):
                return reason
            launch_turn = self.turns[-1]
        tester_turns = 0

        async def to_tester(step: TurnStep, variables: dict[str, Any] | None = None) -> str:
            nonlocal tester_turns
            tester_turns += 1
            turn = await tester.send(tester_turns, step, variables=variables)
            if turn.error is not None:
                raise _TesterFailed(turn.error)
            return xvd_message(kept_traces(turn))

        try:
            tester_vars = dict(self.sim.tester.variables) if self.sim.tester else None
            await to_tester(TurnStep(launch=True), tester_vars)
            opening = xvd_message(kept_traces(launch_turn)) if launch_turn else ""
            tester_says = await to_tester(TurnStep(message=opening))
            sent = 0
            while sent < self.sim.max_turns:
                if not tester_says:
                    return "tester_silent"
                sent += 1
                if reason := await self._send(TurnStep(message=tester_says)):
                    return reason
                if self.chat is not None:
                    verdict = await self._judge_goal(self.chat, final=False)
                    if verdict.verdict == "pass":
                        self.goal_verdict = verdict
                        return "goal_met"
                if any(isinstance(t, EndTrace) for t in kept_traces(self.turns[-1]) or []):
                    return "agent_ended"
                tester_says = await to_tester(
                    TurnStep(message=xvd_message(kept_traces(self.turns[-1])))
                )
        except _TesterFailed as exc:
            self.turns.append(
                TranscriptTurn(
                    index=len(self.turns) + 1,
                    user=TurnStep(message="").user_action(None),
                    error=f"the tester agent failed: {exc}",
                )
            )
            return "error"
        return "turn_limit"

    # -- shared ---------------------------------------------------------------------------------

    async def _send(self, step: TurnStep, *, launch: bool = False) -> StopReason | None:
        variables = dict(self.sim.launch_variables) if launch else None
        turn = await self.target.send(len(self.turns) + 1, step, variables=variables)
        # A simulated user cannot answer a custom action: only a mock can (`on_action`).
        stuck = unanswered(turn) if turn.error is None else None
        if stuck is not None:
            turn.checks.append(stuck)
        self.turns.append(turn)
        if self.on_turn is not None:
            await self.on_turn(turn)
        if turn.error is not None:
            return "error"
        return "unanswered_action" if stuck is not None else None

    def _scope(self, role: str) -> Scope:
        return Scope(
            suite=self.target.suite, test=self.target.test, turn=len(self.turns), role=role
        )

    async def _judge_goal(self, chat: ChatModel, *, final: bool) -> JudgeVerdict:
        with scope(self._scope("goal-final" if final else "goal")):
            return await grade_goal(chat, _conversation(self.turns), self.sim.goal)

    def _goal_result(self, verdict: JudgeVerdict | None) -> CheckResult:
        if verdict is None:
            return self._to_grade("the goal was not graded")
        return CheckResult(
            kind="goal",
            label=f"goal: {self.sim.goal}",
            expected=self.sim.goal,
            outcome="passed" if verdict.verdict == "pass" else "failed",
            evidence=verdict.reasoning,
            verdict=verdict,
        )

    def _to_grade(self, why: str) -> CheckResult:
        return CheckResult(
            kind="goal",
            label=f"goal: {self.sim.goal}",
            expected=self.sim.goal,
            outcome="to_grade",
            evidence=why,
        )


class _TesterFailed(Exception):
    pass
