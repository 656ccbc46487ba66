"""``python -m vf_mcp.emulator [--port N] [--agent FILE ...]``: serve in the foreground."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import serve


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vf_mcp.emulator", description="Voiceflow runtime emulator"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    parser.add_argument(
        "--agent", action="append", default=[], metavar="FILE", help="agent file (repeatable)"
    )
    args = parser.parse_args(argv)
    serve(args.port, args.agent, host=args.host)


if __name__ == "__main__":
    main()
