"""Plain-text views of a transcript: what a judge reads, what a failing report shows.

Nothing volatile (latency, user ids, timestamps) goes into the judge's view: the same conversation
must give the same prompt, so recorded judge replies can be replayed.
"""

from __future__ import annotations

import json
from typing import Any

from vf_mcp.transcripts.models import (
    CheckResult,
    HostReply,
    RunResult,
    Transcript,
    TranscriptMessage,
    TranscriptTurn,
    UserAction,
)

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


def _message_lines(message: TranscriptMessage) -> list[str]:
    if message.kind == "text":
        return [f"Agent: {message.text}"]
    if message.kind in ("card", "carousel"):
        return [
            f"Agent [card]: {' — '.join(p for p in (c.title, c.description) if p) or '(untitled)'}"
            for c in message.cards
        ]
    if message.kind in ("image", "audio"):
        return [f"Agent [{message.kind}]: {message.url or 'inline data'}"]
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
        lines.append("Buttons: " + "  ".join(f"{c.number}) {c.label}" for c in turn.agent.choices))
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
            f"{c.name}: {_compact(c.before, 30)} → {_compact(c.after, 30)}"
            for c in turn.variables_changed
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


def render_transcript(transcript: Transcript) -> str:
    """The whole record, checks included: for reports and the `transcript` resource."""
    head = [f"{transcript.suite} / {transcript.name}: {transcript.outcome.upper()}"]
    if transcript.description:
        head.append(transcript.description)
    if transcript.simulation is not None:
        sim = transcript.simulation
        head.append(f"Simulated user ({sim.tester}): {sim.persona or 'no persona'}")
        head.append(f"Goal: {sim.goal} · stopped: {sim.stop_reason or 'n/a'}")
    if transcript.error:
        head.append(f"Error: {transcript.error}")
    head += [f"Warning: {w}" for w in transcript.warnings]
    body = [render_turn_text(t, with_checks=True) for t in transcript.turns]
    if transcript.checks:
        body.append("Conversation checks\n" + "\n".join(render_check(c) for c in transcript.checks))
    return "\n".join(head) + "\n\n" + "\n\n".join(body)


def render_run(run: RunResult) -> str:
    """What a model reads of a whole run: every test's transcript, in order."""
    return "\n\n".join(render_transcript(t) for t in run.transcripts) or "No tests ran."
