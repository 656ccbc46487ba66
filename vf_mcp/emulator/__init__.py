"""A Voiceflow-compatible runtime emulator (real HTTP on loopback, real SSE).

It speaks the wire format of Voiceflow's Dialog Manager API so clients can be tested, demoed
and benchmarked offline. It deliberately imports nothing from the rest of ``vf_mcp``.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562): `vf-mcp --help` and a stdio start declare the emulator's
# command-line options without paying for its agents, engine and web server.
_EXPORTS = {
    "DEFAULT_AGENT_PATH": "agent",
    "AgentDefinition": "agent",
    "AgentFileError": "agent",
    "default_agent": "agent",
    "load_agent": "agent",
    "Pause": "engine",
    "Turn": "engine",
    "TurnOptions": "engine",
    "run_turn": "engine",
    "FaultMatch": "faults",
    "FaultPlan": "faults",
    "FaultRegistry": "faults",
    "OptionError": "options",
    "RouteSet": "options",
    "StateSemantics": "options",
    "RecordedRequest": "recording",
    "RecordedSessionEvent": "recording",
    "Emulator": "runner",
    "running_emulator": "runner",
    "serve": "runner",
    "SessionBinding": "sessions",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


if TYPE_CHECKING:
    from .agent import (
        DEFAULT_AGENT_PATH,
        AgentDefinition,
        AgentFileError,
        default_agent,
        load_agent,
    )
    from .engine import Pause, Turn, TurnOptions, run_turn
    from .faults import FaultMatch, FaultPlan, FaultRegistry
    from .options import OptionError, RouteSet, StateSemantics
    from .recording import RecordedRequest, RecordedSessionEvent
    from .runner import Emulator, running_emulator, serve
    from .sessions import SessionBinding

__all__ = [
    "DEFAULT_AGENT_PATH",
    "AgentDefinition",
    "AgentFileError",
    "Emulator",
    "FaultMatch",
    "FaultPlan",
    "FaultRegistry",
    "OptionError",
    "Pause",
    "RecordedRequest",
    "RecordedSessionEvent",
    "RouteSet",
    "SessionBinding",
    "StateSemantics",
    "Turn",
    "TurnOptions",
    "default_agent",
    "load_agent",
    "run_turn",
    "running_emulator",
    "serve",
]
