"""Time to first progress on a streamed answer, against the runtime's first trace.

The turn is the example agent's knowledge answer ("Ask a question", then a question): the
emulator streams a completion in chunks 15 ms apart. The reference is bare httpx reading the same
stream and noting when the first `trace` frame arrives; every server target notes when the
client's progress callback first fires. Gap = first progress - first trace (medians, same run,
rounds interleaved).
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass

from benchmarks.stats import median, ms, percentile
from benchmarks.targets import TRANSPORTS, Target

QUESTION = "How long does shipping take?"
ASK = {"type": "path-ask_question", "payload": {"label": "Ask a question"}}
GOAL_MS = 5.0


@dataclass
class ProgressRow:
    kind: str
    transport: str
    first: list[float]
    total: list[float]
    reference: list[float]

    def gap(self, q: float) -> float:
        return percentile(self.first, q) - percentile(self.reference, q)

    def cells(self) -> list[str]:
        gap = self.gap(50)
        goal = "-" if math.isnan(gap) else ("met" if gap <= GOAL_MS else "NOT MET")
        return [
            self.kind,
            self.transport,
            f"{ms(median(self.reference))}",
            f"{ms(median(self.first))} / {ms(percentile(self.first, 90))}",
            f"{ms(gap)} / {ms(self.gap(90))}",
            f"{ms(median(self.total))}",
            goal if self.kind == "vf-mcp" else "(floor)",
        ]


HEADERS = [
    "server",
    "transport",
    "bare first trace med ms",
    "first progress med/p90 ms",
    "gap med/p90 ms",
    "whole answer med ms",
    "goal gap <=5 ms",
]


async def _prepare(target: Target, user_id: str) -> None:
    """Bring the conversation to the question prompt (not timed)."""
    await target.call({"user_id": user_id, "launch": True})
    if target.kind == "vf-mcp":
        await target.call({"user_id": user_id, "choice": "Ask a question"})
    else:
        await target.call({"user_id": user_id, "action": ASK})


async def _timed_answer(target: Target, user_id: str) -> tuple[float, float]:
    """(first progress or first trace, whole answer), in ms from the call."""
    first: list[float] = []
    started = time.perf_counter()

    def mark() -> None:
        if not first:
            first.append((time.perf_counter() - started) * 1000)

    async def on_progress(_progress: float, _total: float | None, _message: str | None) -> None:
        mark()

    arguments = {"user_id": user_id, "message": QUESTION}
    if target.kind == "bare":
        await target.call(arguments, mark)
    else:
        await target.call(arguments, on_progress)
    total = (time.perf_counter() - started) * 1000
    return (first[0] if first else math.nan), total


async def measure(targets: dict[str, Target], rounds: int, *, warmup: int = 2) -> list[ProgressRow]:
    chosen = [t for t in targets.values() if t.stream]
    first: dict[str, list[float]] = defaultdict(list)
    total: dict[str, list[float]] = defaultdict(list)
    for index in range(warmup + rounds):
        random.shuffle(chosen)
        for target in chosen:
            user_id = f"progress-{target.kind}-{target.transport}-{index}"
            await _prepare(target, user_id)
            got_first, got_total = await _timed_answer(target, user_id)
            if index >= warmup:
                first[target.name].append(got_first)
                total[target.name].append(got_total)
    reference = first["bare httpx stream"]
    return [
        ProgressRow(kind, transport, first[name], total[name], reference)
        for kind in ("floor", "vf-mcp")
        for transport in TRANSPORTS
        if (name := f"{kind} {transport} stream") in first
    ]
