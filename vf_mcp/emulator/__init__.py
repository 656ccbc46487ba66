"""A Voiceflow-compatible runtime emulator (real HTTP on loopback, real SSE).

It speaks the wire format of Voiceflow's Dialog Manager API so clients can be tested, demoed
and benchmarked offline. It deliberately imports nothing from the rest of ``vf_mcp``.
"""

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
