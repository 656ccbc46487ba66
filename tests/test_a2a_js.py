"""An independent A2A client: the official JavaScript SDK (`@a2a-js/sdk`, pinned in
tests/clients/package.json, client side only) holds a whole conversation with a real vf-mcp
server on loopback, streamed and not. scripts/test installs it with `npm ci`; a missing client
fails the test, it never skips."""

from __future__ import annotations

import json
import subprocess

from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.node_tools import CLIENTS, require, system_node
from tests.processes import http_server, server_env
from vf_mcp.emulator import Emulator

SCRIPT = CLIENTS / "a2a_client.mjs"
SDK = CLIENTS / "node_modules" / "@a2a-js" / "sdk" / "package.json"
INPUT_REQUIRED, COMPLETED = 6, 3  # TaskState as the JS SDK numbers it (the proto's numbers)


def test_the_javascript_sdk_holds_a_whole_conversation(emulator: Emulator, project_id: str) -> None:
    node = system_node()
    require(SDK, "@a2a-js/sdk")
    assert json.loads(SDK.read_text(encoding="utf-8"))["version"] == "1.3.0"
    # With the project id turns stream from the runtime; talk_to_agent is a plain custom action.
    env = server_env(
        emulator.url, VOICEFLOW_PROJECT_ID=project_id, VF_MCP_HANDOFF_ACTIONS="handoff"
    )
    with http_server(env) as (base, process):
        ran = subprocess.run(
            [node, str(SCRIPT), base], capture_output=True, text=True, timeout=60, cwd=CLIENTS
        )
        process.terminate()
        _, server_log = process.communicate(timeout=10)
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    turns = seen["turns"]
    assert [t["state"] for t in turns] == [INPUT_REQUIRED] * 6 + [COMPLETED]
    assert turns[0]["texts"] == [
        "Hi! I'm the Acme order assistant. What can I do for you?",
        "Sure. What's your order number?",
    ]
    assert turns[2]["data"][0]["customActions"][0]["resultTypes"] == ["done"]
    assert turns[3]["texts"] == ["You're back with the Acme assistant. Anything else?"]
    assert turns[6]["texts"] == ["Thanks for contacting Acme. Goodbye!"]
    assert turns[6]["metadata"]["status"] == "ended"
    # Streamed turns: the working status, the agent's message as it came, then the reply.
    assert turns[1]["events"] == ["statusUpdate"] * 3
    assert seen["stored"] == {"state": COMPLETED, "artifacts": ["transcript"]}
    for output in (ran.stdout, ran.stderr, server_log.decode()):
        assert CANARY_KEY not in output
        assert CANARY_SECRET not in output
