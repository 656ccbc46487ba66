"""Production conversations become suites: one Voiceflow transcript (its logs) becomes one suite
of one test, each user action a turn, and what the agent did proposed as checks.

- A user action becomes: `launch`; `message` (typed text, or an intent's `query`, so the words go
  through the agent's NLU again as they did); `choice` (a button of the previous turn, by label,
  or by number when its label repeats or is a number); `event`; or the raw `action` (an intent
  without words, or anything else).
- The answer to a custom action the agent waited on is no turn of its own: it becomes the test's
  `on_action` mock, so the runner answers it the same way, and the agent's reply to it joins the
  turn that asked.
- Proposed checks, each `proposed: true` for a person to review: the key sentence of the agent's
  text (`contains`, or the whole text with `equals`), every button offered, the turn's status.
  Voiceflow's own boolean evaluations become the test's proposed `judge` criteria, carrying
  Voiceflow's verdict as `reference` so a run reports how often the judge agrees.

Logs carry no state, so an imported test replays from the start. A conversation where the user
did nothing but open it (no action besides launch) has nothing to replay and is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import JsonValue

from vf_mcp.domain.turn import Choice, TurnResult
from vf_mcp.errors import InvalidInputError
from vf_mcp.evaluation.checkmodels import (
    ChoiceCheck,
    ContainsCheck,
    ConversationCheck,
    EqualsCheck,
    JudgeCheck,
    StatusCheck,
)
from vf_mcp.evaluation.script import ActionMock, ImportedFrom, ScriptTest, Suite, TurnStep
from vf_mcp.summary.builder import summarize_turn
from vf_mcp.voiceflow.analytics_models import (
    LOG_TYPES,
    EvaluationDefinition,
    EvaluationResult,
    Transcript,
    TranscriptLog,
)
from vf_mcp.voiceflow.traces import parse_trace

Strictness = Literal["contains", "equals"]
TEST_ID = "conversation"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Placeholders a redacted log puts where users' words were: no check can expect them back.
_REDACTION_MARK = re.compile(r"\[[A-Z_]+\]|\*{3,}|<redacted>", re.IGNORECASE)


@dataclass
class _Segment:
    """One user action and every trace that answered it."""

    action: dict[str, JsonValue]
    traces: list[dict[str, JsonValue]] = field(default_factory=list)


@dataclass
class _Turn:
    step: dict[str, Any]
    traces: list[dict[str, JsonValue]]


def _segments(transcript: Transcript) -> list[_Segment]:
    """The logs cut at each action; traces before the first action (none in practice) are
    dropped, and a log of a type the docs do not list stops the import of this transcript."""
    segments: list[_Segment] = []
    for number, log in enumerate(transcript.logs, start=1):
        if log.type not in LOG_TYPES:
            raise InvalidInputError(
                f"transcript {transcript.id}: log {number} has the unknown type {log.type!r} "
                f"(known: {', '.join(LOG_TYPES)}), so its conversation cannot be replayed "
                "faithfully; leave it out with --session, or report it to vf-mcp"
            )
        if log.type == "action":
            segments.append(_Segment(_action(transcript, number, log)))
        elif log.type == "trace" and segments and isinstance(log.data, dict):
            segments[-1].traces.append(_trace(transcript, number, log.data))
    return segments


def _trace(transcript: Transcript, number: int, data: dict[str, JsonValue]) -> dict[str, JsonValue]:
    if not isinstance(data.get("type"), str) or not data["type"]:
        raise InvalidInputError(
            f"transcript {transcript.id}: trace log {number} has no string `type`, so what the "
            "agent did there is unknown; leave the conversation out with --session"
        )
    return data


def _action(transcript: Transcript, number: int, log: TranscriptLog) -> dict[str, JsonValue]:
    body = log.body
    if not isinstance(body.get("type"), str) or not body["type"]:
        raise InvalidInputError(
            f"transcript {transcript.id}: action log {number} has no string `type`, so the "
            "user's action is unknown; leave the conversation out with --session"
        )
    return body


def _reply(traces: list[dict[str, JsonValue]]) -> TurnResult:
    return summarize_turn(
        "imported",
        [parse_trace(t) for t in traces],
        variables_before=None,
        variables_after=None,
        latency_ms=0.0,
        handoff_actions=(),
    )


def _intent(request: Mapping[str, Any]) -> tuple[object, object]:
    """An intent request's name and words (None where absent)."""
    payload = request.get("payload")
    if not isinstance(payload, dict):
        return None, None
    intent = payload.get("intent")
    return (intent.get("name") if isinstance(intent, dict) else None), payload.get("query")


