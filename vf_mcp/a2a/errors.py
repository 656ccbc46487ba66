"""The one mapping from vf-mcp's turn statuses and errors to what an A2A client sees.

A turn's status becomes a task state (`TURN_STATES`). An error met while a turn runs becomes a
task state too (`ERROR_STATES`, by the error's kind from `vf_mcp.error_kinds`): an input the
agent could not take (a button that does not exist) leaves the task waiting for a better one,
anything else fails the task with the error's one-line message. An error found before anything
runs (a malformed message) is the SDK's matching JSON-RPC error instead (`request_error`).
tests/test_a2a_units.py proves every status and every kind is mapped.
"""

from __future__ import annotations

from typing import Final

from a2a.types import TaskState
from a2a.utils.errors import A2AError, InternalError, InvalidParamsError

from vf_mcp.domain.errors import ErrorKind
from vf_mcp.domain.turn import TurnStatus
from vf_mcp.error_kinds import kind_of
from vf_mcp.errors import VfMcpError

INPUT_REQUIRED: Final = TaskState.TASK_STATE_INPUT_REQUIRED
COMPLETED: Final = TaskState.TASK_STATE_COMPLETED
FAILED: Final = TaskState.TASK_STATE_FAILED

TURN_STATES: Final[dict[TurnStatus, TaskState]] = {
    "awaiting_user": INPUT_REQUIRED,
    "awaiting_action": INPUT_REQUIRED,
    "ended": COMPLETED,
    "handoff": COMPLETED,
    "error": FAILED,
}

ERROR_STATES: Final[dict[ErrorKind, TaskState]] = {
    # The turn was refused before it was sent: the conversation still waits for an answer.
    "invalid_input": INPUT_REQUIRED,
    "not_found": FAILED,
    "configuration": FAILED,
    "unauthorized": FAILED,
    "refused": FAILED,
    "rate_limited": FAILED,
    "unavailable": FAILED,
    "timeout": FAILED,
    "upstream": FAILED,
    "store": FAILED,
    # Nothing was sent: the conversation waits for the caller's next message.
    "turn_running": INPUT_REQUIRED,
    "turn_lost": INPUT_REQUIRED,
    "internal": FAILED,
}

END_OF_TURN_STATES: Final = frozenset(
    {
        INPUT_REQUIRED,
        COMPLETED,
        FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)
"""The states a turn leaves a task in: the task's answer to the message that ran it."""
TERMINAL_STATES: Final = END_OF_TURN_STATES - {INPUT_REQUIRED}
"""The states no message can continue: a later message in the context starts a new task."""


def turn_state(status: TurnStatus) -> TaskState:
    return TURN_STATES[status]


def error_state(error: VfMcpError) -> TaskState:
    return ERROR_STATES[kind_of(error)]


def request_error(error: VfMcpError) -> A2AError:
    """The SDK error for a request refused before any task ran."""
    if kind_of(error) == "invalid_input":
        return InvalidParamsError(message=error.message)
    return InternalError(message=error.message)
