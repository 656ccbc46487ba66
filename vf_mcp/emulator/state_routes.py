"""``/state/user/{userID}``: read, replace, delete a user's state, and merge its variables."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .core import EmulatorCore
from .engine import blank_state
from .routing import (
    JSON_TYPE,
    Call,
    Reject,
    agent_for,
    check_version,
    invalid,
    json_response,
)
from .validation import state_errors, validation_message
from .wire import validation_body

__all__ = ["delete_state", "get_state", "patch_variables", "put_state"]


def _user(call: Call) -> str:
    user: str = call.request.path_params["userID"]
    return user


async def get_state(core: EmulatorCore, call: Call) -> Response:
    agent = agent_for(core, call.request)
    check_version(core, agent, call.request)
    return json_response(core.store.get(agent.project_id, _user(call)) or {})


async def put_state(core: EmulatorCore, call: Call) -> Response:
    agent = agent_for(core, call.request)
    check_version(core, agent, call.request)
    if call.body_is_garbage:
        raise invalid(body="must be valid JSON")
    body = {} if call.body is None else call.body
    errors = state_errors(body)
    if errors:
        # The runtime validates the whole body as one value, so the error's key is "".
        message = validation_message(errors)
        raise Reject(json_response(validation_body({"": message}), status_code=400))
    core.store.put(agent.project_id, _user(call), body)
    return json_response(body)


async def delete_state(core: EmulatorCore, call: Call) -> Response:
    agent = agent_for(core, call.request)
    check_version(core, agent, call.request)
    user = _user(call)
    if core.state_semantics == "recorded":
        core.store.delete(agent.project_id, user)
    else:
        state = core.store.get(agent.project_id, user)
        if state is not None:
            # The hosted docs: resetting a conversation keeps the user's variables.
            variables = state.get("variables") if isinstance(state.get("variables"), dict) else {}
            reset: dict[str, Any] = {"stack": [], "storage": {}, "variables": variables}
            core.store.put(agent.project_id, user, reset)
    return Response(status_code=200, media_type=JSON_TYPE)


async def patch_variables(core: EmulatorCore, call: Call) -> Response:
    agent = agent_for(core, call.request)
    check_version(core, agent, call.request)
    if call.body_is_garbage or not isinstance(call.body, dict):
        raise Reject(json_response(validation_body({"": "Invalid value"}), status_code=400))
    user = _user(call)
    state = core.store.get(agent.project_id, user)
    if state is None:
        # Recorded: the runtime merges into an empty record, so only the variables exist.
        state = {} if core.state_semantics == "recorded" else blank_state(agent, user)
    kept = state.get("variables")
    variables: dict[str, Any] = kept if isinstance(kept, dict) else {}
    state["variables"] = {**variables, **call.body}
    core.store.put(agent.project_id, user, state)
    return json_response(state)
