"""``python -m benchmarks [--quick] [--only SECTION ...] [--output FILE]``: print the tables."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from benchmarks import (
    ROOT,
    coldstart,
    concurrency,
    evaluation,
    goals,
    machine,
    overhead,
    pieces,
    progress,
    sizes,
)
from benchmarks.procs import EmulatorProcess, emulator_process
from benchmarks.table import render
from benchmarks.targets import open_targets
from vf_mcp.logs import configure_logging

SECTIONS = ("overhead", "pieces", "progress", "sizes", "concurrency", "coldstart", "eval")


@dataclass(frozen=True)
class Plan:
    overhead_rounds: dict[int, int]
    pieces_rounds: int
    progress_rounds: int
    concurrency: tuple[int, ...]
    coldstart_runs: int


FULL = Plan({0: 100, 50: 30}, 200, 15, (1, 10, 100, 500), 7)
QUICK = Plan({0: 30, 50: 8}, 50, 5, (1, 10, 100), 3)


class Report:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        print(text, flush=True)
        self.parts.append(text)

    def section(self, title: str, note: str, headers: Sequence[str], rows: list[list[str]]) -> None:
        self.add(f"\n### {title}\n\n{note}\n\n{render(headers, rows)}")


def _revision() -> str:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
        return run.stdout.strip() if run.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " with uncommitted changes in vf_mcp/" if git("status", "--porcelain", "vf_mcp") else ""
    return f"{commit}{dirty}"


async def _served(
    report: Report, emulator: EmulatorProcess, plan: Plan, only: set[str], found: goals.Goals
) -> None:
    if not only & {"overhead", "progress"}:
        return
    async with open_targets(emulator.url) as targets:
        if "overhead" in only:
            rows = await overhead.measure(targets, emulator, plan.overhead_rounds)
            found.overhead = rows
            report.section(
                "Overhead per turn",
                "A `launch` turn (welcome text + 3 buttons) through each target, rounds "
                "interleaved in random order. added = target - bare httpx (median / p90); "
                "ratio = vf-mcp added / floor added. Goal applies to the plain turn. Server CPU "
                "is per turn over the delay-0 rounds (stdio/HTTP children only). * = the floor "
                "adds under 0.5 ms, so the ratio divides by noise: compare the added ms.",
                overhead.HEADERS,
                [r.cells() for r in rows],
            )
        if "progress" in only:
            progress_rows = await progress.measure(targets, plan.progress_rounds)
            report.section(
                "Time to first progress (streamed knowledge answer)",
                "VOICEFLOW_PROJECT_ID set; the example agent's knowledge answer streams in "
                "chunks 15 ms apart. Gap = first progress notification at the client - first "
                "trace frame at a bare httpx client, medians of the same run.",
                progress.HEADERS,
                [r.cells() for r in progress_rows],
            )


def _turn_sections(
    report: Report, emulator: EmulatorProcess, plan: Plan, only: set[str], found: goals.Goals
) -> None:
    """Where the added time goes, summary size and concurrency."""
    if "pieces" in only:
        report.section(
            "Where the added time goes (stdio, plain turn, upstream 0 ms)",
            "The overhead section's plain stdio turn through the floor, vf-mcp as shipped and "
            "vf-mcp with parts switched off (`benchmarks/switched.py`), rounds interleaved. "
            "saved = what the part costs a turn; client CPU = this process's CPU per call "
            "(median), where the output schema is checked.",
            pieces.HEADERS,
            asyncio.run(pieces.measure(emulator.url, plan.pieces_rounds)),
        )
    if "sizes" in only:
        size_rows = asyncio.run(sizes.measure(emulator.url))
        found.recorded = asyncio.run(sizes.measure_recorded())
        size_rows += found.recorded
        report.section(
            "Summary size",
            "Bytes of the tool's text content over bytes of the raw trace JSON (the runtime's "
            "plain interact body), summed over the turns.",
            sizes.HEADERS,
            [r.cells() for r in size_rows],
        )
    if "concurrency" in only:
        conc_rows = asyncio.run(concurrency.measure(emulator.url, plan.concurrency))
        report.section(
            "Concurrency (streamable HTTP, one server process)",
            "N conversations of 3 plain turns at once; clients are raw JSON-RPC over one "
            "httpx pool (not mcp.Client); small N repeated to ~300 turns. RSS growth = "
            "(peak RSS - RSS before this N) / conversations run; CPU from /proc/PID/stat.",
            concurrency.HEADERS,
            [r.cells() for r in conc_rows],
        )


def _start_sections(
    report: Report, emulator: EmulatorProcess, plan: Plan, only: set[str], found: goals.Goals
) -> None:
    """Cold start and evaluation throughput."""
    if "coldstart" in only:
        ours, floor = coldstart.measure(emulator.url, plan.coldstart_runs)
        found.cold = (ours, floor)
        found.tools_list = (ours.tools_list_bytes, floor.tools_list_bytes)
        report.section(
            "Cold start (stdio)",
            "Process start -> answer to the first tools/list (after initialize), median.",
            coldstart.HEADERS,
            coldstart.rows(ours, floor),
        )
    if "eval" in only:
        report.add(f"\n### Evaluation throughput\n\n{evaluation.measure(emulator.url)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--output", help="also write the report (Markdown) to this file")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    only = set(args.only or SECTIONS)
    configure_logging("WARNING")  # before any MCPServer exists: keep its INFO logging off
    # Stopped by a timeout, unwind so every server is stopped (the kernel kills them on SIGKILL).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.perf_counter()
    report = Report()
    report.add(
        f"## vf-mcp benchmarks ({'quick' if args.quick else 'full'} run, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, revision {_revision()})\n"
    )
    report.add("\n".join(f"- {line}" for line in machine.describe()))
    found = goals.Goals()
    with emulator_process() as emulator:
        asyncio.run(_served(report, emulator, plan, only, found))
        _turn_sections(report, emulator, plan, only, found)
        _start_sections(report, emulator, plan, only, found)
    report.section(
        "Issue 24's figures",
        "Each figure is a ratio of two things measured side by side in this run (see the "
        "sections above): the floor and vf-mcp alternating, or the same turns' text and traces.",
        goals.HEADERS,
        found.rows(),
    )
    report.add(f"\nTotal benchmark time: {time.perf_counter() - started:.0f} s")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write("\n".join(report.parts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
