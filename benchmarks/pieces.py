"""Where vf-mcp's added time per turn goes: the same turn with parts switched off, side by side.

The plain stdio turn of the overhead section, through the floor, through vf-mcp as shipped, and
through vf-mcp with one part or several switched off (`benchmarks.switched`): the client's check
of each result against the output schema, the transcript record, the structured content. Rounds
interleave every target in a shuffled order, as in the overhead section. What a row saves against
vf-mcp as shipped is what that part costs; what is left with all of them off is the summary, the
conversation's memory and the runtime client's own work.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from mcp import Client

from benchmarks.procs import FLOOR, VF_MCP, child_pids, cpu_seconds, server_env, stdio_params
from benchmarks.stats import median, ms, ms2, percentile, ratio, times
from benchmarks.switched import ENV_OFF
from benchmarks.targets import bare_call, bare_http, floor_call, vf_call

SWITCHED = ("-m", "benchmarks.switched")
VARIANTS: tuple[tuple[str, str], ...] = (
    ("vf-mcp as shipped", ""),
    ("without the client's output-schema check", "schema"),
    ("without the transcript record", "record"),
    ("without structured content (nor schema)", "schema,structured"),
    ("without all three", "schema,structured,record"),
)
"""(row name, parts switched off): the first is `python -m vf_mcp` itself."""

HEADERS = [
    "server",
    "med / p90 ms",
    "added ms",
    "ratio to floor's added",
    "saved vs shipped ms",
    "server CPU/turn ms",
    "client CPU/turn ms",
]


@dataclass
class Piece:
    name: str
    call: Callable[..., Awaitable[Any]]
    pid: int | None
    samples: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: float = math.nan


@asynccontextmanager
async def _pieces(runtime_url: str) -> AsyncIterator[list[Piece]]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(bare_http(runtime_url))
        pieces = [Piece("bare httpx", bare_call(http, stream=False), None)]

        async def connect(
            module: tuple[str, ...], env: dict[str, str]
        ) -> tuple[Client, int | None]:
            before = child_pids()
            client = await stack.enter_async_context(Client(stdio_params(module, env)))
            spawned = child_pids() - before
            return client, spawned.pop() if len(spawned) == 1 else None

        floor, pid = await connect(FLOOR, server_env(runtime_url, stream=True))
        pieces.append(Piece("floor", floor_call(floor, stream=False), pid))
        for name, off in VARIANTS:
            env = server_env(runtime_url) | ({ENV_OFF: off} if off else {})
            client, pid = await connect(SWITCHED if off else VF_MCP, env)
            pieces.append(Piece(name, vf_call(client), pid))
        yield pieces


async def measure(runtime_url: str, rounds: int, *, warmup: int = 10) -> list[list[str]]:
    async with _pieces(runtime_url) as pieces:
        cpu_before: dict[str, float] = {}
        for index in range(warmup + rounds):
            if index == warmup:
                cpu_before = {p.name: _cpu(p) for p in pieces}
            order = list(pieces)
            random.shuffle(order)
            for piece in order:
                # A new conversation every 20 turns, as in the overhead section.
                arguments = {"user_id": f"pieces-{id(piece)}-{index // 20}", "launch": True}
                started, cpu = time.perf_counter(), time.process_time()
                await piece.call(arguments)
                if index >= warmup:
                    piece.samples.append((time.perf_counter() - started) * 1000)
                    piece.client_cpu.append((time.process_time() - cpu) * 1000)
        for piece in pieces:
            piece.server_cpu = (_cpu(piece) - cpu_before[piece.name]) * 1000 / rounds
        return _rows(pieces)


def _cpu(piece: Piece) -> float:
    seconds = cpu_seconds(piece.pid) if piece.pid is not None else None
    return math.nan if seconds is None else seconds


def _rows(pieces: list[Piece]) -> list[list[str]]:
    bare = median(pieces[0].samples)
    floor_added = median(pieces[1].samples) - bare
    shipped = median(pieces[2].samples)
    rows = []
    for piece in pieces[1:]:
        med = median(piece.samples)
        saved = "-" if piece.name in ("floor", VARIANTS[0][0]) else ms(shipped - med)
        rows.append(
            [
                piece.name,
                f"{ms(med)} / {ms(percentile(piece.samples, 90))}",
                ms(med - bare),
                times(ratio(med - bare, floor_added)),
                saved,
                ms2(piece.server_cpu),
                ms2(median(piece.client_cpu)),
            ]
        )
    return rows
