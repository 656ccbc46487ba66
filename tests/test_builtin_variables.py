"""The contract between two lists kept apart on purpose: the emulator's built-in variables (what
every state it keeps carries) and the client's (`vf_mcp.voiceflow.variables`: what the runtime may
set). The emulator imports nothing of the client, so this test is what holds them together: every
variable the emulator sets of its own accord must be one the client knows is the runtime's, or
summaries and reports would show it as the agent's doing."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.canary import CANARY_KEY
from vf_mcp.emulator import Emulator, bookkeeping
from vf_mcp.emulator.agent import BUILTIN_VARIABLES
from vf_mcp.voiceflow.variables import (
    BOOKKEEPING_VARIABLES,
    BUILT_IN_VARIABLES,
    RUNTIME_VARIABLES,
)


def test_the_emulators_built_in_variables_are_all_the_clients() -> None:
    assert set(BUILTIN_VARIABLES) <= BUILT_IN_VARIABLES
    kept = {bookkeeping.MEMORY, bookkeeping.MEMORY_TEXT, bookkeeping.LAST_EVENT}
    assert kept <= BOOKKEEPING_VARIABLES


def test_every_variable_the_emulator_sets_by_itself_is_a_runtime_variable(
    emulator: Emulator,
) -> None:
    agent = emulator.agents[0]
    with httpx.Client(base_url=emulator.url, headers={"Authorization": CANARY_KEY}) as http:
        # v4 adds the user's timezone; legacy turns add the request and the memory.
        started = http.post(f"/v4/project/{agent.project_id}/session", json={"userID": "c"})
        key = started.raise_for_status().json()["sessionKey"]
        launch = {"action": {"type": "launch"}, "config": {"userTimezone": "Europe/Paris"}}
        http.post("/v4/interact", json=launch, headers={"Authorization": key}).raise_for_status()
        said = {"action": {"type": "text", "payload": "hello"}}
        http.post("/state/user/c/interact", json=said).raise_for_status()
        variables = http.get("/state/user/c").raise_for_status().json()["variables"]
    own = set(agent.entities) | set(agent.variables)
    by_itself = set(variables) - own
    assert {"vf_user_timezone", "last_event", "_memory_", *BUILTIN_VARIABLES} <= by_itself
    assert by_itself <= RUNTIME_VARIABLES, "add it to vf_mcp/voiceflow/variables.py"


def test_the_emulator_imports_nothing_of_the_client() -> None:
    probe = (
        "import sys\n"
        "import vf_mcp.emulator.__main__, vf_mcp.emulator.app, vf_mcp.emulator.bookkeeping\n"
        "print(sorted(m for m in sys.modules if m.startswith('vf_mcp.')"
        " and not m.startswith('vf_mcp.emulator')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
