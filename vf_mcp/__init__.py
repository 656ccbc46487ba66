"""vf-mcp: drive a Voiceflow agent from any MCP client."""

from __future__ import annotations

__version__ = "0.1.0"


def main() -> None:
    """Console entry point (`vf-mcp`)."""
    from vf_mcp.cli import run

    raise SystemExit(run())
