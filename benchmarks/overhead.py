"""Overhead per turn: vf-mcp and the floor server against the bare runtime call, side by side.

Each round sends one `launch` through every target in a shuffled order, so drift (CPU boost,
other load) hits all targets alike. Added time = target - bare httpx; the ratio is vf-mcp's added
time over the floor's added time (1.00x = vf-mcp costs exactly what the SDK costs).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

from benchmarks.procs import EmulatorProcess, cpu_seconds
from benchmarks.stats import median, ms, ms2, percentile, ratio, times, verdict
from benchmarks.targets import TRANSPORTS, Target
from vf_mcp.emulator import FaultPlan

GOAL = 1.2
SMALL_FLOOR_MS = 0.5
"""Below this, the floor's added time is within noise and the ratio divides by it: flagged `*`."""


@dataclass
class OverheadRow:
    transport: str
    stream: bool
    delay_ms: int
    bare: list[float]
    floor: list[float]
    ours: list[float]
    floor_cpu: float = math.nan
    ours_cpu: float = math.nan
    """Server-process CPU ms per turn (stdio and HTTP only: in memory it shares our process)."""

    def added(self, samples: list[float], q: float) -> float:
        return percentile(samples, q) - percentile(self.bare, q)

    def ratio(self, q: float) -> float:
        return ratio(self.added(self.ours, q), self.added(self.floor, q))

    def cells(self) -> list[str]:
        turn = "stream" if self.stream else "plain"
        goal = verdict(self.ratio(50), GOAL) if not self.stream else "(info)"
        flag = "*" if self.added(self.floor, 50) < SMALL_FLOOR_MS else ""
        return [
            self.transport,
            turn,
            f"{self.delay_ms}",
            _pair(self.bare),
            _pair(self.floor),
            _pair(self.ours),
            f"{ms(self.added(self.floor, 50))} / {ms(self.added(self.floor, 90))}",
            f"{ms(self.added(self.ours, 50))} / {ms(self.added(self.ours, 90))}",
            f"{times(self.ratio(50))}{flag} / {times(self.ratio(90))}",
            f"{ms2(self.floor_cpu)} / {ms2(self.ours_cpu)}" if self.delay_ms == 0 else "-",
            goal + flag,
        ]


def _pair(samples: list[float]) -> str:
    return f"{ms(median(samples))} / {ms(percentile(samples, 90))}"


HEADERS = [
    "transport",
    "turn",
    "delay ms",
    "bare httpx med/p90 ms",
    "floor med/p90 ms",
    "vf-mcp med/p90 ms",
    "floor added ms",
    "vf-mcp added ms",
    "ratio med/p90",
    "server CPU/turn floor / vf-mcp ms",
    "goal <=1.2x",
]


def _cpu(target: Target) -> float:
    seconds = cpu_seconds(target.pid) if target.pid is not None else None
    return math.nan if seconds is None else seconds


CONVERSATION_TURNS = 20
"""A target starts a new conversation (user id) every this many rounds: vf-mcp keeps a transcript
per conversation, and one endless conversation is not what a model drives."""


def user_id(target: Target, delay: int, index: int) -> str:
    turn = "s" if target.stream else "p"
    conversation = index // CONVERSATION_TURNS
    return f"bench-{target.kind}-{target.transport}-{turn}-{delay}-{conversation}"


async def measure(
    targets: dict[str, Target],
    emulator: EmulatorProcess,
    rounds: dict[int, int],
    *,
    warmup: int = 5,
) -> list[OverheadRow]:
    rows: list[OverheadRow] = []
    for delay, count in rounds.items():
        emulator.clear_faults()
        if delay:
            emulator.add_fault(FaultPlan(latency_ms=delay, times=-1))
        samples: dict[str, list[float]] = defaultdict(list)
        order = list(targets.values())
        cpu_before = {t.name: _cpu(t) for t in order}
        calls_before = {t.name: t.calls for t in order}
        for index in range(warmup + count):
            random.shuffle(order)
            for target in order:
                arguments = {"user_id": user_id(target, delay, index), "launch": True}
                elapsed = await target.timed(arguments)
                if index >= warmup:
                    samples[target.name].append(elapsed)
        emulator.clear_faults()
        cpu = {
            t.name: (_cpu(t) - cpu_before[t.name]) * 1000 / max(1, t.calls - calls_before[t.name])
            for t in order
        }
        for stream in (False, True):
            turn = "stream" if stream else "plain"
            for transport in TRANSPORTS:
                if f"vf-mcp {transport} {turn}" not in samples:
                    continue
                rows.append(
                    OverheadRow(
                        transport=transport,
                        stream=stream,
                        delay_ms=delay,
                        bare=samples[f"bare httpx {turn}"],
                        floor=samples[f"floor {transport} {turn}"],
                        ours=samples[f"vf-mcp {transport} {turn}"],
                        floor_cpu=cpu[f"floor {transport} {turn}"],
                        ours_cpu=cpu[f"vf-mcp {transport} {turn}"],
                    )
                )
    return rows
