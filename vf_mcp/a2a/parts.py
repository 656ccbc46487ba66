"""A2A messages in, turn outcomes out: the one translation between A2A parts and turns.

In: text parts are what the user types; a data part is an object with any of `choice` (a button
of the last turn, by label or number), `action` (a raw Voiceflow action) and `variables`. File
parts (raw bytes, URLs) are refused: a Voiceflow turn carries no files.

Out: the agent's messages are text parts; buttons, custom actions, cards, media and a handoff are
data parts; the variable changes, the turn status and what input is expected next are the reply's
metadata. Everything that leaves passes through `redact`, like every other output of vf-mcp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from a2a.types import Artifact, Message, Part, Role
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from google.protobuf import json_format, struct_pb2

from vf_mcp.conversation import TurnOutcome, TurnRequest, check_variables
from vf_mcp.domain.transcript import SCHEMA_VERSION, Transcript
from vf_mcp.domain.turn import TurnResult
from vf_mcp.error_kinds import kind_of
from vf_mcp.errors import InvalidInputError, VfMcpError, may_have_run
from vf_mcp.redaction import redact
from vf_mcp.transcripts.render import render_transcript

MAX_TEXT_CHARS: Final = 10_000
"""The longest text a message may carry: the `interact` tool's `message` limit."""
DATA_KEYS: Final = ("choice", "action", "variables")
IN_REPLY_TO: Final = "inReplyTo"
"""Reply metadata naming the message a task's status answers (see `vf_mcp.a2a.tasks`)."""
DATA_EXAMPLE = '{"choice": "Track an order"}, {"action": {"type": "done"}} or {"variables": {...}}'


@dataclass(frozen=True)
class Ask:
    """What one A2A message asks for: at most one of text, choice and action, and variables."""

    text: str | None = None
    choice: str | int | None = None
    action: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None

    @property
    def has_turn(self) -> bool:
        return any(value is not None for value in (self.text, self.choice, self.action))

    def launch(self, user_id: str) -> TurnRequest:
        """The launch a new conversation starts with; the variables go with it."""
        return TurnRequest(user_id=user_id, launch=True, variables=self.variables)

    def turn(self, user_id: str, *, with_variables: bool = True) -> TurnRequest:
        if not self.has_turn:
            raise InvalidInputError(
                "This message asks for no turn: send text, or a data part with a `choice` or an "
                f"`action` (variables go with one of them), e.g. {DATA_EXAMPLE}"
            )
        return TurnRequest(
            user_id=user_id,
            message=self.text,
            choice=self.choice,
            action=self.action,
            variables=self.variables if with_variables else None,
        )


def read_message(message: Message) -> Ask:
    """What `message` asks for; the SDK's errors for file parts and malformed data parts."""
    texts: list[str] = []
    data: dict[str, Any] = {}
    for index, part in enumerate(message.parts):
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            _merge_data(data, _data_object(part, index))
        elif kind in ("raw", "url"):
            raise ContentTypeNotSupportedError(
                message=f"Part {index} is a file ({kind}); this agent takes text parts and data "
                f"parts only, e.g. {DATA_EXAMPLE}"
            )
        else:
            raise InvalidParamsError(message=f"Part {index} is empty: give it text or data")
    text = "\n".join(texts) if any(t.strip() for t in texts) else None
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise InvalidParamsError(
            message=f"The text is {len(text)} characters, over the {MAX_TEXT_CHARS} limit"
        )
    return _ask(text, data)


def _data_object(part: Part, index: int) -> dict[str, Any]:
    value = _whole_numbers(json_format.MessageToDict(part.data))
    if not isinstance(value, dict):
        raise InvalidParamsError(
            message=f"Data part {index} is not an object; send one of {DATA_EXAMPLE}"
        )
    unknown = sorted(set(value) - set(DATA_KEYS))
    if unknown:
        raise InvalidParamsError(
            message=f"Data part {index} has unknown keys ({', '.join(unknown)}); it takes "
            f"{', '.join(DATA_KEYS)}, e.g. {DATA_EXAMPLE}"
        )
    return value


def _merge_data(into: dict[str, Any], value: dict[str, Any]) -> None:
    for key, item in value.items():
        if key in into:
            raise InvalidParamsError(message=f"`{key}` is given by two data parts: give it once")
        into[key] = item


def _ask(text: str | None, data: Mapping[str, Any]) -> Ask:
    choice, action, variables = data.get("choice"), data.get("action"), data.get("variables")
    if choice is not None and (isinstance(choice, bool) or not isinstance(choice, str | int)):
        raise InvalidParamsError(message="`choice` is a button's label (text) or number")
    if action is not None and (not isinstance(action, dict) or not action.get("type")):
        raise InvalidParamsError(
            message="`action` is a Voiceflow action object with a string `type`, e.g. "
            '{"type": "done"}'
        )
    if variables is not None and not isinstance(variables, dict):
        raise InvalidParamsError(message="`variables` is an object of names and values")
    given = [
        name
        for name, value in (("text", text), ("choice", choice), ("action", action))
        if value is not None
    ]
    if len(given) > 1:
        raise InvalidParamsError(
            message=f"One message is one turn: give text, a choice or an action, not "
            f"{' and '.join(given)}"
        )
    try:
        checked = check_variables(variables)
    except InvalidInputError as error:
        raise InvalidParamsError(message=error.message) from None
    return Ask(text=text, choice=choice, action=action, variables=checked)


