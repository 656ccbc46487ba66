"""Helpers for tests that run vf-mcp as a real subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.canary import CANARY_KEY
from tests.children import spawn, stop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ROOT = Path(__file__).resolve().parents[1]


def server_env(runtime_url: str, **extra: str) -> dict[str, str]:
    """The environment a vf-mcp child gets: only what it needs, plus the canary key."""
    env = {
        # The child runs this checkout's vf_mcp, whichever one the venv has installed.
        "PYTHONPATH": str(ROOT),
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "VOICEFLOW_API_KEY": CANARY_KEY,
        "VOICEFLOW_RUNTIME_URL": runtime_url,
        "VF_MCP_LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], deadline_s: float = 20) -> None:
    """Poll `url` until it answers 200; fail at once if the process died."""
    end = time.monotonic() + deadline_s
    with httpx.Client(timeout=1) as http:
        while time.monotonic() < end:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before it was ready")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling interval of a readiness probe, not synchronisation
    raise TimeoutError(f"{url} did not become healthy in {deadline_s} s")


@contextmanager
def http_server(
    env: Mapping[str, str], *args: str, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = port or free_port()
    process = spawn(
        [sys.executable, "-m", "vf_mcp", "--transport", "http", "--port", str(port), *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/healthz", process)
        yield base, process
    finally:
        stop(process)


def as_caller(base: str, token: str) -> Client:
    """An MCP client of the HTTP server at `base`, calling with bearer `token`."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{base}/mcp", http_client=http))
