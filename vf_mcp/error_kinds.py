"""The kind of each vf-mcp error class: the one classification every front end maps to its protocol.

The kinds themselves are domain vocabulary (`vf_mcp.domain.errors.ErrorKind`); this table stays
beside the exception classes it names (`vf_mcp.errors`), which carry redaction and so are not
pure data.

MCP puts the kind in an error result's `_meta` (`vf_mcp.tools.errors`), A2A in a failed task's
data and its task state (`vf_mcp.a2a.errors`); both read it here, so neither imports the other.
`ERROR_KINDS` names every class of the hierarchy (vf_mcp/errors.py); tests/test_tools_errors.py
proves none is missing.
"""

from __future__ import annotations

from vf_mcp.domain.errors import ErrorKind
from vf_mcp.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectError,
    InvalidInputError,
    JudgeError,
    NotFoundError,
    RateLimitError,
    ResponseError,
    ResponseTimeoutError,
    RouteNotFoundError,
    ScriptError,
    ServerError,
    StoreError,
    StreamInterruptedError,
    TransportError,
    TurnInFlightError,
    TurnLostError,
    UpstreamError,
    VfMcpError,
)

ERROR_KINDS: dict[type[VfMcpError], ErrorKind] = {
    VfMcpError: "internal",
    ConfigurationError: "configuration",
    InvalidInputError: "invalid_input",
    ScriptError: "invalid_input",
    StoreError: "store",
    TurnInFlightError: "turn_running",
    TurnLostError: "turn_lost",
    UpstreamError: "upstream",
    APIError: "upstream",
    BadRequestError: "refused",
    AuthenticationError: "unauthorized",
    NotFoundError: "not_found",
    RouteNotFoundError: "not_found",
    RateLimitError: "rate_limited",
    ServerError: "upstream",
    TransportError: "unavailable",
    ConnectError: "unavailable",
    ResponseTimeoutError: "timeout",
    ResponseError: "upstream",
    StreamInterruptedError: "upstream",
    JudgeError: "upstream",
}


def kind_of(error: VfMcpError) -> ErrorKind:
    """The kind of the most specific mapped class of `error`."""
    for cls in type(error).__mro__:
        if cls in ERROR_KINDS:
            return ERROR_KINDS[cls]
    return "internal"
