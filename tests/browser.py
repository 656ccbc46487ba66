"""Debian's Chromium, headless, for tests that look at a rendered page.

scripts/test installs the `chromium` package; nothing here downloads a browser. As root Chromium
needs `--no-sandbox`; the background-networking flags keep it from dialing out at start, which
this machine's closed network would refuse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-headless-shell")
    if found is None:
        pytest.fail("chromium is not installed: scripts/test installs Debian's chromium")
    return found


def launch_flags() -> list[str]:
    """The flags every test's Chromium starts with (the Node host page gets them too)."""
    return [*FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="vf-mcp-chromium-") as profile:
        command = [chromium(), *launch_flags(), f"--user-data-dir={profile}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def dump_dom(page: Path) -> str:
    """The DOM after the page has loaded, serialized."""
    return _run("--dump-dom", page.resolve().as_uri()).stdout


def screenshot(page: Path, png: Path, *, width: int = 900, height: int = 1400) -> Path:
    _run(f"--screenshot={png}", f"--window-size={width},{height}", page.resolve().as_uri())
    assert png.stat().st_size > 0
    return png