def _whole_numbers(value: Any) -> Any:
    """A protobuf Value holds every number as a double: give whole numbers back as ints."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    return value


# -- out --------------------------------------------------------------------------------------


def reply_message(
    outcomes: Sequence[TurnOutcome],
    *,
    task_id: str,
    context_id: str,
    in_reply_to: str,
    error: VfMcpError | None = None,
) -> Message:
    """The agent's reply to one message: every turn it ran, in order, then the `error` that
    stopped it, with its kind and whether the failed turn may have run (as MCP says both)."""
    parts = [Part(text=redact(m.text)) for o in outcomes for m in o.result.messages if m.text]
    if error is not None:
        parts.append(Part(text=error.message))
    if outcomes:
        parts.extend(_data_parts(outcomes[-1].result))
    metadata = reply_metadata(outcomes)
    metadata[IN_REPLY_TO] = in_reply_to
    if error is not None:
        metadata.update(
            error=error.message, errorKind=kind_of(error), mayHaveRun=may_have_run(error)
        )
    return Message(
        role=Role.ROLE_AGENT,
        message_id=f"{task_id}:{in_reply_to}",
        task_id=task_id,
        context_id=context_id,
        parts=parts or [Part(text="")],
        metadata=_struct(metadata),
    )


def _data_parts(result: TurnResult) -> list[Part]:
    """The last turn's buttons, custom actions, handoff, cards and media, one data part each."""
    found: dict[str, Any] = {
        "choices": [c.model_dump(mode="json") for c in result.choices],
        "customActions": [
            {"name": a.name, "payload": a.payload, "resultTypes": a.result_types}
            for a in result.custom_actions
        ],
        "handoff": result.handoff,
        "cards": [c.model_dump(mode="json") for m in result.messages for c in m.cards],
        "media": [m.media.model_dump(mode="json") for m in result.messages if m.media],
    }
    return [_data_part({key: value}) for key, value in found.items() if value]


def reply_metadata(outcomes: Sequence[TurnOutcome]) -> dict[str, Any]:
    """The reply's metadata: the last turn's status and what it expects, every variable change."""
    if not outcomes:
        return {}
    last = outcomes[-1].result
    metadata: dict[str, Any] = {
        "status": last.status,
        "userId": last.user_id,
        "turns": len(outcomes),
        "variablesChanged": [
            change.model_dump(mode="json")
            for o in outcomes
            for change in o.result.variables_changed or []
        ],
    }
    expected = expected_input(last)
    optional = {
        "expectedInput": expected,
        "noReplyTimeout": last.no_reply_timeout,
        "error": last.error,
        "warnings": [w for o in outcomes for w in o.result.warnings],
    }
    metadata.update({key: value for key, value in optional.items() if value})
    return metadata


def expected_input(result: TurnResult) -> str | None:
    """What the agent waits for, in words, or None when it waits for nothing."""
    if result.status == "awaiting_action":
        types = sorted({t for action in result.custom_actions for t in action.result_types})
        example = types[0] if types else "done"
        listed = f" (one of: {', '.join(types)})" if types else ""
        return (
            "The agent asked for a custom action: send its result as a data part "
            f'{{"action": {{"type": "{example}"}}}}{listed}'
        )
    if result.status != "awaiting_user":
        return None
    said = "Reply with text"
    if result.choices:
        said += ', or press a button with a data part {"choice": "<label or number>"}'
    if result.no_reply_timeout is not None:
        said += (
            f'; after {result.no_reply_timeout:g} s of silence send {{"action": {{"type": '
            '"no-reply"}}'
        )
    return said


def transcript_artifact(transcript: Transcript) -> Artifact:
    """The whole conversation, as text and as the canonical transcript (JSON)."""
    return Artifact(
        artifact_id="transcript",
        name="transcript",
        description=f"The conversation as vf-mcp recorded it (schema {SCHEMA_VERSION})",
        parts=[
            Part(text=redact(render_transcript(transcript)), media_type="text/plain"),
            _data_part(transcript.model_dump(mode="json")),
        ],
    )


def _data_part(value: Any) -> Part:
    return Part(
        data=json_format.ParseDict(_redacted(value), struct_pb2.Value()),
        media_type="application/json",
    )


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(_redacted(dict(value)), struct_pb2.Struct())


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _redacted(item) for key, item in value.items()}
    return value
