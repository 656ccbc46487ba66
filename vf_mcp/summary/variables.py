"""Which variables a turn changed: the agent's own, and (for debugging) the runtime's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from vf_mcp.domain.turn import VariableChange
from vf_mcp.voiceflow.variables import is_runtime_variable, is_unset


class VariableDiff(NamedTuple):
    agent: list[VariableChange]
    """The variables the agent's flows set."""
    runtime: list[VariableChange]
    """Built-in and bookkeeping variables the runtime rewrote."""


def diff_variables(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    runtime: bool = True,
) -> VariableDiff | None:
    """Changed variables, each list sorted by name; None when the state after the turn is unknown.

    A variable absent or `null` before and at the runtime's `0` default after did not change:
    the runtime simply filled in its default for a declared variable. Without `runtime`, the
    runtime's list is left empty: only a debug turn shows it, and the runtime rewrites its
    bookkeeping on every turn, so building those changes was most of the diff's work.
    """
    if after is None:
        return None
    before = before or {}
    agent: list[VariableChange] = []
    rewritten: list[VariableChange] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new or (old is None and is_unset(new)):
            continue
        if not is_runtime_variable(name):
            agent.append(VariableChange(name=name, before=old, after=new))
        elif runtime:
            rewritten.append(VariableChange(name=name, before=old, after=new))
    return VariableDiff(agent=agent, runtime=rewritten)
