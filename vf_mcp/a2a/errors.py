"""The one mapping from vf-mcp's turn statuses and errors to what an A2A client sees.

A turn's status becomes a task state (`TURN_STATES`). An error met while a turn runs becomes a
task state too (`ERROR_STATES`, by the error's kind from `vf_mcp.error_kinds`): an input the
agent could not take (a button that does not exist) leaves the task waiting for a better one,
anything else fails the task with the error's one-line message. An error found before anything
runs (a malformed message) is the SDK's matching JSON-RPC error instead (`request_error`), and
the SDK's own refusals are raised again in lines of vf-mcp's (`no_such_task`, `task_ended`, ...).
tests/test_a2a_units.py proves every status and every kind is mapped; tests/test_a2a_js_errors.py
shows what the JavaScript SDK makes of each failure.
"""

from __future__ import annotations

from typing import Final

from a2a.types import Task, TaskState
from a2a.utils.errors import (
    A2AError,
    InternalError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from vf_mcp.a2a.parts import DATA_EXAMPLE
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


# -- the SDK's own refusals, in lines that say what to do next -----------------------------------
# The SDK raises these with its bare words ("Task not found", "Task cannot be canceled",
# "Validation failed"), which the A2A SDKs show as they are; the handler raises these instead.


def state_word(state: TaskState) -> str:
    """`TASK_STATE_CANCELED` as a person reads it: `canceled`."""
    return TaskState.Name(state).removeprefix("TASK_STATE_").lower().replace("_", "-")


def no_such_task(task_id: str) -> TaskNotFoundError:
    return TaskNotFoundError(
        message=f"No task {_cut(task_id)!r} for this caller: it never existed here, it is another "
        "caller's, or it is no longer kept; ListTasks shows yours, and a message without a "
        "taskId starts a new one"
    )


def task_ended(task: Task) -> UnsupportedOperationError:
    """A message to a task no message can continue (`TERMINAL_STATES`)."""
    forgot = (
        " (the cancel made vf-mcp forget the conversation, so it starts over)"
        if task.status.state == TaskState.TASK_STATE_CANCELED
        else ""
    )
    return UnsupportedOperationError(
        message=f"Task {task.id} has ended ({state_word(task.status.state)}) and takes no more "
        f"messages: send this one without a taskId, with contextId {task.context_id}, to go on "
        f"in a new task{forgot}"
    )


def nothing_to_cancel(task: Task) -> TaskNotCancelableError:
    return TaskNotCancelableError(
        message=f"Task {task.id} has already ended ({state_word(task.status.state)}), so there "
        f"is nothing to cancel; a message without a taskId, with contextId {task.context_id}, "
        "goes on in a new task"
    )


def incomplete(refused: A2AError) -> InvalidParamsError:
    """The SDK's 'Validation failed' for a request without a field A2A requires, naming them."""
    data = refused.data if isinstance(refused.data, dict) else {}
    found = data.get("errors")
    fields = [str(e.get("field")) for e in found if isinstance(e, dict)] if found else []
    missing = ", ".join(fields) or "some of its fields"
    return InvalidParamsError(
        message=f"The request lacks what A2A requires ({missing}): a message needs a "
        f"messageId, a role and at least one part, text or data such as {DATA_EXAMPLE}",
        data=refused.data,
    )


def _cut(text: str, limit: int = 40) -> str:
    """A caller's own text quoted back, cut: a message holds one line, not whatever was sent."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