def _same_request(button: Mapping[str, Any], action: Mapping[str, Any]) -> bool:
    """Whether `action` is what pressing the button sends. A button may send plain text or an
    intent, so the type alone would take typed words for a press: the request must be the
    button's; an intent may gain entities or a confidence, so there the name and words count."""
    if button.get("type") != action.get("type"):
        return False
    if action.get("type") != "intent":
        return button.get("payload") == action.get("payload")
    (name, query), (pressed_name, pressed_query) = _intent(button), _intent(action)
    return name == pressed_name and pressed_query in (None, query)


def _label_key(label: str) -> str:
    # How `choice: <label>` finds a button (conversation.inputs.resolve_choice).
    return " ".join(label.split()).casefold()


def _pressed(button: Choice, offered: Sequence[Choice]) -> str | int:
    """How the suite names the button: by label when that finds it, else by its number (a label
    that repeats names the first, and an all-digit one reads as a number)."""
    same_label = [c for c in offered if _label_key(c.label) == _label_key(button.label)]
    if len(same_label) == 1 and not button.label.strip().isdigit():
        return button.label
    return button.number


def _step(action: dict[str, JsonValue], offered: TurnResult | None) -> dict[str, Any]:
    """The turn that sends `action` again, in the suite's words."""
    kind = str(action["type"])
    payload = action.get("payload")
    # A button first: buttons often send intents, whose words are the button's label.
    choices = offered.choices if offered is not None else []
    for button in choices:
        if _same_request(button.request, action):
            return {"choice": _pressed(button, choices)}
    if kind == "launch":
        return {"launch": True}
    if kind == "text" and isinstance(payload, str):
        return {"message": payload}
    query = payload.get("query") if isinstance(payload, dict) else None
    if kind == "intent" and isinstance(query, str) and query.strip():
        return {"message": query}
    if kind == "event" and isinstance(payload, dict):
        event = payload.get("event")
        if isinstance(event, dict) and isinstance(event.get("name"), str):
            return {"event": event["name"]}
    return {"action": action}


def _turns(segments: list[_Segment]) -> tuple[list[_Turn], list[ActionMock]]:
    """Turns to replay, and the mocks that answer the custom actions the agent waited on."""
    turns: list[_Turn] = []
    mocks: dict[str, ActionMock] = {}
    previous: TurnResult | None = None
    for segment in segments:
        waiting = (
            previous.custom_actions if previous and previous.status == "awaiting_action" else []
        )
        kind = str(segment.action["type"])
        answered = next((a for a in waiting if kind in a.result_types or not a.result_types), None)
        if turns and answered is not None:
            mocks.setdefault(answered.name, ActionMock(name=answered.name, reply=segment.action))
            turns[-1].traces += segment.traces
        else:
            turns.append(_Turn(_step(segment.action, previous), list(segment.traces)))
        previous = _reply(turns[-1].traces)
    return turns, list(mocks.values())


