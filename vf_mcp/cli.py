"""`vf-mcp` command line: serve (stdio or HTTP), serve A2A alone, demo, emulator.

Imports stay inside the commands, so `--help`, `--version` and a stdio start pay only for what
they use.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from vf_mcp import __version__
from vf_mcp.arguments import OneLineParser
from vf_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    from vf_mcp.agents import AgentDirectory
    from vf_mcp.config import Settings
    from vf_mcp.server import VfMcpServer

DEFAULT_HTTP_PORT = 8765
EXIT_INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: neither bad input (2) nor a failed test (1)


def _add_serve_options(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """`inherited`: a command's copy of the options, which leaves what was given before the
    command alone (`vf-mcp --port 9000 serve` serves on 9000)."""
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default=argparse.SUPPRESS if inherited else "stdio",
        help="stdio (default; for Claude Desktop, Cursor, ...) or streamable HTTP",
    )
    _add_address_options(parser, inherited=inherited)


def _add_address_options(parser: argparse.ArgumentParser, *, inherited: bool) -> None:
    parser.add_argument(
        "--host",
        default=argparse.SUPPRESS if inherited else "127.0.0.1",
        help="HTTP bind address (default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=_server_port,
        default=argparse.SUPPRESS if inherited else DEFAULT_HTTP_PORT,
        help=f"HTTP port (default {DEFAULT_HTTP_PORT})",
    )


def _server_port(text: str) -> int:
    # Called only for a port given on the command line: a stdio start never loads the emulator.
    from vf_mcp.emulator.addresses import server_port

    return server_port(text)


EMULATOR_HELP = "run the Voiceflow-compatible runtime emulator on loopback"


def build_parser(*, emulator: bool = False) -> argparse.ArgumentParser:
    """`emulator`: with the emulator command's own options (imported only for that command)."""
    parser = OneLineParser(
        prog="vf-mcp",
        description="MCP server for driving a Voiceflow agent through its runtime API. "
        "With no command it serves MCP (needs VOICEFLOW_API_KEY).",
        epilog="Environment: VOICEFLOW_API_KEY, VOICEFLOW_PROJECT_ID, VOICEFLOW_ENVIRONMENT, "
        "VOICEFLOW_RUNTIME_URL, VOICEFLOW_TIMEOUT, VF_MCP_LOG_LEVEL, and more (access, store, "
        "agents, judge): see the Configuration table in README.md. Try `vf-mcp demo` first.",
    )
    parser.add_argument("--version", action="version", version=f"vf-mcp {__version__}")
    _add_serve_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve MCP (the default)")
    _add_serve_options(serve, inherited=True)
    a2a = commands.add_parser(
        "a2a", help="serve only the A2A agent (Agent Card and JSON-RPC) over HTTP, no MCP"
    )
    _add_address_options(a2a, inherited=True)
    demo = commands.add_parser(
        "demo", help="talk to the bundled example agent through the MCP tools (no API key needed)"
    )
    demo.add_argument(
        "--no-stream", action="store_true", help="use the plain interact endpoint, not SSE"
    )
    commands.add_parser(
        "eval",
        add_help=False,
        help="run conversation test suites against the agent (vf-mcp eval --help)",
    )
    emulator_parser = commands.add_parser("emulator", help=EMULATOR_HELP)
    if emulator:
        from vf_mcp.emulator.__main__ import add_arguments as add_emulator_arguments

        add_emulator_arguments(emulator_parser)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(arguments)
    except ConfigurationError as exc:
        print(f"vf-mcp: {exc.message}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:
        # A misconfiguration found while the server starts arrives inside anyio's task groups.
        found = _configuration_error(group)
        if found is None:
            return _internal_error(group)
        print(f"vf-mcp: {found.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _internal_error(exc)


def _run(arguments: list[str]) -> int:
    if arguments[:1] == ["eval"]:
        # The evaluation CLI owns its options; hand it everything after the command name.
        from vf_mcp.evaluation.cli import main as eval_main

        return eval_main(arguments[1:], os.environ)
    args = build_parser(emulator="emulator" in arguments).parse_args(arguments)
    if args.command == "demo":
        from vf_mcp.demo import run_demo

        return run_demo(stream=not args.no_stream)
    if args.command == "emulator":
        from vf_mcp.emulator.__main__ import run as run_emulator

        return run_emulator(args, prog="vf-mcp emulator")
    if args.command == "a2a":
        return _serve_a2a(args.host, args.port)
    return _serve(args.transport, args.host, args.port)


def _internal_error(error: BaseException) -> int:
    """The last net under every command: what no one-line error above foresaw is a bug of
    vf-mcp, said in one line (a traceback means nothing to a user) with how to see it."""
    import traceback

    from vf_mcp.config import ENV_LOG_LEVEL
    from vf_mcp.redaction import redact

    leaf = error
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]
    detail = " ".join(f"{type(leaf).__name__}: {leaf}".split())[:300]
    print(
        f"vf-mcp: internal error ({redact(detail)}); this is a bug in vf-mcp: run the command "
        f"again with {ENV_LOG_LEVEL}=DEBUG to see where it happened, and report it",
        file=sys.stderr,
    )
    if os.environ.get(ENV_LOG_LEVEL, "").strip().upper() == "DEBUG":
        traceback.print_exception(error, file=sys.stderr)
    return EXIT_INTERNAL_ERROR


def _configuration_error(error: BaseException) -> ConfigurationError | None:
    if isinstance(error, ConfigurationError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _configuration_error(inner)) is not None:
                return found
    return None


def _prepare(what: str, host: str | None) -> tuple[Settings, AgentDirectory, Callable[[], None]]:
    """Settings, agents and what flushes telemetry, refused at start in one line when they cannot
    serve (`host`: the HTTP bind address, None on stdio)."""
    from vf_mcp.config import Settings
    from vf_mcp.logs import configure_logging

    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    from vf_mcp.agents import agents_from_settings

    # Fails at start, in one line, when a key (the one agent's, or any named agent's) is missing.
    agents = agents_from_settings(settings, os.environ)
    if settings.agents_file is None:
        settings.require_api_key()
    if host is not None and not (settings.auth_tokens or settings.oauth):
        _refuse_open_address(what, host)
    from vf_mcp.store import check_store

    # What the server's lifespan would only find once serving (and report with a traceback).
    check_store(settings.store_url.get_secret_value() if settings.store_url else None)
    from vf_mcp.telemetry import configure_from_env

    # What the batch processors still hold would be lost at exit: flushed when serving ends.
    return settings, agents, configure_from_env(os.environ)


def _refuse_open_address(what: str, host: str) -> None:
    from vf_mcp.web import is_loopback  # HTTP only: it brings the HTTP front's helpers

    if not is_loopback(host):
        raise ConfigurationError(
            f"Refusing to serve {what} over HTTP on {host} without access control: that address "
            "is reachable from other machines; set VF_MCP_AUTH_TOKENS to one or more long "
            "random tokens, or bind 127.0.0.1"
        )


def stdio_server() -> tuple[VfMcpServer, Callable[[], None]]:
    """The server a plain `vf-mcp` start serves over stdio, built from the environment, and what
    flushes telemetry once it stops. It loads only what serving stdio needs
    (tests/test_cli.py names what it must not)."""
    settings, agents, flush_telemetry = _prepare("MCP", None)
    from vf_mcp.server import build_server

    return build_server(settings, agents=agents), flush_telemetry


def _serve(transport: str, host: str, port: int) -> int:
    if transport == "stdio":
        server, flush = stdio_server()
        try:
            server.run()
        finally:
            flush()
        return 0
    settings, agents, flush_telemetry = _prepare("MCP", host)
    sockets: list[socket.socket] = []
    try:
        sockets = _bind(host, port)
        from vf_mcp.http import build_fronts, serve_http

        fronts = build_fronts(settings, agents=agents)
        return serve_http(fronts, settings, host=host, port=port, sockets=sockets)
    finally:
        for sock in sockets:  # uvicorn closed those it served; this closes them on the way out
            sock.close()
        flush_telemetry()


def _serve_a2a(host: str, port: int) -> int:
    settings, agents, flush_telemetry = _prepare("A2A", host)
    sockets: list[socket.socket] = []
    try:
        sockets = _bind(host, port)
        from vf_mcp.a2a.app import serve_a2a
        from vf_mcp.tools import offered_tools

        # The rules that offer the `interact` tool (read-only mode, the allow-list) choose the
        # A2A skill too, MCP served or not.
        offered = offered_tools(settings, several_agents=len(agents.agents) > 1)
        converses = "interact" in offered
        return serve_a2a(
            settings, agents, host=host, port=port, converses=converses, sockets=sockets
        )
    finally:
        for sock in sockets:
            sock.close()
        flush_telemetry()


def _bind(host: str, port: int) -> list[socket.socket]:
    """The server's address, bound before it announces that it serves there (uvicorn would bind
    only after, log its own error under that line, and exit 3), and handed to it to serve on."""
    from vf_mcp.emulator.addresses import bind_all, listen_problem

    try:
        return bind_all(host, port)
    except OSError as exc:
        raise ConfigurationError(listen_problem(host, port, exc)) from None
