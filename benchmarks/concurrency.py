"""Concurrency: N conversations at once through one HTTP server process.

Clients are raw JSON-RPC over one shared `httpx.AsyncClient` (stateless 2026-07-28 requests, the
same ones `mcp.Client` sends after its discovery probe): 500 `mcp.Client`s would measure the
client library, not the server. Each conversation is three turns (launch, the "Track an order"
button, "1001"). The floor server and bare httpx run the same script for reference. The server's
peak RSS (VmHWM, reset before each N) and its CPU time per turn come from /proc.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from mcp.shared.inbound import encode_header_value
from mcp.types import (
    CLIENT_CAPABILITIES_META_KEY,
    LATEST_PROTOCOL_VERSION,
    PROTOCOL_VERSION_META_KEY,
)

from benchmarks.procs import (
    EXAMPLE_KEY,
    FLOOR,
    VF_MCP,
    cpu_seconds,
    http_server,
    proc_status_kib,
    reset_peak_rss,
    server_env,
)
from benchmarks.stats import median, ms, ms2, percentile

PROTOCOL = LATEST_PROTOCOL_VERSION
VF_SCRIPT: tuple[dict[str, Any], ...] = (
    {"launch": True},
    {"choice": "Track an order"},
    {"message": "1001"},
)
ACTIONS: tuple[dict[str, Any], ...] = (
    {"type": "launch"},
    {"type": "path-ask_order", "payload": {"label": "Track an order"}},
    {"type": "text", "payload": "1001"},
)
_ids = itertools.count(1)


@dataclass
class ConcurrencyRow:
    server: str
    n: int
    turns: int
    wall_s: float
    latencies: list[float]
    errors: list[str]
    peak_rss_kib: int | None = None
    rss_before_kib: int | None = None
    cpu_ms_per_turn: float | None = None

    def cells(self) -> list[str]:
        rss = "-" if self.peak_rss_kib is None else f"{self.peak_rss_kib / 1024:.0f}"
        per_conv = "-"
        if self.peak_rss_kib is not None and self.rss_before_kib is not None:
            conversations = self.n * repeats(self.n)
            per_conv = f"{(self.peak_rss_kib - self.rss_before_kib) / conversations:.1f}"
        cpu = "-" if self.cpu_ms_per_turn is None else ms2(self.cpu_ms_per_turn)
        return [
            self.server,
            str(self.n),
            f"{self.turns / self.wall_s:.0f}",
            f"{ms(median(self.latencies))}",
            f"{ms(percentile(self.latencies, 99))}",
            _errors(self.errors),
            cpu,
            rss,
            per_conv,
        ]


HEADERS = [
    "server",
    "N",
    "turns/s",
    "turn med ms",
    "turn p99 ms",
    "failed turns",
    "server CPU ms/turn",
    "server peak RSS MiB",
    "RSS growth KiB per conversation",
]


def _errors(errors: list[str]) -> str:
    if not errors:
        return "0"
    kinds = sorted(set(errors))
    return f"{len(errors)} ({', '.join(kinds)[:60]})"


def _rpc(name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    body = {
        "jsonrpc": "2.0",
        "id": next(_ids),
        "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments,
            "_meta": {
                PROTOCOL_VERSION_META_KEY: PROTOCOL,
                CLIENT_CAPABILITIES_META_KEY: {},
            },
        },
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    if "user_id" in arguments:
        # The 2026-07-28 protocol has clients mirror `x-mcp-header` arguments (vf-mcp's user_id);
        # the server refuses a call whose header and body disagree, or that lacks the header.
        headers["mcp-param-user-id"] = encode_header_value(str(arguments["user_id"]))
    return body, headers


def _mcp_turn(
    http: httpx.AsyncClient, url: str, floor: bool
) -> Callable[[str, int], Awaitable[None]]:
    async def turn(user_id: str, step: int) -> None:
        if floor:
            arguments: dict[str, Any] = {"user_id": user_id, "action": ACTIONS[step]}
        else:
            arguments = {"user_id": user_id, **VF_SCRIPT[step]}
        body, headers = _rpc("interact", arguments)
        response = await http.post(url, json=body, headers=headers)
        response.raise_for_status()
        result = response.json().get("result") or {}
        if result.get("isError") or "content" not in result:
            raise RuntimeError(f"turn failed: {response.text[:300]}")

    return turn


def _bare_turn(http: httpx.AsyncClient, runtime_url: str) -> Callable[[str, int], Awaitable[None]]:
    async def turn(user_id: str, step: int) -> None:
        response = await http.post(
            f"{runtime_url}/state/user/{user_id}/interact",
            params={"verbose": "true"},
            json={"action": ACTIONS[step]},
            headers={"Authorization": EXAMPLE_KEY, "versionID": "development"},
        )
        response.raise_for_status()

    return turn


MIN_TURNS = 300
"""Small N are repeated until about this many turns ran, so CPU ticks (10 ms) average out."""


def repeats(n: int) -> int:
    return max(1, MIN_TURNS // (n * len(ACTIONS)))


async def _run(
    turn: Callable[[str, int], Awaitable[None]], prefix: str, n: int
) -> tuple[float, list[float], list[str]]:
    """Run N conversations at once, `repeats(n)` times in a row.

    Returns (wall seconds, latencies of the turns that succeeded, one error name per failed
    turn). A failed turn ends its conversation: the next turn would depend on it.
    """
    latencies: list[float] = []
    errors: list[str] = []
    wall = 0.0
    for repeat in range(repeats(n)):
        wall += await _burst(turn, f"{prefix}-{repeat}", n, latencies, errors)
    return wall, latencies, errors


async def _burst(
    turn: Callable[[str, int], Awaitable[None]],
    prefix: str,
    n: int,
    latencies: list[float],
    errors: list[str],
) -> float:
    async def conversation(index: int) -> None:
        user_id = f"{prefix}-{n}-{index}"
        for step in range(len(ACTIONS)):
            started = time.perf_counter()
            try:
                await turn(user_id, step)
            except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                errors.append(type(exc).__name__)
                return
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(conversation(i) for i in range(n)))
    return time.perf_counter() - started


async def measure(runtime_url: str, ns: tuple[int, ...]) -> list[ConcurrencyRow]:
    rows: list[ConcurrencyRow] = []
    limits = httpx.Limits(max_connections=max(ns) + 10, max_keepalive_connections=max(ns) + 10)
    timeout = httpx.Timeout(120)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        for n in ns:
            wall, latencies, errors = await _run(_bare_turn(http, runtime_url), "bare", n)
            rows.append(ConcurrencyRow("bare httpx", n, len(latencies), wall, latencies, errors))
        for label, module in (("floor", FLOOR), ("vf-mcp", VF_MCP)):
            env = server_env(runtime_url, stream=False)
            with http_server(module, env) as (url, pid):
                turn = _mcp_turn(http, url, floor=label == "floor")
                await _run(turn, f"{label}-warmup", 5)
                for n in ns:
                    reset_peak_rss(pid)
                    rss_before = proc_status_kib(pid, "VmRSS")
                    cpu_before = cpu_seconds(pid)
                    wall, latencies, errors = await _run(turn, label, n)
                    cpu_after = cpu_seconds(pid)
                    cpu = None
                    if cpu_before is not None and cpu_after is not None:
                        cpu = (cpu_after - cpu_before) * 1000 / len(latencies)
                    rows.append(
                        ConcurrencyRow(
                            label,
                            n,
                            len(latencies),
                            wall,
                            latencies,
                            errors,
                            peak_rss_kib=proc_status_kib(pid, "VmHWM"),
                            rss_before_kib=rss_before,
                            cpu_ms_per_turn=cpu,
                        )
                    )
    return rows
