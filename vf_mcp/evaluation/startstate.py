"""Tests that start mid-conversation (`from_state`): the saved state, read, checked, put in place.

Which agent saved a state? Only its stack says: the bottom frame (the base frame, its storage
`isBase: true`) is the version's own program, and its `diagramID` is the version id (general-runtime
ae6efa58's captures, and the emulator; older docs show the version as the first frame's
`programID`). Nothing else in a state, and nothing in the runtime API, names the project, and the
runtime takes any state: `PUT` answers 200 for a frame on a diagram it does not have, and the next
turn then answers nothing (captures 22-23). So before a run `check_start_states` asks the agent
under test for its version id (one launch of a throwaway user, whose state is read and deleted)
and refuses a state saved on another version. The docs leave open whether a state saved on one
version (development) resumes on another of the same project (production, after a publish): it is
refused too, rather than run a test the runtime would answer with silence. A state with an empty
stack (an ended conversation) or without a base frame names no version and is taken as it is.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from pydantic import BaseModel, JsonValue

from vf_mcp.conversation import TurnRequest, parse_whole_state
from vf_mcp.errors import ConfigurationError, ScriptError, VfMcpError
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.recording import USER_TOKEN, load_cassette
from vf_mcp.evaluation.script import StartState, Suite
from vf_mcp.voiceflow.state import State

PROBE_PREFIX = "vf-eval-probe-"


class SavedState(BaseModel):
    """A state a test starts from, with `{user_id}` where the saving user's id was."""

    origin: str
    state: dict[str, JsonValue]

    @property
    def version(self) -> str | None:
        return base_version(State.model_validate(self.state))

    def for_user(self, user_id: str) -> dict[str, Any]:
        text = json.dumps(self.state, ensure_ascii=False)
        loaded: dict[str, Any] = json.loads(text.replace(USER_TOKEN, json.dumps(user_id)[1:-1]))
        return loaded


def base_version(state: State) -> str | None:
    """The version id a state was saved on: its base frame's diagram, or None when it has none."""
    frame = state.stack[0] if state.stack else None
    if frame is None or frame.storage.get("isBase") is not True:
        return None
    return frame.diagram_id or frame.program_id


def load_start_state(start: StartState) -> SavedState:
    """The state `start` names, refused in one line (`ScriptError`) when it is not a whole state."""
    origin = start.describe()
    if start.recording is not None:
        cassette = load_cassette(Path(start.recording))
        kept = cassette.state_after(start.turn or 0)
        if kept is None:
            turns = [s.turn for s in cassette.states]
            held = f"turns {min(turns)} to {max(turns)}" if turns else "no turn's state"
            raise ScriptError(
                f"from_state: {origin} is out of range: it keeps {held} (a recording made "
                "before vf-mcp kept states keeps none: record it again with --record)"
            )
        data: Any = kept.state
    else:
        data = _read_json(Path(start.file or ""), origin)
        if isinstance(data, dict) and "stack" not in data and isinstance(data.get("state"), dict):
            data = data["state"]  # the get_state tool's result: {user_id, exists, state}
    if not isinstance(data, dict):
        raise ScriptError(f"from_state: {origin} is not a Voiceflow state (not a JSON object)")
    try:
        parse_whole_state(data)
    except VfMcpError as exc:
        raise ScriptError(f"from_state: {origin}: {exc.message}") from None
    return SavedState(origin=origin, state=data)


def _read_json(path: Path, origin: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"from_state: {origin} cannot be read ({exc.strerror})") from None
    except ValueError:
        raise ScriptError(
            f"from_state: {origin} is not JSON; save a state as get_state returns it"
        ) from None


async def agent_version(factory: ServiceFactory, environment: str | None) -> str | None:
    """The version id of the agent under test: a throwaway user launches once, its state is read
    and then deleted (the launch runs the agent's start, as every test's launch does)."""
    user, namespace = f"{PROBE_PREFIX}{secrets.token_hex(6)}", factory.namespace
    async with factory.open(streaming=False) as service:
        try:
            await service.interact(
                TurnRequest(user_id=user, launch=True, environment=environment), namespace=namespace
            )
            result = await service.get_state(user, environment=environment, namespace=namespace)
        finally:
            with suppress(VfMcpError):
                await service.delete_state(user, environment=environment, namespace=namespace)
    return base_version(result.state) if result.state is not None else None


async def check_start_states(suites: Sequence[Suite], factory: ServiceFactory | None) -> None:
    """Every `from_state` read and checked before anything runs; with a `factory` (not in a
    replay), each state's version is compared with the agent's. `ConfigurationError` or
    `ScriptError` in one line otherwise."""
    versions: dict[str | None, str | None] = {}
    for suite in suites:
        for test in suite.tests:
            if test.from_state is None:
                continue
            saved = load_start_state(test.from_state)
            if factory is None or saved.version is None:
                continue
            environment = test.environment or suite.environment
            if environment not in versions:
                versions[environment] = await _probe(factory, environment)
            current = versions[environment]
            if current is not None and current != saved.version:
                on = f" on {environment}" if environment else ""
                raise ConfigurationError(
                    f"test {suite.name} / {test.id}: {saved.origin} was saved by another agent "
                    f"(version {saved.version}; the agent under test{on} is version {current}): "
                    "a state resumes only on the version that saved it, so record the "
                    "conversation again against this agent"
                )


async def _probe(factory: ServiceFactory, environment: str | None) -> str | None:
    try:
        return await agent_version(factory, environment)
    except VfMcpError as exc:
        raise ConfigurationError(
            f"from_state: could not ask the agent under test for its version ({exc.message}); "
            "check VOICEFLOW_RUNTIME_URL and the key, or run with --replay"
        ) from None
