"""Child processes: the emulator, vf-mcp and the floor server, plus what we read from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from mcp.client.stdio import StdioServerParameters

from benchmarks import AGENTS_DIR, ROOT
from tests.children import spawn, stop
from vf_mcp.emulator import DEFAULT_AGENT_PATH, FaultPlan

EXAMPLE_PROJECT_ID = "6650f0c2a1b2c3d4e5f60718"
LONG_TURN_PROJECT_ID = "b3c4d5e6f7a8b9c0d1e2f3a4"
# With two agents loaded, the emulator routes a keyless agent by the key's id part.
EXAMPLE_KEY = f"VF.DM.{EXAMPLE_PROJECT_ID}.benchmark"
LONG_TURN_KEY = f"VF.DM.{LONG_TURN_PROJECT_ID}.benchmark"
LONG_TURN_AGENT = AGENTS_DIR / "long_turn.yaml"

VF_MCP = ("-m", "vf_mcp")
FLOOR = ("-m", "benchmarks.floor")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(runtime_url: str, *, key: str = EXAMPLE_KEY, stream: bool = False) -> dict[str, str]:
    """What a vf-mcp (or floor) child gets; `stream` sets the project id (SSE turns)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "VOICEFLOW_API_KEY": key,
        "VOICEFLOW_RUNTIME_URL": runtime_url,
        "VF_MCP_LOG_LEVEL": "WARNING",
    }
    if stream:
        env["VOICEFLOW_PROJECT_ID"] = EXAMPLE_PROJECT_ID
    return env


def stdio_params(module: Sequence[str], env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=list(module), env=env, cwd=ROOT)


@dataclass
class EmulatorProcess:
    """The emulator in its own process, so it never shares a GIL with what is measured."""

    url: str
    process: subprocess.Popen[str]

    def add_fault(self, plan: FaultPlan) -> None:
        body = plan.model_dump(mode="json", exclude_none=True)
        httpx.post(f"{self.url}/_emulator/faults", json=body).raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/_emulator/faults").raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_emulator/reset").raise_for_status()


@contextmanager
def emulator_process() -> Iterator[EmulatorProcess]:
    """The example agent and the 200-trace agent on one loopback port."""
    agents = [str(DEFAULT_AGENT_PATH), str(LONG_TURN_AGENT)]
    command = [sys.executable, "-m", "vf_mcp.emulator"]
    for agent in agents:
        command += ["--agent", agent]
    process = spawn(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield EmulatorProcess(url=line.split()[-1], process=process)
    finally:
        stop(process)


@contextmanager
def http_server(module: Sequence[str], env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """Serve `module` over streamable HTTP; yields (MCP endpoint URL, pid)."""
    port = free_port()
    # Overloaded servers log every failed turn with a traceback; the report is what we print.
    process = spawn(
        [sys.executable, *module, "--transport", "http", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/healthz", process)
        yield f"{base}/mcp", process.pid
    finally:
        stop(process)


def wait_until_healthy(url: str, process: subprocess.Popen[Any], deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)  # readiness polling interval
    raise TimeoutError(f"{url} did not become healthy in {deadline_s} s")


def proc_status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmHWM = peak RSS, VmRSS = current RSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far (from /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime field 14, stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids() -> set[int]:
    """Live children of this process (stdio servers spawned by `mcp.Client`)."""
    me = str(os.getpid())
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:"):
                if line.split()[1] == me:
                    children.add(int(entry.name))
                break
    return children
