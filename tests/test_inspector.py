"""The MCP Inspector CLI (pinned in tests/clients, Node 20) drives the server over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.canary import CANARY_KEY
from vf_mcp.emulator import Emulator

INSPECTOR = Path(__file__).parent / "clients" / "node_modules" / ".bin" / "mcp-inspector"


def inspector(emulator: Emulator, *args: str) -> dict:
    if not INSPECTOR.exists():
        pytest.fail("the MCP Inspector is not installed: run scripts/test, which installs it")
    result = subprocess.run(
        [
            str(INSPECTOR),
            "--cli",
            "-e",
            f"VOICEFLOW_API_KEY={CANARY_KEY}",
            "-e",
            f"VOICEFLOW_RUNTIME_URL={emulator.url}",
            sys.executable,
            "-m",
            "vf_mcp",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_inspector_lists_the_tools_and_holds_a_conversation(emulator: Emulator) -> None:
    listed = inspector(emulator, "--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} >= {"interact", "get_state", "emit_event"}
    first = inspector(
        emulator, "--method", "tools/call", "--tool-name", "interact", "--tool-arg", "launch=true"
    )
    assert first["isError"] is False
    user_id = first["structuredContent"]["user_id"]
    assert "Choices: 1) Track an order" in first["content"][0]["text"]
    # Each Inspector call is a new server process: the conversation lives in the runtime.
    request = first["structuredContent"]["choices"][0]["request"]
    second = inspector(
        emulator,
        "--method",
        "tools/call",
        "--tool-name",
        "interact",
        "--tool-arg",
        f"user_id={user_id}",
        "--tool-arg",
        f"action={json.dumps(request)}",
    )
    assert "Sure. What's your order number?" in second["content"][0]["text"]
