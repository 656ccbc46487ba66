"""``python -m vf_mcp.emulator [--port N] [--agent FILE ...]``: serve in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import options
from .addresses import listen_problem, port_number
from .sessions import DEFAULT_SESSION_TTL_S

PROG = "python -m vf_mcp.emulator"


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every emulator option, declared once for ``python -m vf_mcp.emulator`` and
    ``vf-mcp emulator``."""
    parser.add_argument(
        "--port", type=port_number, default=0, help="port to listen on (0 = any free)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="FILE",
        help="agent file (YAML or JSON); repeatable; default: the example order-support agent",
    )
    parser.add_argument(
        "--session-ttl",
        type=_positive_seconds,
        default=DEFAULT_SESSION_TTL_S,
        metavar="SECONDS",
        help="lifetime of v4 session keys (default 3600)",
    )
    parser.add_argument(
        "--state-semantics",
        default="recorded",
        metavar="{" + ",".join(options.STATE_SEMANTICS) + "}",
        help="recorded: DELETE removes variables too, as the open-source runtime does "
        "(default); hosted: DELETE keeps the user's variables, as the hosted docs say",
    )
    parser.add_argument(
        "--routes",
        default="hosted",
        metavar="{" + ",".join(options.ROUTE_SETS) + "}",
        help="hosted: also serve the v2 stream, v4 and session events (default); "
        "open-source: only the open-source runtime's routes (the others are 404)",
    )


def run(args: argparse.Namespace, *, prog: str = PROG) -> int:
    """Serve with the parsed options; a bad value, an agent file that does not load or an
    address it cannot listen on is one line on stderr and exit code 2."""
    try:
        semantics = options.state_semantics(args.state_semantics)
        routes = options.route_set(args.routes)
    except options.OptionError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    from .agent import AgentFileError
    from .runner import serve

    try:
        serve(
            args.port,
            args.agent,
            host=args.host,
            session_ttl_seconds=args.session_ttl,
            state_semantics=semantics,
            routes=routes,
        )
    except AgentFileError as exc:
        print(f"{prog}: agent file {exc}; fix it, or leave out --agent", file=sys.stderr)
        return 2
    except OSError as exc:  # only binding raises it: loading wraps its own in AgentFileError
        print(f"{prog}: {listen_problem(args.host, args.port, exc)}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description="Voiceflow runtime emulator")
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
