"""Plain-text views of a transcript: what a judge reads, what a failing report shows.

Nothing volatile (latency, user ids, timestamps) goes into the judge's view: the same conversation
must give the same prompt, so recorded judge replies can be replayed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from vf_mcp.domain.transcript import (
    CheckResult,
    HostReply,
    RunResult,
    Transcript,
    TranscriptTurn,
    UserAction,
)
from vf_mcp.domain.turn import AgentMessage
from vf_mcp.summary import choices_text, describe_change
from vf_mcp.transcripts.book import LIVE_SUITE

OUTCOME_MARKS = {
    "passed": "PASS",
    "failed": "FAIL",
    "to_grade": "TO GRADE",
    "error": "ERROR",
    "not_run": "NOT RUN",
    "skipped": "SKIPPED",
}
"""How every report marks a check's or a test's outcome."""


def _compact(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_user(user: UserAction) -> str:
    """The user's side of a turn in one line."""
    match user.kind:
        case "launch":
            said = "[starts the conversation]"
        case "message":
            said = user.text or ""
        case "choice" | "button":
            label = user.text if user.text is not None else user.choice
            said = f"[presses the button {label!s}]" if label is not None else "[presses a button]"
        case "event":
            said = f"[event {user.text}]"
        case "intent":
            payload = (user.action or {}).get("payload")
            intent = payload.get("intent") if isinstance(payload, dict) else None
            name = intent.get("name") if isinstance(intent, dict) else None
            said = f"[intent {name}]" if name else f"[intent {_compact(user.action)}]"
        case _:
            said = f"[action {_compact(user.action)}]"
    if user.variables:
        said += f" (with variables {_compact(user.variables)})"
    return said


def _host_line(reply: HostReply) -> str:
    sent = _compact(reply.reply)
    if reply.variables:
        sent += f" (with variables {_compact(reply.variables)})"
    return f"Host [mock]: answers {reply.action} with {sent}"


def _message_lines(message: AgentMessage) -> list[str]:
    if message.kind == "text":
        return [f"Agent: {message.text}"]
    if message.kind in ("card", "carousel"):
        return [
            f"Agent [card]: {' — '.join(p for p in (c.title, c.description) if p) or '(untitled)'}"
            for c in message.cards
        ]
    if message.kind in ("image", "audio"):
        url = message.media.url if message.media is not None else None
        return [f"Agent [{message.kind}]: {url or 'inline data'}"]
    return [f"Agent [{message.kind}]: {message.text}"]


def agent_lines(turn: TranscriptTurn) -> list[str]:
    lines: list[str] = []
    actions = list(turn.agent.custom_actions)
    replies = sorted(turn.host_replies, key=lambda r: r.after_message)

    def host(reply: HostReply) -> None:
        # The action a mock answered, then the answer, where they happened in the turn.
        asked = next((a for a in actions if a.name == reply.action), None)
        if asked is not None:
            actions.remove(asked)
            lines.append(f"Custom action: {asked.name} {_compact(asked.payload)}")
        lines.append(_host_line(reply))

    for number, message in enumerate(turn.agent.messages):
        while replies and replies[0].after_message <= number:
            host(replies.pop(0))
        lines += _message_lines(message)
    for reply in replies:
        host(reply)
    if turn.agent.choices:
        lines.append("Buttons: " + choices_text([(c.number, c.label) for c in turn.agent.choices]))
    for action in actions:
        lines.append(f"Custom action: {action.name} {_compact(action.payload)}")
    if not lines and turn.status is not None:
        lines.append("Agent: (no message)")
    return lines


def render_turn_text(turn: TranscriptTurn, *, with_checks: bool = False) -> str:
    lines = [f"Turn {turn.index}", f"User: {describe_user(turn.user)}"]
    if turn.error is not None:
        lines.append(f"Error: {turn.error}")
    lines += agent_lines(turn)
    if turn.variables_changed:
        changes = ", ".join(
            describe_change(c.name, c.before, c.after) for c in turn.variables_changed
        )
        lines.append(f"Variables: {changes}")
    if turn.status is not None:
        lines.append(f"Status: {turn.status}")
    if with_checks:
        # Reports show what the agent ran and retrieved; the judge reads the words only.
        lines += _observed(turn)
        lines += [render_check(c) for c in turn.checks]
    return "\n".join(lines)


def _observed(turn: TranscriptTurn) -> list[str]:
    lines = []
    if turn.trajectory is not None and turn.trajectory.steps:
        shown = []
        for step in turn.trajectory.steps:
            label = step.name or step.id or f"unnamed call {step.call_id or '?'}"
            shown.append(f"{step.kind} {label}")
        lines.append("Ran: " + ", ".join(shown))
    if turn.retrieval:
        sources = ", ".join(dict.fromkeys(c.source or c.document_id or "?" for c in turn.retrieval))
        lines.append(f"Retrieved: {len(turn.retrieval)} chunk(s) from {sources}")
    return lines


def render_check(check: CheckResult) -> str:
    line = f"  [{OUTCOME_MARKS[check.outcome]}] {check.label}"
    if check.outcome != "passed" and check.evidence:
        line += f" — {check.evidence}"
    if check.verdict is not None and check.verdict.reasoning:
        score = f" score {check.verdict.score:.2f}" if check.verdict.score is not None else ""
        line += f" (judge{score}: {check.verdict.reasoning})"
    return line


