"""Real services the scale-out tests start on loopback: Debian's redis-server and haproxy.

scripts/test installs both; a test that needs one fails (never skips) when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.children import spawn, stop
from tests.processes import free_port, wait_until_healthy


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(f"{name} is not installed: scripts/test installs Debian's {name}")
    return found


@contextmanager
def redis_server(*, port: int | None = None, data_dir: Path | None = None) -> Iterator[str]:
    """A throwaway redis-server; yields its URL. With `data_dir` it keeps every write there (an
    append-only file, synced at once), so a restart on the same port finds it all again."""
    port = port or free_port()
    keep = ["--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "always"]
    command = [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               *(keep if data_dir else ["--appendonly", "no"])]  # fmt: skip
    process = spawn(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # redis says when it is ready; no polling needed
        if "Ready to accept connections" in line:
            break
    else:
        pytest.fail(f"redis-server exited with {process.wait()} before it was ready")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def haproxy_config(port: int, workers: Sequence[int], *, balance: str = "roundrobin") -> str:
    """What the README recommends, pointed at loopback workers.

    `retry-on conn-failure` repeats only requests that never reached a worker (a POST that did
    is never replayed); `option http-server-close` opens a fresh worker connection per request,
    so no request is written into a keep-alive a stopping worker is closing.
    """
    servers = "\n".join(
        f"    server w{n} 127.0.0.1:{p} check inter 200ms fall 1 rise 1"
        for n, p in enumerate(workers)
    )
    return (
        textwrap.dedent(
            f"""\
        global
            maxconn 2000
        defaults
            mode http
            timeout connect 2s
            timeout client 60s
            timeout server 60s
            retries 3
            retry-on conn-failure
            option redispatch 1
            option http-server-close
        frontend mcp
            bind 127.0.0.1:{port}
            default_backend workers
        backend workers
            balance {balance}
            option httpchk GET /healthz
        """
        )
        + servers
        + "\n"
    )


@contextmanager
def haproxy(workers: Sequence[int], tmp: Path) -> Iterator[str]:
    """haproxy in front of the workers' ports; yields its base URL once it answers."""
    port = free_port()
    config = tmp / "haproxy.cfg"
    config.write_text(haproxy_config(port, workers))
    binary = _binary("haproxy")
    checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    process = spawn([binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/healthz", process)
        yield base
    finally:
        stop(process)
