"""Cold start: process start to the first `tools/list` answer over stdio.

The client side is raw JSON-RPC on the child's pipes, as a desktop client does it: `initialize`,
wait for the answer, `notifications/initialized` + `tools/list`, wait for the list. vf-mcp and the
floor (a hello-world `MCPServer` with one tool) alternate, so both see the same disk cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from benchmarks import ROOT
from benchmarks.procs import FLOOR, VF_MCP, server_env
from benchmarks.stats import median, ms, ratio, times, verdict
from tests.children import spawn, stop

GOAL = 1.2
LEGACY_VERSION = "2025-11-25"


@dataclass
class ColdStart:
    label: str
    initialize: list[float] = field(default_factory=list)
    tools_list: list[float] = field(default_factory=list)
    tools_list_bytes: int = 0
    """The tools/list answer's result, compact JSON, as every client receives it."""


HEADERS = [
    "server",
    "runs",
    "start -> initialize med ms",
    "start -> tools/list med ms",
    "ratio to floor",
    "goal <=1.2x",
]


def _send(stdin: IO[bytes], message: dict[str, Any]) -> None:
    stdin.write((json.dumps(message) + "\n").encode())
    stdin.flush()


def _wait_for(stdout: IO[bytes], request_id: int) -> dict[str, Any]:
    while line := stdout.readline():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"request {request_id} failed: {message['error']}")
            return dict(message)
    raise RuntimeError("the server closed stdout before answering")


def one_start(module: tuple[str, ...], env: dict[str, str]) -> tuple[float, float, int]:
    """(ms to the initialize answer, ms to the tools/list answer, bytes of the tools list)."""
    started = time.perf_counter()
    process = spawn(
        [sys.executable, *module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        _send(
            process.stdin,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": LEGACY_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "vf-mcp-benchmarks", "version": "0"},
                },
            },
        )
        _wait_for(process.stdout, 1)
        initialized = (time.perf_counter() - started) * 1000
        _send(process.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(process.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        answer = _wait_for(process.stdout, 2)
        listed = (time.perf_counter() - started) * 1000
    finally:
        process.stdin.close()
        stop(process)
    return initialized, listed, len(json.dumps(answer["result"], separators=(",", ":")))


def measure(runtime_url: str, repetitions: int) -> tuple[ColdStart, ColdStart]:
    env = server_env(runtime_url)
    ours, floor = ColdStart("vf-mcp (python -m vf_mcp)"), ColdStart("floor (hello-world MCPServer)")
    one_start(VF_MCP, env)  # warm the page cache and bytecode caches for both
    one_start(FLOOR, env)
    for _ in range(repetitions):
        for result, module in ((ours, VF_MCP), (floor, FLOOR)):
            initialized, listed, size = one_start(module, env)
            result.initialize.append(initialized)
            result.tools_list.append(listed)
            result.tools_list_bytes = size
    return ours, floor


def rows(ours: ColdStart, floor: ColdStart) -> list[list[str]]:
    cold = ratio(median(ours.tools_list), median(floor.tools_list))
    return [
        [
            floor.label,
            str(len(floor.tools_list)),
            ms(median(floor.initialize)),
            ms(median(floor.tools_list)),
            "1.00x",
            "(floor)",
        ],
        [
            ours.label,
            str(len(ours.tools_list)),
            ms(median(ours.initialize)),
            ms(median(ours.tools_list)),
            times(cold),
            verdict(cold, GOAL),
        ],
    ]
