"""What a front end asks of a conversation, checked before anything is sent.

A turn is a `TurnRequest`: exactly one of a message, a choice (a button of the last turn, by label
or number), a launch, or a raw action. Ids, environments and variables are checked here once,
with messages that say what would be valid.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from vf_mcp.domain.turn import Choice, Verbosity
from vf_mcp.errors import InvalidInputError
from vf_mcp.voiceflow.actions import BaseAction, GeneralAction, LaunchAction, TextAction

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+\-]*$"
# The runtime takes ids up to 128 characters; 100 leaves room for a caller's namespace prefix.
USER_ID_MAX_LENGTH = 100
_USER_ID = re.compile(USER_ID_PATTERN)
ENVIRONMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_ENVIRONMENT = re.compile(ENVIRONMENT_PATTERN)
MAX_VARIABLES_BYTES = 64 * 1024


class TurnRequest(BaseModel):
    """One user turn as a front end asks for it."""

    model_config = ConfigDict(frozen=True)

    user_id: str | None = None
    """None starts a new conversation under a fresh id."""
    message: str | None = None
    choice: str | int | None = None
    launch: bool = False
    action: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None
    environment: str | None = None
    verbosity: Verbosity = "standard"
    exclude_types: list[str] | None = None
    """`config.excludeTypes` for this turn: None keeps the runtime's default filter (it drops
    `block`, `debug` and `flow`), `[]` lets every trace through. Only the plain interact endpoints
    (legacy and v4) take a `config`, so a turn that sets it is never streamed."""


def scoped(user_id: str, namespace: str | None) -> str:
    """The id the runtime and the store see: the caller's namespace, then the caller's id."""
    return user_id if namespace is None else f"{namespace}.{user_id}"


def new_user_id() -> str:
    return f"vf-mcp-{secrets.token_hex(6)}"


def check_user_id(user_id: str) -> str:
    if not 1 <= len(user_id) <= USER_ID_MAX_LENGTH or not _USER_ID.match(user_id):
        raise InvalidInputError(
            f"user_id {user_id[:40]!r} is not valid: use 1-{USER_ID_MAX_LENGTH} characters from "
            "letters, digits and _ . : @ + -, starting with a letter or digit, or leave it out "
            "to start a new conversation"
        )
    return user_id


def check_environment(environment: str | None) -> str | None:
    """An environment alias or version id; it travels in a header, so only plain characters."""
    if environment is not None and not _ENVIRONMENT.match(environment):
        raise InvalidInputError(
            f"environment {environment[:40]!r} is not valid: use an alias such as development, "
            "staging or production, or a version id (letters, digits, _ . -; at most 64)"
        )
    return environment


def check_variables(variables: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Variables must be JSON (they travel as JSON) and small: they live in every turn's state."""
    if variables is None:
        return None
    try:
        encoded = json.dumps(dict(variables), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"`variables` must be JSON values (strings, numbers, booleans, null, lists, objects): "
            f"{exc}"
        ) from None
    if len(encoded) > MAX_VARIABLES_BYTES:
        raise InvalidInputError(
            f"`variables` is {len(encoded)} bytes of JSON, over the {MAX_VARIABLES_BYTES} byte "
            "limit; send only what the agent needs, or fewer variables per call"
        )
    return dict(variables)


def resolve_choice(choice: str | int, offered: list[Choice]) -> Choice:
    """Find the button `choice` names: its 1-based number, or its label (case-insensitive)."""
    if not offered:
        raise InvalidInputError(
            "This server knows of no buttons offered in this conversation's last turn (it offered "
            "none, or another server process or a restart served it: VF_MCP_STORE_URL shares "
            "that memory), so there is nothing to choose; send a `message`, the button's "
            "`request` as `action`, or `launch` to start over"
        )
    options = ", ".join(f"{c.number}) {c.label}" for c in offered)
    wanted = choice.strip() if isinstance(choice, str) else choice
    if isinstance(wanted, str) and wanted.isdigit():
        wanted = int(wanted)
    if isinstance(wanted, int):
        for option in offered:
            if option.number == wanted:
                return option
        raise InvalidInputError(f"There is no choice number {wanted}; valid choices: {options}")
    label = " ".join(wanted.split()).casefold()
    for option in offered:
        if " ".join(option.label.split()).casefold() == label:
            return option
    raise InvalidInputError(f"No button is labelled {choice!r}; valid choices: {options}")


def build_action(request: TurnRequest, offered: list[Choice]) -> tuple[BaseAction, Choice | None]:
    """The one action a turn sends, and the button pressed when it is a choice."""
    given = [
        name
        for name, value in (
            ("message", request.message),
            ("choice", request.choice),
            ("launch", request.launch or None),
            ("action", request.action),
        )
        if value is not None
    ]
    if len(given) != 1:
        which = " and ".join(given) if given else "none"
        raise InvalidInputError(
            f"Give exactly one of message, choice, launch=true or action (got {which}); "
            "start a conversation with launch=true"
        )
    if request.message is not None:
        return TextAction(payload=request.message), None
    if request.launch:
        return LaunchAction(), None
    if request.action is not None:
        if not isinstance(request.action.get("type"), str) or not request.action["type"]:
            raise InvalidInputError(
                "`action` must be a Voiceflow action object with a string `type`, e.g. "
                '{"type": "event", "payload": {"event": {"name": "checkout"}}}'
            )
        # Verbatim: intents, events, path-*, custom action results, types we never saw.
        return GeneralAction.model_validate(dict(request.action)), None
    assert request.choice is not None
    pressed = resolve_choice(request.choice, offered)
    return GeneralAction.model_validate(pressed.request), pressed
