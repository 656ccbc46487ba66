"""The variables the runtime keeps for itself: defaults, the turn's request and the AI memory."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .agent import AgentDefinition
from .traces import strip_ssml

MEMORY = "_memory_"
MEMORY_TEXT = "vf_memory"
LAST_EVENT = "last_event"
MAX_MEMORY_MESSAGES = 10
MAX_MEMORY_CONTENT = 10_000
# Every declared variable without a default starts at 0, the runtime's "not set yet".
UNSET = 0


def defaults(agent: AgentDefinition) -> dict[str, Any]:
    """The project's default variable values (a declared ``null`` is no default)."""
    return {k: copy.deepcopy(v) for k, v in agent.variables.items() if v is not None}


def initialise(agent: AgentDefinition, variables: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared name present (entities first, then built-ins, then the file's own), at
    ``0`` unless it has a value, then whatever else the state already carried."""
    result: dict[str, Any] = dict.fromkeys(agent.declared_variables(), UNSET)
    result.update(variables)
    return result


def is_unset(value: Any) -> bool:
    """``null`` or the runtime's ``0`` default: nothing was ever put in the variable."""
    return value is None or (value == UNSET and not isinstance(value, bool))


def user_input(request: Mapping[str, Any] | None) -> str | None:
    """What the user said, as the runtime's memory records it (a query, a text, a label)."""
    if request is None:
        return None
    kind, payload = request.get("type"), request.get("payload")
    if kind == "intent" and isinstance(payload, Mapping):
        query = payload.get("query")
        return query if isinstance(query, str) and query else None
    if kind == "text":
        return payload if isinstance(payload, str) and payload else None
    if isinstance(kind, str) and kind.startswith("path-") and isinstance(payload, Mapping):
        label = payload.get("label")
        return label if isinstance(label, str) and label else None
    return None


def _messages(variables: dict[str, Any]) -> list[dict[str, Any]]:
    memory = variables.get(MEMORY)
    if not isinstance(memory, list):
        memory = []
    return [m for m in memory if isinstance(m, dict)]


def _store(variables: dict[str, Any], memory: list[dict[str, Any]]) -> None:
    variables[MEMORY] = memory
    variables[MEMORY_TEXT] = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in memory)


def remember_user(variables: dict[str, Any], content: str | None) -> None:
    """Record the turn's input (even with nothing to add, both memory variables are written)."""
    memory = _messages(variables)
    if content:
        memory.append({"role": "user", "content": content})
        del memory[:-MAX_MEMORY_MESSAGES]
    _store(variables, memory)


def remember_assistant(variables: dict[str, Any], content: str) -> None:
    """Consecutive assistant messages share one entry, joined by newlines, as recorded."""
    memory = _messages(variables)
    content = strip_ssml(content)
    if memory and memory[-1].get("role") == "assistant":
        joined = f"{memory[-1].get('content')}\n{content}"
        memory[-1] = {"role": "assistant", "content": joined[:MAX_MEMORY_CONTENT]}
    else:
        memory.append({"role": "assistant", "content": content})
        del memory[:-MAX_MEMORY_MESSAGES]
    _store(variables, memory)