def key_sentence(text: str) -> str | None:
    """The longest sentence of the agent's text that holds no redaction mark (the earliest of
    equals): specific enough to mean the same answer, short enough to survive rewording."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    usable = [s for s in sentences if not _REDACTION_MARK.search(s)]
    return max(usable, key=len) if usable else None


def _checks(reply: TurnResult, strictness: Strictness) -> list[Any]:
    text = "\n".join(m.text for m in reply.messages if m.text)
    checks: list[Any] = []
    if strictness == "equals" and text and not _REDACTION_MARK.search(text):
        checks.append(EqualsCheck(value=text, proposed=True))
    elif text and (sentence := key_sentence(text)) is not None:
        checks.append(ContainsCheck(value=sentence, proposed=True))
    checks += [ChoiceCheck(label=c.label, proposed=True) for c in reply.choices]
    checks.append(StatusCheck(status=reply.status, proposed=True))
    return checks


def _verdict(result: EvaluationResult) -> bool | None:
    if isinstance(result.value, bool):
        return result.value
    if isinstance(result.value, str) and result.value.lower() in ("true", "false"):
        return result.value.lower() == "true"
    return None


def _criteria(
    transcript: Transcript, definitions: Mapping[str, EvaluationDefinition]
) -> list[ConversationCheck]:
    """Voiceflow's yes/no evaluations of this transcript, as the same question for the judge."""
    criteria: list[ConversationCheck] = []
    for result in transcript.evaluations:
        verdict = _verdict(result)
        if verdict is None:
            continue  # ratings and free text have no pass/fail to agree on
        definition = definitions.get(result.id)
        question = (definition.prompt if definition else "") or result.description or result.name
        criteria.append(
            JudgeCheck(
                id=f"voiceflow:{result.id}", criterion=question, proposed=True, reference=verdict
            )
        )
    return criteria


def transcript_suite(
    transcript: Transcript,
    *,
    definitions: Mapping[str, EvaluationDefinition] | None = None,
    strictness: Strictness = "contains",
) -> Suite | None:
    """The suite replaying `transcript`, or None when the user did nothing to replay.

    Raises `InvalidInputError` for a log it cannot read (an unknown type, an action without one).
    """
    segments = _segments(transcript)
    if not any(s.action.get("type") != "launch" for s in segments):
        return None
    turns, mocks = _turns(segments)
    steps = [
        TurnStep.model_validate({**turn.step, "expect": _checks(_reply(turn.traces), strictness)})
        for turn in turns
    ]
    when = transcript.created_at.strftime("%Y-%m-%d %H:%M UTC")
    test = ScriptTest(
        id=TEST_ID,
        name=f"Conversation {transcript.id}",
        description=f"Session {transcript.session_id}, {when}"
        + (f", environment {transcript.environment_id}" if transcript.environment_id else "")
        + ("" if transcript.ended_at else ", abandoned (never ended)"),
        turns=steps,
        expect=_criteria(transcript, definitions or {}),
        on_action=mocks,
        imported_from=ImportedFrom(transcript_id=transcript.id, project_id=transcript.project_id),
    )
    return Suite(
        name=f"Transcript {transcript.id}",
        description="Imported from Voiceflow; checks marked `proposed` need a person's review "
        "before a run gates on them. Holds users' words: keep it like user data.",
        tests=[test],
    )


def _check_document(check: Any) -> dict[str, Any]:
    # `type` has a default on every check model, and the loader needs it (or the shorthand).
    rest = check.model_dump(mode="json", exclude_defaults=True, exclude={"proposed"})
    return {"type": check.type, **rest, **({"proposed": True} if check.proposed else {})}


def suite_document(suite: Suite) -> dict[str, Any]:
    """The suite as written to YAML: only what differs from the defaults, so it reads like a
    hand-written one and loads back as the same suite."""
    data = suite.model_dump(mode="json", exclude_defaults=True, exclude={"warnings", "source"})
    for test, written in zip(suite.tests, data["tests"], strict=True):
        for turn, turn_written in zip(test.turns, written.get("turns", []), strict=True):
            if turn.expect:
                turn_written["expect"] = [_check_document(c) for c in turn.expect]
        if test.expect:
            written["expect"] = [_check_document(c) for c in test.expect]
    return data


def skipped_count(suites: Iterable[Suite | None]) -> int:
    return sum(1 for suite in suites if suite is None)


__all__ = ["Strictness", "key_sentence", "suite_document", "transcript_suite"]
