"""Trials: running a test several times, pass^k, flaky tests, and the run's turn cap.

Agents built on language models answer differently from run to run, so one pass says little.
`repeat: N` (or `--repeat N`) runs a test N times; each trial is its own transcript (`trial`).
Per repeated test the suite reports the pass rate, pass^k for k = 1..N (the chance that k
trials all pass, as tau-bench reports it: https://arxiv.org/abs/2406.12045, estimated without
bias from c passes of n trials as C(c, k) / C(n, k)) and whether it is flaky (some trials passed,
some did not).

A run also has a cap on the requests it sends to the agent (`--max-turns`, default
`DEFAULT_MAX_TURNS`), so a large `repeat` cannot spend credits without bound: at the cap no
further turn is sent, the tests cut short come back `skipped` (or failed, if they already had
failed), and the run says why it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

from vf_mcp.domain.transcript import Transcript, TrialSummary

DEFAULT_MAX_TURNS = 10_000


class BudgetExhausted(Exception):
    """The run reached its turn cap: no more turns are sent (caught by the runner)."""


class TurnBudget:
    """The turns a run may still send, shared by every test of the run."""

    def __init__(self, limit: int | None = DEFAULT_MAX_TURNS) -> None:
        self.limit = limit
        self.used = 0
        self.exhausted = False

    def take(self) -> None:
        """Count one request to the agent, or raise `BudgetExhausted` at the cap."""
        if self.limit is not None and self.used >= self.limit:
            self.exhausted = True
            raise BudgetExhausted(self.reason)
        self.used += 1

    @property
    def reason(self) -> str:
        return (
            f"the run reached its cap of {self.limit} turns (--max-turns), so the tests after "
            "it were not run or not finished: the report is partial"
        )


def pass_hat_k(passed: int, trials: int, k: int) -> float:
    """pass^k from `passed` of `trials`: C(passed, k) / C(trials, k)."""
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and {trials}, got {k}")
    return comb(passed, k) / comb(trials, k)


def summarize(test_id: str, transcripts: Sequence[Transcript]) -> TrialSummary:
    """How one repeated test fared; trials that were skipped (the cap) do not count."""
    ran = [t for t in transcripts if t.outcome != "skipped"]
    trials = len(ran)
    passed = sum(1 for t in ran if t.outcome == "passed")
    return TrialSummary(
        test_id=test_id,
        trials=trials,
        passed=passed,
        pass_rate=passed / trials if trials else 0.0,
        pass_hat_k={k: round(pass_hat_k(passed, trials, k), 4) for k in range(1, trials + 1)}
        if trials
        else {},
        flaky=0 < passed < trials,
    )


def counted(count: int, one: str, many: str | None = None) -> str:
    """ "1 suite", "2 suites": a count with its noun in the right number (`many` for a plural
    that is not `one` + "s")."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def tests_and_trials(tests: int, trials: int) -> str:
    """ "7 tests, 9 trials" (a repeated test runs once per trial, and outcomes count trials), or
    "7 tests" when nothing repeats."""
    size = counted(tests, "test")
    return size if trials == tests else f"{size}, {counted(trials, 'trial')}"


def trial_lines(summaries: Sequence[TrialSummary]) -> list[str]:
    """One line per repeated test, flaky ones marked: for the terminal and the reports."""
    return [f"{s.test_id}: {trials_result(s)}" for s in summaries]


def trials_result(summary: TrialSummary) -> str:
    """How a repeated test fared, without its name: "3/4 trials passed (pass rate 75%, ...)"."""
    if summary.trials == 0:
        # Every trial was cut by the turn cap: a rate of nothing would read as a failure.
        return "no trial ran (each was skipped), so no pass rate"
    hat = summary.pass_hat_k.get(summary.trials)
    shown = f", pass^{summary.trials} {hat:.2f}" if hat is not None else ""
    flaky = " FLAKY" if summary.flaky else ""
    return (
        f"{summary.passed}/{summary.trials} trials passed (pass rate {summary.pass_rate:.0%}"
        f"{shown}){flaky}"
    )
