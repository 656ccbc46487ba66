"""Servers the tests and benchmarks start, and the promise that none outlives its starter.

Each child leads a process group of its own (so stopping it stops whatever it started) and asks
the kernel to kill it when its parent dies (`PR_SET_PDEATHSIG`): a run stopped by a timeout, a
SIGKILL or a crash leaves no server behind. The death signal follows the thread that started the
child, so start children from the main thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(command: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen`, in a new process group, killed if this process dies first."""
    return subprocess.Popen(
        list(command), start_new_session=True, preexec_fn=_die_with_parent, **options
    )


def stop(process: subprocess.Popen[Any], *, grace_s: float = 10) -> int:
    """Stop the child's whole group: SIGTERM, then SIGKILL after `grace_s`; its exit code."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
    # Whatever it started and left behind goes with it.
    _signal_group(process, signal.SIGKILL)
    return process.returncode


def _signal_group(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
