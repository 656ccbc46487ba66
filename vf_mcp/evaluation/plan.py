"""How big a run is before it starts: its tests (trials counted) and the turns it scripts.

The runner asks here how often each test runs, so the count a run reports as its total and the
count it runs are one rule. `run_conversation` measures a suite by its planned turns: turns are
what takes time (each one is a round trip to the agent, often seconds), tests are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vf_mcp.evaluation.script import ScriptTest, Suite


def trials_of(suite: Suite, test: ScriptTest, repeat: int | None) -> int:
    """How often one test of `suite` runs on its own (a shared-user suite repeats as a whole)."""
    if not suite.new_user_per_test:
        return 1
    return test.repeat or repeat or 1


def rounds_of(suite: Suite, repeat: int | None) -> int:
    """How often the tests of a shared-user suite run in sequence (`--repeat`)."""
    return 1 if suite.new_user_per_test else repeat or 1


def scripted_turns(test: ScriptTest) -> int:
    """The turns one trial sends at most: its steps, or a simulated user's turn cap."""
    return test.simulate.max_turns if test.simulate is not None else len(test.turns)


@dataclass(frozen=True)
class RunPlan:
    tests: int
    """Every test run the suites hold, each trial counted."""
    turns: int
    """The turns those tests script (a simulated user's at its cap)."""


def plan_of(suites: Sequence[Suite], *, repeat: int | None = None) -> RunPlan:
    tests = turns = 0
    for suite in suites:
        rounds = rounds_of(suite, repeat)
        for test in suite.tests:
            runs = trials_of(suite, test, repeat) * rounds
            tests += runs
            turns += runs * scripted_turns(test)
    return RunPlan(tests=tests, turns=turns)
