"""Turn a turn's traces into what an LLM needs to decide the next turn.

`summarize_turn` builds the structured `TurnResult` (`vf_mcp.domain.turn`: the MCP structured
content), one handler per trace type (`handlers`), and `render_turn` its short, deterministic
text (the MCP text content). Neither knows about MCP.
"""

from vf_mcp.summary.builder import NO_TRACES, summarize_turn
from vf_mcp.summary.handlers import CREDITS_EXHAUSTED, describe_media, strip_ssml
from vf_mcp.summary.render import (
    DEFAULT_MAX_CHARS,
    MIN_MAX_CHARS,
    choices_text,
    describe_change,
    describe_changes,
    render_turn,
)
from vf_mcp.summary.variables import VariableDiff, diff_variables

__all__ = [
    "CREDITS_EXHAUSTED",
    "DEFAULT_MAX_CHARS",
    "MIN_MAX_CHARS",
    "NO_TRACES",
    "VariableDiff",
    "choices_text",
    "describe_change",
    "describe_changes",
    "describe_media",
    "diff_variables",
    "render_turn",
    "strip_ssml",
    "summarize_turn",
]
