"""Which of a state's variables are the runtime's own, not the agent designer's.

Voiceflow's runtime keeps built-in variables in every user's state and rewrites bookkeeping ones on
every turn (tests/fixtures/real_runtime/README.md, items 1 and 2). A reader who wants to know what
the agent did needs neither, so they are told apart here, once, for every consumer.
"""

from __future__ import annotations

from typing import Any

BUILT_IN_VARIABLES: frozenset[str] = frozenset(
    {
        "sessions",
        "user_id",
        "timestamp",
        "platform",
        "locale",
        "intent_confidence",
        "last_utterance",
        "last_response",
        "session_id",
        "vf_user_timezone",
    }
)
"""Variables every Voiceflow state holds, set by the runtime rather than by the agent's flows."""

BOOKKEEPING_VARIABLES: frozenset[str] = frozenset({"_memory_", "vf_memory", "last_event"})
"""Rewritten on every turn: the recent turns as `{role, content}`, the same as text, the request."""

RUNTIME_VARIABLES: frozenset[str] = BUILT_IN_VARIABLES | BOOKKEEPING_VARIABLES

UNSET_DEFAULT = 0
"""What the runtime stores for a declared variable that was never set (not `null`)."""


def is_runtime_variable(name: str) -> bool:
    return name in RUNTIME_VARIABLES


def is_unset(value: Any) -> bool:
    """A variable absent, `null`, or at the runtime's `0` default reads as never set.

    `0 is False` is avoided on purpose: `False` is a value an agent sets, not the default.
    """
    return value is None or (type(value) is int and value == UNSET_DEFAULT)


def without_bookkeeping(variables: dict[str, Any]) -> dict[str, Any]:
    """The variables minus the per-turn conversation memory, which can dwarf everything else."""
    return {k: v for k, v in variables.items() if k not in BOOKKEEPING_VARIABLES}
