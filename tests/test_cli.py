"""The `vf-mcp` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp import __version__
from vf_mcp.web import is_loopback


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


MISCONFIGURED = [
    # The judge used to be read inside the server's lifespan: a 64-line exception-group traceback.
    ({"VF_MCP_JUDGE_URL": "https://llm.example/v1"}, (), "VF_MCP_JUDGE_MODEL"),
    ({"VF_MCP_TOOLS": "interact,teleport"}, (), "VF_MCP_TOOLS names unknown tools (teleport)"),
    ({"VF_MCP_TOOLS": "interact,teleport"}, ("--transport", "http"), "VF_MCP_TOOLS"),
    ({"VF_MCP_STORE_URL": "http://not-redis"}, ("--transport", "http"), "VF_MCP_STORE_URL"),
    ({"VOICEFLOW_MAX_RETRIES": "lots"}, (), "VOICEFLOW_MAX_RETRIES='lots' is not a whole number"),
]


@pytest.mark.parametrize(("env", "args", "expected"), MISCONFIGURED)
def test_every_start_up_misconfiguration_is_one_line_and_exit_2(
    env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    result = vf_mcp(*args, env={"VOICEFLOW_API_KEY": CANARY_KEY, **env})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--session-ttl", "-5"), "--session-ttl: must be a positive number of seconds"),
        (("--routes", "everything"), "routes must be one of: hosted, open-source"),
        (("--state-semantics", "mine"), "state_semantics must be one of: recorded, hosted"),
    ],
)
def test_bad_emulator_options_are_refused_without_a_traceback(
    args: tuple[str, ...], expected: str
) -> None:
    # Declared once: `vf-mcp emulator` and `python -m vf_mcp.emulator` refuse alike.
    for command in (("-m", "vf_mcp", "emulator"), ("-m", "vf_mcp.emulator")):
        result = subprocess.run(
            [sys.executable, *command, *args],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert expected in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--transport", "http", "--port", "9000", "serve"], ("http", "127.0.0.1", 9000)),
        (["serve", "--port", "9001"], ("stdio", "127.0.0.1", 9001)),
        (["--host", "::1", "--port", "9000", "a2a"], ("stdio", "::1", 9000)),
        (["a2a", "--port", "9002"], ("stdio", "127.0.0.1", 9002)),
        (["a2a"], ("stdio", "127.0.0.1", 8765)),
    ],
)
def test_serve_options_given_before_the_command_are_kept(
    argv: list[str], expected: tuple[str, str, int]
) -> None:
    from vf_mcp.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.transport, args.host, args.port) == expected


NOT_ON_A_STDIO_START = (
    "vf_mcp.emulator",  # the bundled runtime: `vf-mcp emulator` only
    "vf_mcp.http",  # HTTP serving and its helpers
    "vf_mcp.web",
    "vf_mcp.a2a",  # the A2A front end and its SDK
    "a2a",
    "vf_mcp.store.redis",  # Redis: VF_MCP_STORE_URL only
    "redis",
    "vf_mcp.evaluation",  # suites, judges, reports: the first run loads them
    "vf_mcp.voiceflow.analytics",  # the Analytics API: the first import_transcripts loads it
    "vf_mcp.chat",  # the view's renderer: the view's first read loads it
    "jinja2",
    "vf_mcp.transcripts.render",  # result text of runs and transcripts: their first call
    "vf_mcp.runs.render",
    "vf_mcp.demo",
    "yaml",  # an agents file only
)


def test_a_stdio_start_loads_only_what_serving_stdio_needs() -> None:
    """A fresh interpreter does what `vf-mcp` does on stdio up to serving; a module on the
    deny-list loaded there is start-up time every client pays for nothing."""
    probe = (
        "import sys\n"
        "from vf_mcp.cli import build_parser, stdio_server\n"
        "build_parser(emulator=False).parse_args([])\n"
        "server, flush = stdio_server()\n"
        "assert server.name == 'vf-mcp'\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "VOICEFLOW_API_KEY": CANARY_KEY,
        "VOICEFLOW_RUNTIME_URL": "http://127.0.0.1:9",
    }
    started = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stderr
    loaded = set(started.stdout.split())
    assert "vf_mcp.server" in loaded and "mcp.server.mcpserver" in loaded  # the probe ran
    unneeded = sorted(
        module
        for module in loaded
        for denied in NOT_ON_A_STDIO_START
        if module == denied or module.startswith(f"{denied}.")
    )
    assert unneeded == []


NOT_BUILT_ON_A_STDIO_START = (
    "vf_mcp.domain.transcript.Transcript",  # the first turn's record builds it
    "vf_mcp.domain.transcript.RunResult",  # the first run
    "vf_mcp.domain.run.RunRecord",
    "vf_mcp.domain.turn.TurnResult",  # the first turn
    "vf_mcp.conversation.results.StateResult",  # the first get_state
    "vf_mcp.handoff.HandoffResult",  # the first handoff
)


def test_a_stdio_start_builds_no_result_model_before_its_first_call() -> None:
    """Imported with the stores and tools, these models' validators are built on first use
    (`defer_build`): built at import, they were a third of vf-mcp's own start-up time."""
    probe = (
        "import importlib\n"
        "from vf_mcp.cli import build_parser, stdio_server\n"
        "build_parser(emulator=False).parse_args([])\n"
        "server, flush = stdio_server()\n"
        f"for name in {NOT_BUILT_ON_A_STDIO_START!r}:\n"
        "    module, _, model = name.rpartition('.')\n"
        "    built = getattr(importlib.import_module(module), model).__pydantic_complete__\n"
        "    print(name, built)\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "VOICEFLOW_API_KEY": CANARY_KEY,
        "VOICEFLOW_RUNTIME_URL": "http://127.0.0.1:9",
    }
    started = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stderr
    built = [line.split()[0] for line in started.stdout.splitlines() if line.endswith(" True")]
    assert len(started.stdout.splitlines()) == len(NOT_BUILT_ON_A_STDIO_START)
    assert built == []


@pytest.mark.parametrize(("a2a", "loads_a2a"), [("false", False), ("true", True)])
def test_an_http_start_loads_the_a2a_sdk_only_when_a2a_is_on(a2a: str, loads_a2a: bool) -> None:
    probe = (
        "import os, sys\n"
        "from vf_mcp.config import Settings\n"
        "from vf_mcp.http import build_fronts\n"
        "build_fronts(Settings.from_env(os.environ))\n"
        "print(any(m == 'a2a' or m.startswith('a2a.') for m in sys.modules))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "VOICEFLOW_API_KEY": CANARY_KEY,
        "VOICEFLOW_RUNTIME_URL": "http://127.0.0.1:9",
        "VF_MCP_A2A": a2a,
    }
    started = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == str(loads_a2a)
