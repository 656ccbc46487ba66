"""The kinds of error a caller can meet, whatever front end it uses: MCP puts one in an error
result's `_meta`, A2A in a failed task's data. Which class of `vf_mcp.errors` is of which kind is
`vf_mcp.error_kinds.ERROR_KINDS`."""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal[
    "invalid_input",
    "not_found",
    "configuration",
    "unauthorized",
    "refused",
    "rate_limited",
    "unavailable",
    "timeout",
    "upstream",
    "store",
    "turn_running",
    "turn_lost",
    "internal",
]
