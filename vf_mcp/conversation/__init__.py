"""Conversation logic shared by every front end (MCP tools, A2A, the evaluation driver).

`inputs` checks what a front end asks (`TurnRequest`, ids, variables, choices); `service` runs it
against one agent (`ConversationService`); `results` holds what comes back (`TurnOutcome`, the
state tools' models).
"""

from vf_mcp.conversation.inputs import (
    ENVIRONMENT_PATTERN,
    MAX_VARIABLES_BYTES,
    USER_ID_MAX_LENGTH,
    USER_ID_PATTERN,
    TurnRequest,
    build_action,
    check_environment,
    check_user_id,
    check_variables,
    new_user_id,
    resolve_choice,
    scoped,
)
from vf_mcp.conversation.results import (
    DeleteResult,
    SessionEventResult,
    StateResult,
    TurnOutcome,
)
from vf_mcp.conversation.service import (
    HEARTBEAT_SECONDS,
    STREAM_OFF,
    ConversationService,
    ProgressCallback,
    StreamRoutes,
    parse_whole_state,
)

__all__ = [
    "ENVIRONMENT_PATTERN",
    "HEARTBEAT_SECONDS",
    "MAX_VARIABLES_BYTES",
    "STREAM_OFF",
    "USER_ID_MAX_LENGTH",
    "USER_ID_PATTERN",
    "ConversationService",
    "DeleteResult",
    "ProgressCallback",
    "SessionEventResult",
    "StateResult",
    "StreamRoutes",
    "TurnOutcome",
    "TurnRequest",
    "build_action",
    "check_environment",
    "check_user_id",
    "check_variables",
    "new_user_id",
    "parse_whole_state",
    "resolve_choice",
    "scoped",
]
