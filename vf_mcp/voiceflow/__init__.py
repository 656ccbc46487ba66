"""A typed async client for the Voiceflow runtime API. It knows nothing of MCP."""

from vf_mcp.voiceflow.actions import (
    Action,
    BaseAction,
    EventAction,
    GeneralAction,
    IntentAction,
    LaunchAction,
    NoReplyAction,
    PathAction,
    TextAction,
    parse_action,
)
from vf_mcp.voiceflow.client import (
    InteractResult,
    StateEvent,
    StreamEvent,
    TraceEvent,
    VoiceflowClient,
)
from vf_mcp.voiceflow.state import InteractConfig, StackFrame, State
from vf_mcp.voiceflow.traces import BaseTrace, Trace, UnknownTrace, parse_trace, parse_traces

__all__ = [
    "Action",
    "BaseAction",
    "BaseTrace",
    "EventAction",
    "GeneralAction",
    "IntentAction",
    "InteractConfig",
    "InteractResult",
    "LaunchAction",
    "NoReplyAction",
    "PathAction",
    "StackFrame",
    "State",
    "StateEvent",
    "StreamEvent",
    "TextAction",
    "Trace",
    "TraceEvent",
    "UnknownTrace",
    "VoiceflowClient",
    "parse_action",
    "parse_trace",
    "parse_traces",
]
