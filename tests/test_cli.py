"""The `vf-mcp` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp import __version__
from vf_mcp.http import is_loopback


def vf_mcp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vf_mcp", *args],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_and_version_need_no_configuration() -> None:
    helped = vf_mcp("--help")
    assert helped.returncode == 0
    assert "demo" in helped.stdout and "emulator" in helped.stdout
    assert "VOICEFLOW_API_KEY" in helped.stdout
    versioned = vf_mcp("--version")
    assert versioned.returncode == 0
    assert versioned.stdout.strip() == f"vf-mcp {__version__}"


def test_serving_without_a_key_fails_with_one_line_that_says_what_to_set() -> None:
    result = vf_mcp()
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "VOICEFLOW_API_KEY is not set" in lines[0]


def test_a_key_of_the_wrong_shape_is_refused_without_being_shown() -> None:
    result = vf_mcp(env={"VOICEFLOW_API_KEY": "VF.WS.123." + CANARY_SECRET})
    assert result.returncode == 2
    assert "VF.DM." in result.stderr
    assert CANARY_SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_summary_budget_stops_the_start_in_one_line(value: str) -> None:
    result = vf_mcp(env={"VOICEFLOW_API_KEY": CANARY_KEY, "VF_MCP_SUMMARY_MAX_CHARS": value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "VF_MCP_SUMMARY_MAX_CHARS" in lines[0]


def test_http_on_a_public_address_is_refused() -> None:
    result = vf_mcp(
        "--transport", "http", "--host", "0.0.0.0", env={"VOICEFLOW_API_KEY": CANARY_KEY}
    )
    assert result.returncode == 2
    assert "Refusing to serve MCP over HTTP on 0.0.0.0" in result.stderr
    assert CANARY_SECRET not in result.stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize("flag", [[], ["--no-stream"]], ids=["stream", "plain"])
def test_demo_talks_to_the_example_agent_with_no_key(flag: list[str]) -> None:
    result = vf_mcp("demo", *flag)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Agent: Hi! I'm the Acme order assistant. What can I do for you?" in out
    assert '> pick "track an order" (a button, by label)' in out
    assert "Agent: Order 1001 has shipped and should arrive on Friday." in out
    assert "Status: handoff to custom action talk_to_agent" in out
    assert result.stderr == ""
