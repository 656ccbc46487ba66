"""Where a turn's server CPU goes, by part, sampled with py-spy (not a timed benchmark).

``python -m benchmarks.profile_turn [--turns N] [--checkout DIR ...]`` drives N plain `launch`
turns over stdio through the floor and through vf-mcp (this checkout, and any other checkout
given, e.g. an older revision from `git worktree add`), each while py-spy samples the server, and
prints the server's CPU per turn split by part. Needs `py-spy` on PATH (`pip install py-spy`)
and the right to trace a child process (root, or ptrace_scope 0/1).

Each sample is put under the innermost vf-mcp frame on its stack (`PARTS`); a sample with no
vf-mcp frame is the SDK, its transport and the event loop. The floor's tool counts as the
runtime call. Sampling costs the server time too, so compare rows, not absolute milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from benchmarks import ROOT
from benchmarks.procs import FLOOR, VF_MCP, child_pids, emulator_process, server_env
from benchmarks.table import render
from benchmarks.targets import floor_call, vf_call

RATE_HZ = 300
"""py-spy's default is 100; at 1000 three samplers slow the servers they sample, and the
SDK's row moved by 0.6 ms between runs; at 300 it holds within about 0.1."""
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reading and typing the answer", ("_read_body", "_loads", "vf_mcp/voiceflow/traces.py")),
    ("runtime call (httpx, retries)", ("vf_mcp/voiceflow/", "vf_mcp/retry.py", "floor.py")),
    ("transcript record", ("vf_mcp/transcripts/", "record_turn")),
    ("summary and its text", ("vf_mcp/summary/",)),
    ("in-flight lease", ("vf_mcp/conversation/inflight.py", "Leases.")),
    ("conversation memory", ("vf_mcp/store/", "vf_mcp/bounded.py", "_remember_turn")),
    ("result and arguments", ("vf_mcp/tools/",)),
    ("telemetry spans", ("vf_mcp/telemetry.py",)),
)
"""(part, what its frames name): the first part whose pattern is in the innermost vf-mcp frame
wins; the order puts a specific pattern before the module holding it."""
ENTRY = (
    "vf_mcp/cli.py",
    "vf_mcp/__init__.py",
    "vf_mcp/__main__.py",
    "main (",
    "<module> (",
    "apps_gate.<locals>.gate",
)
"""Frames under which the whole server or request runs (the entry point; the MCP Apps gate, a
middleware that passes a tools/call through): never what a sample is spent on."""
OTHER_VF = "vf-mcp, other"
SDK = "SDK, transport, event loop"


def part_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        if any(entry in frame for entry in ENTRY):
            continue
        if "vf_mcp/" in frame or "floor.py" in frame:
            if "record_turn" in " ".join(stack) and "vf_mcp/" in frame:
                return "transcript record"
            for part, patterns in PARTS:
                if any(pattern in frame for pattern in patterns):
                    return part
            return OTHER_VF
    return SDK


def parts(raw: Path) -> Counter[str]:
    """Samples per part from py-spy's raw (collapsed) output."""
    found: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        found[part_of(stack.split(";"))] += int(count)
    return found


@dataclass
class Sampled:
    """A server with py-spy attached: its turn and where the sampler writes."""

    call: Callable[[dict[str, Any]], Awaitable[Any]]
    sampler: asyncio.subprocess.Process
    raw: Path


@dataclass(frozen=True)
class Server:
    """A server to sample: `python -m ...` with its environment, run from `cwd` (whose code
    `python -m` imports before any `PYTHONPATH`)."""

    module: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


async def _start(stack: AsyncExitStack, server: Server, raw: Path, rate: int) -> Sampled:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not on PATH: install it (pip install py-spy) and run again")
    before = child_pids()
    params = StdioServerParameters(
        command=sys.executable, args=list(server.module), env=server.env, cwd=server.cwd
    )
    client = await stack.enter_async_context(Client(params))
    (pid,) = child_pids() - before
    call = floor_call(client, stream=False) if server.module == FLOOR else vf_call(client)
    for index in range(20):
        await call({"user_id": f"warm-{index}", "launch": True})
    command = [spy, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(raw)]
    sampler = await asyncio.create_subprocess_exec(
        *command, "--nonblocking", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return Sampled(call, sampler, raw)


async def drive(servers: dict[str, Server], turns: int, rate: int) -> dict[str, Counter[str]]:
    """`turns` turns through each server, in turn (drift hits all alike), each sampled."""
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            sampled = {
                name: await _start(stack, server, Path(tmp) / f"{index}.txt", rate)
                for index, (name, server) in enumerate(servers.items())
            }
            for index in range(turns):
                for each in sampled.values():
                    await each.call({"user_id": f"profile-{index // 20}", "launch": True})
            for name, each in sampled.items():
                each.sampler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                if await each.sampler.wait() != 0 or not each.raw.exists():
                    raise SystemExit(f"py-spy failed on {name} (may this user trace it?)")
            return {name: parts(each.raw) for name, each in sampled.items()}


def table(measured: dict[str, Counter[str]], turns: int, rate: int) -> str:
    names = list(measured)
    order = [SDK, *(part for part, _ in PARTS), OTHER_VF]
    per_turn_ms = 1000 / rate / turns
    rows = [
        [part, *(f"{measured[name][part] * per_turn_ms:.2f}" for name in names)] for part in order
    ]
    total = [f"{sum(measured[name].values()) * per_turn_ms:.2f}" for name in names]
    rows.append(["all (sampled CPU ms per turn)", *total])
    return render(["part", *names], rows)


async def main_async(turns: int, rate: int, checkouts: list[Path]) -> str:
    with emulator_process() as emulator:
        servers = {"floor": Server(FLOOR, server_env(emulator.url, stream=True), ROOT)}
        for checkout in [ROOT, *checkouts]:
            env = server_env(emulator.url) | {"PYTHONPATH": str(checkout)}
            _check_served_from(checkout, env)
            name = "vf-mcp" if checkout == ROOT else f"vf-mcp at {checkout.name}"
            servers[name] = Server(VF_MCP, env, checkout)
        return table(await drive(servers, turns, rate), turns, rate)


def _check_served_from(checkout: Path, env: dict[str, str]) -> None:
    """Refuse to go on unless `vf_mcp` comes from `checkout`: else a column named for another
    revision would sample this one."""
    found = subprocess.run(
        [sys.executable, "-c", "import vf_mcp; print(vf_mcp.__file__)"],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(checkout):
        raise SystemExit(f"vf_mcp from {checkout} imports {found} instead; is it a checkout?")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_turn", description=__doc__)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=RATE_HZ, help="samples a second")
    parser.add_argument("--checkout", type=Path, nargs="*", default=[], help="other checkouts")
    args = parser.parse_args()
    os.chdir(ROOT)
    print(asyncio.run(main_async(args.turns, args.rate, [c.resolve() for c in args.checkout])))


if __name__ == "__main__":
    main()
