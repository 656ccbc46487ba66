"""``python -m vf_mcp.emulator [--port N] [--agent FILE ...]``: serve in the foreground."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import serve
from .sessions import DEFAULT_SESSION_TTL_S


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vf_mcp.emulator", description="Voiceflow runtime emulator"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    parser.add_argument(
        "--agent", action="append", default=[], metavar="FILE", help="agent file (repeatable)"
    )
    parser.add_argument(
        "--session-ttl",
        type=_positive_seconds,
        default=DEFAULT_SESSION_TTL_S,
        metavar="SECONDS",
        help="lifetime of v4 session keys (default 3600)",
    )
    args = parser.parse_args(argv)
    serve(args.port, args.agent, host=args.host, session_ttl_seconds=args.session_ttl)


if __name__ == "__main__":
    main()
