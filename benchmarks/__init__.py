"""Benchmarks of the cost vf-mcp adds on top of the Voiceflow runtime and the MCP SDK.

Run ``python -m benchmarks`` (``--quick`` for a shorter run) from the repository root. Everything
runs against the bundled emulator on loopback; see benchmarks/README.md for the latest table.

This package must stay cheap to import: ``python -m benchmarks.floor`` is one of the servers whose
cold start is measured.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: the working directory of every child process."""

AGENTS_DIR = Path(__file__).resolve().parent / "agents"
