"""The six figures of issue 24, gathered from the sections of one run, each beside its goal.

Every figure is a ratio of two things measured side by side in the same run (the floor and
vf-mcp alternating, or the same conversation's text and trace bytes), so the load of a shared
machine weighs on both sides alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from benchmarks.coldstart import ColdStart
from benchmarks.overhead import OverheadRow
from benchmarks.sizes import SizeRow
from benchmarks.stats import median, ms, ratio, times, verdict

COLD_START_GOAL = 1.2
ADDED_GOAL = 1.2
WHOLE_TURN_GOAL = 1.05
TOOLS_LIST_GOAL = 24_000
SUMMARY_GOAL = 0.25
GOALS_TRANSPORT = "stdio"
"""The issue's probe drove the official MCP client over stdio."""

HEADERS = ["figure", "measured", "ratio", "goal", "verdict"]


@dataclass
class Goals:
    cold: tuple[ColdStart, ColdStart] | None = None
    """vf-mcp's and the floor's starts."""
    overhead: list[OverheadRow] = field(default_factory=list)
    tools_list: tuple[int, int] | None = None
    """Bytes of the tools/list answer (compact JSON): vf-mcp's, the floor's."""
    recorded: list[SizeRow] = field(default_factory=list)
    """One row per real-runtime agent."""

    def rows(self) -> list[list[str]]:
        return [
            self._cold_row(),
            self._added_row(0),
            self._added_row(50),
            self._whole_turn_row(),
            self._tools_list_row(),
            self._summary_row(),
        ]

    def _cold_row(self) -> list[str]:
        figure = "cold start, spawn -> first tools/list, vs the floor"
        if self.cold is None:
            return _missing(figure, f"<= {COLD_START_GOAL}x")
        ours, floor = (median(c.tools_list) for c in self.cold)
        value = ratio(ours, floor)
        measured = f"{ms(ours)} vs {ms(floor)} ms"
        goal = f"<= {COLD_START_GOAL}x"
        return [figure, measured, times(value), goal, verdict(value, COLD_START_GOAL)]

    def _plain(self, delay: int) -> OverheadRow | None:
        for row in self.overhead:
            if row.transport == GOALS_TRANSPORT and not row.stream and row.delay_ms == delay:
                return row
        return None

    def _added_row(self, delay: int) -> list[str]:
        figure = f"time added per turn vs the floor's, upstream {delay} ms ({GOALS_TRANSPORT})"
        row = self._plain(delay)
        if row is None:
            return _missing(figure, f"<= {ADDED_GOAL}x")
        value = row.ratio(50)
        measured = f"{ms(row.added(row.ours, 50))} vs {ms(row.added(row.floor, 50))} ms"
        return [figure, measured, times(value), f"<= {ADDED_GOAL}x", verdict(value, ADDED_GOAL)]

    def _whole_turn_row(self) -> list[str]:
        figure = f"whole turn vs bare httpx, upstream 50 ms ({GOALS_TRANSPORT})"
        row = self._plain(50)
        if row is None:
            return _missing(figure, f"<= {WHOLE_TURN_GOAL}")
        ours, bare = median(row.ours), median(row.bare)
        value = ratio(ours, bare)
        shown = "-" if math.isnan(value) else f"{value:.3f}"
        goal = f"<= {WHOLE_TURN_GOAL}"
        measured = f"{ms(ours)} vs {ms(bare)} ms"
        return [figure, measured, shown, goal, verdict(value, WHOLE_TURN_GOAL)]

    def _tools_list_row(self) -> list[str]:
        figure = "tools/list answer, compact JSON (floor: one tool)"
        goal = f"<= {TOOLS_LIST_GOAL:,} bytes"
        if self.tools_list is None:
            return _missing(figure, goal)
        ours, floor = self.tools_list
        value = ratio(ours, TOOLS_LIST_GOAL)
        measured = f"{ours:,} bytes (floor {floor:,})"
        return [figure, measured, f"{value:.2f} of the goal", goal, verdict(value, 1.0)]

    def _summary_row(self) -> list[str]:
        figure = "summary text / raw trace JSON, real runtime, each agent"
        goal = f"<= {SUMMARY_GOAL} each"
        if not self.recorded:
            return _missing(figure, goal)
        shares = {row.agent: ratio(row.text["standard"], row.raw) for row in self.recorded}
        measured = ", ".join(f"{name}: {share:.3f}" for name, share in shares.items())
        worst = max(shares.values())
        return [figure, measured, f"{worst:.3f} (most)", goal, verdict(worst, SUMMARY_GOAL)]


def _missing(figure: str, goal: str) -> list[str]:
    return [figure, "(section not run)", "-", goal, "-"]
