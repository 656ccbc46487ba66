"""Switches between the recorded open-source runtime and the hosted service, where they differ.

- ``state_semantics``: ``"recorded"`` (default) does what general-runtime does: ``DELETE`` of a
  state removes the whole record, variables included, and ``PATCH .../variables`` on a user
  with no state stores just ``{"variables": ...}``. ``"hosted"`` follows the hosted docs:
  ``DELETE`` resets the conversation but keeps the user's variables, and ``PATCH`` on a new user
  creates a full state.
- ``routes``: ``"hosted"`` (default) serves every route the emulator knows, including the
  hosted-only ones (the v2 stream, session events, v4). ``"open-source"`` serves only what the
  open-source runtime has; the others answer Express's ``404`` page, as that runtime does.
"""

from __future__ import annotations

from typing import Literal, cast, get_args

StateSemantics = Literal["recorded", "hosted"]
RouteSet = Literal["hosted", "open-source"]

STATE_SEMANTICS: tuple[str, ...] = get_args(StateSemantics)
ROUTE_SETS: tuple[str, ...] = get_args(RouteSet)


class OptionError(ValueError):
    """A bad option value; ``str(self)`` is one line naming the valid values."""


def _choose(name: str, value: object, valid: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in valid:
        return value
    choices = ", ".join(valid)
    raise OptionError(f"{name} must be one of: {choices} (got {value!r})")


def state_semantics(value: object) -> StateSemantics:
    return cast(StateSemantics, _choose("state_semantics", value, STATE_SEMANTICS))


def route_set(value: object) -> RouteSet:
    return cast(RouteSet, _choose("routes", value, ROUTE_SETS))
