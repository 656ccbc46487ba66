"""No server a test or a benchmark starts outlives it, however its starter ends."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap

from tests.children import spawn, stop

# A starter that starts a long-lived child, says its pid, and waits to be killed.
STARTER = textwrap.dedent(
    """
    import sys, time
    from tests.children import spawn
    child = spawn([sys.executable, "-c", "import time; time.sleep(600)"])
    print(child.pid, flush=True)
    sys.stdin.read()
    """
)


def exits_within(pid: int, seconds: float) -> bool:
    """Wait on the process itself (a pidfd), not on a timer."""
    fd = os.pidfd_open(pid)
    try:
        readable, _, _ = select.select([fd], [], [], seconds)
        return bool(readable)
    finally:
        os.close(fd)


def test_a_child_dies_with_a_starter_killed_outright() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert starter.stdout is not None
    child = int(starter.stdout.readline())
    try:
        assert not exits_within(child, 0)
        starter.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel can help
        starter.wait()
        assert exits_within(child, 10)
    finally:
        if starter.stdin is not None:
            starter.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_stopping_a_child_stops_what_it_started() -> None:
    script = textwrap.dedent(
        """
        import subprocess, sys
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(grandchild.pid, flush=True)
        sys.stdin.read()
        """
    )
    child = spawn(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    stop(child)
    assert exits_within(grandchild, 10)