def render_turns(turns: list[TranscriptTurn]) -> str:
    """The conversation as the judge and the simulated user see it."""
    return "\n\n".join(render_turn_text(t) for t in turns) or "(the agent has said nothing yet)"


def render_conversation(transcript: Transcript, *, upto: int | None = None) -> str:
    return render_turns([t for t in transcript.turns if upto is None or t.index <= upto])


TEXT_BUDGET = 40_000
"""The most characters one page of a run or a transcript puts in a tool's text (about 10k
tokens, where Claude Code starts to warn; it files results over 50,000 characters away and shows
the model a 2 KB preview). A page holds at least one test or turn, then stops at this budget."""
Rest = Callable[[int], str]
"""How to read on from an offset: the call that returns the next page, in words."""


def render_transcript(
    transcript: Transcript,
    *,
    offset: int = 0,
    limit: int | None = None,
    budget: int | None = None,
    rest: Rest | None = None,
) -> str:
    """The whole record, checks included: for reports and the `transcript` resource.

    With a `budget` (a tool's text) its first failure comes first, after the verdict, and only a
    page of its turns follows: from `offset`, at most `limit`, within `budget` characters; a last
    line says which turns it shows and, with `rest`, how to read on."""
    head = [f"{transcript.suite} / {transcript.name}: {_header_verdict(transcript)}"]
    failure = transcript.first_failure() if budget is not None else None
    if failure is not None:
        head.append(f"First failure: {render_check(failure).strip()}")
    if transcript.description:
        head.append(transcript.description)
    if transcript.simulation is not None:
        sim = transcript.simulation
        head.append(f"Simulated user, {simulated_by(transcript)}: {sim.persona or 'no persona'}")
        head.append(f"Goal: {sim.goal} · stopped: {sim.stop_reason or 'n/a'}")
    if transcript.error:
        head.append(f"Error: {transcript.error}")
    head += [f"Warning: {w}" for w in transcript.warnings]
    turns = [render_turn_text(t, with_checks=True) for t in transcript.turns]
    room = None if budget is None else budget - sum(map(len, head))
    body, shown = _page(turns, offset, limit, room)
    if transcript.checks:
        body.append("Conversation checks\n" + "\n".join(render_check(c) for c in transcript.checks))
    text = "\n".join(head) + "\n\n" + "\n\n".join(body)
    return text + _left_out("turn", offset, shown, len(turns), rest)


def simulated_by(transcript: Transcript) -> str:
    """Who played a simulated test's user, in words: the judge's model by its name.

    The model is the one that graded the goal: the same chat plays the user and judges it."""
    sim = transcript.simulation
    if sim is not None and sim.tester == "voiceflow_agent":
        return "played by another Voiceflow agent"
    model = next((c.verdict.model for c in transcript.checks if c.verdict and c.verdict.model), "")
    return f"played by the judge model {model}" if model else "played by the judge model"


def _header_verdict(transcript: Transcript) -> str:
    if transcript.suite == LIVE_SUITE and not transcript.all_checks():
        return "not checked (a live conversation: nothing was expected of it)"
    return transcript.outcome.upper()


def render_run(
    run: RunResult, *, offset: int = 0, limit: int | None = None, rest: Rest | None = None
) -> str:
    """What a model reads of a whole run: the verdict and every test that did not pass first,
    then the tests' transcripts, those that did not pass first (the page from `offset`, at most
    `limit` and within `TEXT_BUDGET`); with `rest`, a last line says how to read on."""
    tests = _failures_first(run.transcripts)
    if not tests:
        return "No tests ran."
    head = _verdict(tests)
    pages = [render_transcript(t, budget=TEXT_BUDGET) for t in tests]
    body, shown = _page(pages, offset, limit, TEXT_BUDGET - len(head))
    return head + "\n\n" + "\n\n".join(body) + _left_out("test", offset, shown, len(tests), rest)


def _failures_first(tests: list[Transcript]) -> list[Transcript]:
    return sorted(tests, key=lambda t: t.outcome == "passed")  # stable: suite order otherwise


def _verdict(tests: list[Transcript]) -> str:
    """One line of counts, then one line per test that did not pass, with its first failure."""
    counts = Counter(t.outcome for t in tests)
    verdict = "PASSED" if counts["passed"] == len(tests) else "NOT PASSED"
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common())
    lines = [f"Verdict: {verdict} ({len(tests)} tests: {tally})"]
    for test in tests:
        if test.outcome == "passed":
            continue
        failure = test.first_failure()
        why = render_check(failure).strip() if failure else (test.error or "")
        lines.append(f"- {test.suite} / {test.name}: {OUTCOME_MARKS[test.outcome]} {why}".rstrip())
    return "\n".join(lines)


def _page(
    parts: list[str], offset: int, limit: int | None, budget: int | None
) -> tuple[list[str], int]:
    """The parts from `offset` on, at most `limit`, within `budget` characters (one at least)."""
    page: list[str] = []
    used = 0
    for part in parts[offset:]:
        full = budget is not None and used + len(part) > budget
        if page and (full or (limit is not None and len(page) >= limit)):
            break
        page.append(part)
        used += len(part) + 2
    return page, len(page)


def _left_out(noun: str, offset: int, shown: int, total: int, rest: Rest | None) -> str:
    if offset == 0 and shown == total:
        return ""
    shown_range = f"{noun}s {offset + 1}-{offset + shown}" if shown else f"no {noun}s"
    next_step = f"; {rest(offset + shown)}" if rest is not None and offset + shown < total else ""
    return f"\n\nShown: {shown_range} of {total}{next_step}."
